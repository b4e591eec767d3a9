"""`gravity: "face"`: crops that keep the faces OpenCV's bundled detector finds, tested on
real portraits (see real_images/SOURCES.md), not drawn ones."""

import io
import subprocess
import sys

import pytest
from PIL import Image
from real_images import real_image

from pixelfleet.imaging import saliency
from pixelfleet.imaging.faces import Face, find_faces
from pixelfleet.imaging.limits import ImageLimits
from pixelfleet.imaging.operations.crop import corner
from pixelfleet.imaging.runner import run_pipeline
from pixelfleet.imaging.spec import parse_pipeline

LIMITS = ImageLimits()


def portrait(name: str) -> Image.Image:
    image = Image.open(io.BytesIO(real_image(name)))
    image.load()
    return image


def inside(face: Face, left: int, top: int, size: tuple[int, int]) -> bool:
    return (
        left <= face.left
        and face.right <= left + size[0]
        and top <= face.top
        and face.bottom <= top + size[1]
    )


@pytest.mark.parametrize(
    ("name", "face"),
    [
        ("astronaut.png", (178, 69, 92, 92)),  # Eileen Collins, NASA
        ("grace_hopper.jpg", (149, 102, 229, 229)),  # Grace Hopper, US Navy
        ("imageops_pad_h_0.jpg", (70, 42, 112, 112)),  # the same, padded to the left
    ],
)
def test_the_face_of_a_real_portrait_is_found(name: str, face: tuple[int, int, int, int]) -> None:
    [found] = find_faces(portrait(name))

    for got, expected in zip((found.left, found.top, found.width, found.height), face, strict=True):
        assert got == pytest.approx(expected, abs=12)


def test_a_photo_without_a_person_has_no_face() -> None:
    assert find_faces(portrait("chelsea.png")) == []  # a cat


@pytest.mark.parametrize(
    ("name", "size"),
    [
        ("astronaut.png", (512, 171)),  # the centre band (y 170-341) misses the face entirely
        ("grace_hopper.jpg", (512, 256)),  # the centre band cuts off the top of the head
        ("imageops_pad_h_0.jpg", (256, 256)),  # the centre square cuts the face in half
    ],
)
def test_a_face_crop_keeps_the_face_a_centred_crop_cuts(name: str, size: tuple[int, int]) -> None:
    image = portrait(name)
    [face] = find_faces(image)
    centred = ((image.width - size[0]) // 2, (image.height - size[1]) // 2)

    left, top = corner(image, size, "face")

    assert not inside(face, *centred, size)
    assert inside(face, left, top, size)


def test_without_a_face_the_crop_is_the_attention_crop() -> None:
    image = portrait("chelsea.png")

    assert corner(image, (200, 200), "face") == saliency.attention_crop(image, (200, 200))


def test_a_cover_resize_with_face_gravity_keeps_the_face_in_the_result() -> None:
    pipeline = parse_pipeline(
        {
            "operations": [
                {"op": "resize", "width": 360, "height": 120, "fit": "cover", "gravity": "face"}
            ],
            "output": {"format": "png"},
        },
        LIMITS,
    )

    (result,) = run_pipeline(real_image("astronaut.png"), pipeline, LIMITS).values()

    image = Image.open(io.BytesIO(result.data))
    assert image.size == (360, 120)
    [face] = find_faces(image)
    assert inside(face, 0, 0, image.size)


def test_the_api_s_imaging_imports_no_opencv_until_a_face_is_looked_for() -> None:
    probe = (
        "import sys, pixelfleet.api.app, pixelfleet.imaging.runner\n"
        "print('cv2' in sys.modules)"
    )
    shown = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )

    assert shown.stdout.strip() == "False"


def test_opencv_keeps_to_one_thread_in_a_worker_process() -> None:
    # As many worker processes run as there are cores: one thread each.
    probe = (
        "import io, cv2\n"
        "from PIL import Image\n"
        "from pixelfleet.imaging.faces import find_faces\n"
        "find_faces(Image.new('RGB', (64, 64)))\n"
        "print(cv2.getNumThreads())"
    )
    shown = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )

    assert shown.stdout.strip() == "1"
