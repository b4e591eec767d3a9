"""The formats results are written in, and which options each can honour."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

OutputFormatName = Literal["jpeg", "png", "webp", "avif", "gif"]
AUTO: Final = "auto"
RequestedFormat = Literal[OutputFormatName, "auto"]
"""What a pipeline may ask for: a format, or `auto`: AVIF, WebP and a JPEG (PNG when the image
has alpha) of the one output, of which delivery picks by the reader's `Accept`."""
NEGOTIATED_FORMATS: tuple[OutputFormatName, ...] = ("avif", "webp")
"""What `auto` writes besides the fallback, most preferred first."""
AUTO_FALLBACKS: tuple[OutputFormatName, ...] = ("jpeg", "png")
"""The fallback of `auto`: JPEG, or PNG for an image with alpha (the same price)."""


@dataclass(frozen=True)
class OutputFormat:
    name: OutputFormatName
    pil_format: str
    content_type: str
    extension: str
    lossy: bool
    supports_progressive: bool = False
    """JPEG progressive scans, PNG and GIF interlacing."""
    supports_lossless: bool = False
    """A lossless mode besides the lossy one."""


OUTPUT_FORMATS: dict[OutputFormatName, OutputFormat] = {
    "jpeg": OutputFormat(
        "jpeg", "JPEG", "image/jpeg", "jpg", lossy=True, supports_progressive=True
    ),
    "png": OutputFormat("png", "PNG", "image/png", "png", lossy=False, supports_progressive=True),
    "webp": OutputFormat("webp", "WEBP", "image/webp", "webp", lossy=True, supports_lossless=True),
    "avif": OutputFormat("avif", "AVIF", "image/avif", "avif", lossy=True, supports_lossless=True),
    "gif": OutputFormat("gif", "GIF", "image/gif", "gif", lossy=False, supports_progressive=True),
}


_PHOTO_ONLY_READ = frozenset({"MPO", "HEIF", "HEIC"})


def output_format_for(
    requested: OutputFormatName | None, source_format: str | None
) -> OutputFormat:
    """The requested format, else the source's if we can write it, else JPEG for a photo in
    a format we only read (a camera's MPO, a phone's HEIC), else PNG (TIFF, BMP)."""
    if requested is not None:
        return OUTPUT_FORMATS[requested]
    for name, output in OUTPUT_FORMATS.items():
        if source_format is not None and source_format.lower() in (name, output.pil_format.lower()):
            return output
    if source_format is not None and source_format.upper() in _PHOTO_ONLY_READ:
        return OUTPUT_FORMATS["jpeg"]
    return OUTPUT_FORMATS["png"]


def named_format(name: RequestedFormat) -> OutputFormat | None:
    """The one format `name` names; None for `auto`, which names three."""
    return None if name == AUTO else OUTPUT_FORMATS[name]


def option_problems(
    name: RequestedFormat, *, progressive: bool, lossless: bool, max_bytes: int | None
) -> list[tuple[str, str]]:
    """The output options (field, problem) that the format `name` (or `auto`) cannot honour."""
    output = named_format(name)
    if output is None:
        return unsupported_auto_options(
            progressive=progressive, lossless=lossless, max_bytes=max_bytes
        )
    return unsupported_options(
        output, progressive=progressive, lossless=lossless, max_bytes=max_bytes
    )


def fallback_format(has_alpha: bool) -> OutputFormatName:
    """The format `auto` writes for readers that name neither AVIF nor WebP."""
    return AUTO_FALLBACKS[1] if has_alpha else AUTO_FALLBACKS[0]


def unsupported_auto_options(
    *, progressive: bool, lossless: bool, max_bytes: int | None
) -> list[tuple[str, str]]:
    """The output options (field, problem) that `auto` cannot honour: each belongs to some of
    its formats only."""
    asked = {"progressive": progressive, "lossless": lossless, "max_bytes": max_bytes is not None}
    return [
        (field, f"auto writes avif, webp and jpeg or png; {field} fits only some: name a format")
        for field, wanted in asked.items()
        if wanted
    ]


def unsupported_options(
    output: OutputFormat, *, progressive: bool, lossless: bool, max_bytes: int | None
) -> list[tuple[str, str]]:
    """The output options (field, problem) that the format cannot honour."""
    problems: list[tuple[str, str]] = []
    if progressive and not output.supports_progressive:
        problems.append(("progressive", f"{output.name} has no progressive or interlaced form"))
    if lossless and not output.supports_lossless:
        problems.append(("lossless", f"{output.name} has no lossless mode (webp and avif do)"))
    if max_bytes is not None:
        if not output.lossy:
            problems.append(("max_bytes", f"{output.name} is lossless: it has no quality to lower"))
        elif lossless:
            problems.append(("max_bytes", "a lossless encoding has no quality to lower"))
    return problems
