"""Why a derivative URL was not signed or not served."""

from __future__ import annotations

from pixelfleet.errors import Forbidden, PixelFleetError, RetryLater


class ImageUrlInvalid(Forbidden):
    """A derivative URL its account's delivery key does not sign as it stands: changed, made
    up, signed before the key was rotated, or of an account that is disabled or gone."""

    slug = "image-url-invalid"
    title = "Image URL invalid"
    example_detail = "This image URL is not one this account's delivery key signs."


class ImageUrlStale(PixelFleetError):
    """The preset the URL names was changed or deleted since the URL was signed: the URL
    stands for an image that preset no longer makes. Sign a new one."""

    status = 410
    slug = "image-url-stale"
    title = "Image URL stale"
    example_detail = "The preset 'thumb' changed since this URL was signed; sign a new one."


class ImageNotReady(RetryLater):
    """The image is still being made (past `PIXELFLEET_DERIVE_TIMEOUT_SECONDS`): ask again
    after `Retry-After` seconds; it is not charged again."""

    status = 503
    slug = "image-not-ready"
    title = "Image not ready"
    example_detail = "The image is still being made; ask again in 2 seconds."


class DerivationFailed(PixelFleetError):
    """The image could not be made from this source with this preset (the task that tried is
    refunded); it would fail again the same way."""

    status = 422
    slug = "image-derive-failed"
    title = "Image could not be made"
    example_detail = "The preset's crop falls outside this 300x200 image."
