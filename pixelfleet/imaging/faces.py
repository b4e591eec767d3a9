"""Faces in an image, for crops that keep them: OpenCV's Haar cascade detector, whose trained
model ships inside the opencv-python-headless wheel (nothing is downloaded at run time).

The detector runs on a grey copy whose longer side is at most DETECTION_SIDE pixels, so it
costs the same few tens of milliseconds on any source, and answers in the image's pixels.
When it finds no face, a crop falls back to `attention` (see `saliency`)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from pixelfleet.imaging import saliency
from pixelfleet.imaging.colours import to_working_mode
from pixelfleet.imaging.gravity import centred_on

if TYPE_CHECKING:
    from pixelfleet.imaging.opencv import cv2

DETECTION_SIDE = 640
"""The longer side of the copy the detector looks at."""
MIN_FACE_SIDE = 24
"""The cascade's own window: smaller faces are not looked for."""
MIN_FACE_SHARE = 12
"""Faces smaller than 1/MIN_FACE_SHARE of the copy's shorter side are not looked for: too
small to decide a crop, and most of the search's time goes to the smallest windows."""
SCALE_FACTOR = 1.1
MIN_NEIGHBOURS = 5
"""How many overlapping detections make a face: OpenCV's recommended 3-6, at the strict end,
since a crop centred on a false face is worse than the attention fallback."""
CASCADE = "haarcascade_frontalface_alt2.xml"
"""Of the frontal-face cascades OpenCV ships, the one that finds the faces of real portraits
without false ones: `default` also finds faces in coins, flowers and balloons."""

_local = threading.local()


@dataclass(frozen=True)
class Face:
    left: int
    top: int
    width: int
    height: int

    @property
    def area(self) -> int:
        return self.width * self.height

    @property
    def right(self) -> int:
        return self.left + self.width

    @property
    def bottom(self) -> int:
        return self.top + self.height


def _detector() -> cv2.CascadeClassifier:
    """The cascade, loaded once per thread (a classifier is not safe to share across threads).
    OpenCV is imported here, on first use: it adds a tenth of a second and 20 MB to a process,
    which only a worker asked for a face crop needs."""
    from pixelfleet.imaging.opencv import cv2

    detector: cv2.CascadeClassifier | None = getattr(_local, "detector", None)
    if detector is None:
        path = Path(cv2.__file__).parent / "data" / CASCADE  # cv2.data.haarcascades
        detector = cv2.CascadeClassifier(str(path))
        if detector.empty():
            raise RuntimeError(f"the face model {path} could not be loaded")
        _local.detector = detector
    return detector


def find_faces(image: Image.Image) -> list[Face]:
    """The frontal faces in `image`, largest first, in its pixels."""
    grey = to_working_mode(image).convert("L")
    factor = min(1.0, DETECTION_SIDE / max(grey.size))
    if factor < 1.0:
        size = (max(1, round(grey.width * factor)), max(1, round(grey.height * factor)))
        grey = grey.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
    from pixelfleet.imaging.opencv import cv2

    detector = _detector()
    pixels = cv2.equalizeHist(np.asarray(grey))
    smallest = max(MIN_FACE_SIDE, min(grey.size) // MIN_FACE_SHARE)
    found = detector.detectMultiScale(
        pixels,
        scaleFactor=SCALE_FACTOR,
        minNeighbors=MIN_NEIGHBOURS,
        minSize=(smallest, smallest),
    )
    faces = [
        Face(
            round(x / factor), round(y / factor), round(width / factor), round(height / factor)
        )
        for x, y, width, height in (tuple(int(v) for v in box) for box in found)
    ]
    return sorted(faces, key=lambda face: face.area, reverse=True)


def _span(faces: list[Face]) -> Face:
    left, top = min(f.left for f in faces), min(f.top for f in faces)
    right, bottom = max(f.right for f in faces), max(f.bottom for f in faces)
    return Face(left, top, right - left, bottom - top)


def face_crop(image: Image.Image, size: tuple[int, int]) -> tuple[int, int]:
    """The top-left corner of a `size` crop centred on the faces: on all of them when they
    fit in it together, else on the largest; on the `attention` crop when none is found."""
    faces = find_faces(image)
    if not faces:
        return saliency.attention_crop(image, size)
    span = _span(faces)
    kept = span if span.width <= size[0] and span.height <= size[1] else faces[0]
    centre = (kept.left + kept.width / 2, kept.top + kept.height / 2)
    return centred_on(image.size, size, centre)
