"""A cascade of resamples: each from the smallest one made that is still 1.5x larger."""

from typing import Any

import pytest
from PIL import Image
from sample_images import as_array, photo
from similarity import ssim

from pixelfleet.imaging.cascade import ResampleCascade


@pytest.fixture
def resamples(monkeypatch: pytest.MonkeyPatch) -> list[tuple[tuple[int, int], Any]]:
    calls: list[tuple[tuple[int, int], Any]] = []
    original = Image.Image.resize

    def spy(self: Image.Image, size: Any, resample: Any = None, *args: Any, **kwargs: Any) -> Any:
        calls.append((self.size, tuple(size)))
        return original(self, size, resample, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "resize", spy)
    return calls


def test_each_size_is_resampled_from_the_smallest_one_at_least_one_and_a_half_times_larger(
    resamples: list[Any],
) -> None:
    sizes = [(150, 112), (640, 480), (1280, 960), (2048, 1536)]
    cascade = ResampleCascade(photo(4000, 3000), sizes)
    resamples.clear()  # drawing the photo resampled too

    made = {size: cascade.take(size)[0].size for size in sizes}

    assert made == {size: size for size in sizes}
    assert resamples == [
        ((4000, 3000), (2048, 1536)),
        ((2048, 1536), (1280, 960)),  # 1.6x
        ((1280, 960), (640, 480)),
        ((640, 480), (150, 112)),
    ]


def test_a_size_not_comfortably_smaller_than_another_comes_from_the_source(
    resamples: list[Any],
) -> None:
    cascade = ResampleCascade(photo(800, 600), [(500, 375), (400, 300)])
    resamples.clear()

    cascade.take((400, 300))

    assert resamples == [((800, 600), (400, 300))]  # 500 is only 1.25x larger


def test_cascaded_resamples_look_like_one_lanczos_resample_of_the_source() -> None:
    source = photo(2400, 1800)
    sizes = [(1200, 900), (600, 450), (150, 113)]
    cascade = ResampleCascade(source, sizes)

    for size in sizes:
        reference = source.resize(size, Image.Resampling.LANCZOS)
        assert ssim(cascade.take(size)[0], reference) >= 0.99


def test_a_repeated_size_is_made_once_and_handed_to_own_only_to_its_last_taker(
    resamples: list[Any],
) -> None:
    cascade = ResampleCascade(photo(400, 300), [(100, 75), (100, 75)])
    resamples.clear()

    first, first_owned = cascade.take((100, 75))
    second, second_owned = cascade.take((100, 75))

    assert first is second
    assert (first_owned, second_owned) == (False, True)
    assert resamples == [((400, 300), (100, 75))]


def test_nothing_handed_out_is_changed_by_later_requests() -> None:
    cascade = ResampleCascade(photo(800, 600), [(400, 300), (100, 75)])
    larger, _ = cascade.take((400, 300))
    before = as_array(larger).copy()

    cascade.take((100, 75))

    assert (as_array(larger) == before).all()


def test_an_unplanned_size_is_made_from_the_source_for_the_caller_alone() -> None:
    source = photo(400, 300)
    cascade = ResampleCascade(source, [(200, 150)])

    image, owned = cascade.take((80, 60))

    assert image.size == (80, 60)
    assert owned
    assert ssim(image, source.resize((80, 60), Image.Resampling.LANCZOS)) >= 0.99
