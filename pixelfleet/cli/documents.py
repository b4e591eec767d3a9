"""Documents generated from the code: the CRDs and the OpenAPI document."""

from __future__ import annotations

import json
from pathlib import Path

import click

from pixelfleet.cli.configuration import load_settings


@click.command()
@click.option(
    "--output-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write each CRD to a file here (the chart keeps them in charts/pixelfleet/crds).",
)
def crds(output_dir: Path | None) -> None:
    """Print (or write) the CustomResourceDefinitions, generated from the resource models."""
    from pixelfleet.operator.resources import crd_manifests, render_yaml

    for filename, manifest in crd_manifests().items():
        text = render_yaml(manifest)
        if output_dir is None:
            click.echo("---\n" + text, nl=False)
        else:
            output_dir.mkdir(parents=True, exist_ok=True)
            (output_dir / filename).write_text(text, encoding="utf-8")
            click.echo(f"wrote {output_dir / filename}")


@click.command()
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["json", "yaml"]),
    default=None,
    help="Default: from the --output file's extension, else json.",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    help="Write the document to this file instead of standard output.",
)
def openapi(fmt: str | None, output: Path | None) -> None:
    """Print (or write) the OpenAPI document, with an example for every request body and
    every problem answer, for client generators and API tools."""
    from pixelfleet.api.app import create_app

    document = create_app(load_settings()).openapi()
    if fmt is None:
        fmt = "yaml" if output is not None and output.suffix in {".yaml", ".yml"} else "json"
    if fmt == "yaml":
        import yaml

        text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)
    else:
        text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}", err=True)
