"""Why an image or a pipeline was refused; each error carries its HTTP status."""

from __future__ import annotations

from pixelfleet.errors import PixelFleetError


class ImageRejected(PixelFleetError):
    """Base of every refusal the imaging code raises."""

    status = 422
    slug = "image-rejected"
    title = "Image rejected"


class UnsupportedImage(ImageRejected):
    """The upload is not an image, or not in a format we accept."""

    status = 415
    slug = "unsupported-media-type"
    title = "Unsupported image"


class ImageTooLarge(ImageRejected):
    """The upload has more bytes than the limit allows."""

    status = 413
    slug = "image-too-large"
    title = "Image too large"


class TooManyPixels(ImageRejected):
    """The source declares more pixels than the limit allows (or is a decompression bomb)."""

    status = 422
    slug = "image-too-many-pixels"
    title = "Image has too many pixels"


class PipelineInvalid(ImageRejected):
    """The pipeline is malformed or exceeds a limit; `errors` names each offending field."""

    status = 422
    slug = "validation-error"
    title = "Invalid pipeline"


class ProcessingFailed(ImageRejected):
    """The image could not be processed: corrupt data, a crop outside it, too large a result."""

    status = 422
    slug = "processing-failed"
    title = "Image processing failed"


class TooManyFrames(ImageRejected):
    """The source is an animation with more frames than the limit allows."""

    status = 422
    slug = "image-too-many-frames"
    title = "Image has too many frames"
