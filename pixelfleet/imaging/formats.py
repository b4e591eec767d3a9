"""The formats results are written in, and which options each can honour."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

OutputFormatName = Literal["jpeg", "png", "webp", "avif", "gif"]


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


def output_format_for(
    requested: OutputFormatName | None, source_format: str | None
) -> OutputFormat:
    """The requested format, else the source's if we can write it, else PNG."""
    if requested is not None:
        return OUTPUT_FORMATS[requested]
    for name, output in OUTPUT_FORMATS.items():
        if source_format is not None and source_format.lower() in (name, output.pil_format.lower()):
            return output
    if source_format is not None and source_format.upper() == "MPO":
        return OUTPUT_FORMATS["jpeg"]
    return OUTPUT_FORMATS["png"]


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
