"""The `pixelfleet` command line: one group, its commands in a module per kind of work."""

from __future__ import annotations

import click

from pixelfleet.cli.admin import admin
from pixelfleet.cli.documents import crds, openapi
from pixelfleet.cli.embedded import up
from pixelfleet.cli.schema import migrate
from pixelfleet.cli.servers import api, beat, operator, release_imagejobs, worker
from pixelfleet.cli.smoke_test import smoke_test


@click.group()
@click.version_option(package_name="pixelfleet")
def main() -> None:
    """PixelFleet: image processing for credits."""


for command in (
    migrate,
    up,
    api,
    worker,
    beat,
    operator,
    release_imagejobs,
    crds,
    openapi,
    smoke_test,
    admin,
):
    main.add_command(command)

__all__ = ["main"]
