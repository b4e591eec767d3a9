"""The settings every command reads, with their problems told as a command line tells them."""

from __future__ import annotations

import click

from pixelfleet.settings import Settings


def load_settings() -> Settings:
    from pydantic import ValidationError

    try:
        return Settings()
    except ValidationError as exc:
        # Each error's own words only: pydantic would also quote the input, which is every
        # setting, secrets included.
        said = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'settings'}: {error['msg']}"
            for error in exc.errors(include_input=False, include_url=False)
        )
        raise click.ClickException(f"invalid settings: {said}") from None
    except ValueError as exc:
        raise click.ClickException(f"invalid settings: {exc}") from exc
