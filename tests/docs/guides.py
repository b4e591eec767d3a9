"""What the guides in docs/ say, read the way a test can check it: their code, the settings,
commands, metrics and chart values they name, and the things in the code those must be."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import click
import yaml

from pixelfleet.cli import main
from pixelfleet.observability.metrics import ALL
from pixelfleet.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
GUIDES = ("deploy.md", "security.md", "operations.md")
CHART_VALUES: dict[str, Any] = yaml.safe_load(
    (ROOT / "charts" / "pixelfleet" / "values.yaml").read_text(encoding="utf-8")
)

FENCE = re.compile(r"^```([\w-]*)[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"`([^`\n]+)`")
SETTING_NAME = re.compile(r"\bPIXELFLEET_[A-Z0-9_]*[A-Z0-9]\b")
METRIC_NAME = re.compile(r"\bpixelfleet_[a-z0-9_]*[a-z0-9]\b")
# `pixelfleet <command>` where pixelfleet is the program run, not a release or namespace name.
INVOCATION = re.compile(
    r"(?<![\w./-])(?<!-n )(?<!--namespace )(?<!--name )pixelfleet ([a-z][\w-]*)"
)
SET_VALUE = re.compile(r"--set\s+([\w.]+)=")
# Os.environ reads of PIXELFLEET_* names outside the Settings (the log level, for one).
ENVIRON_READ = re.compile(r"environ(?:\.get\(|\[)\s*[\"'](PIXELFLEET_\w+)[\"']")


@dataclass(frozen=True)
class Block:
    guide: str
    language: str
    text: str


def guide_text(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def all_guides() -> dict[str, str]:
    return {name: guide_text(name) for name in GUIDES}


def blocks(name: str, language: str | None = None) -> list[Block]:
    found = [Block(name, lang, body) for lang, body in FENCE.findall(guide_text(name))]
    return [b for b in found if language is None or b.language == language]


def code_of(text: str) -> str:
    """Every fenced block and inline code span of a guide, one per line."""
    fenced = [body for _lang, body in FENCE.findall(text)]
    prose = FENCE.sub("", text)
    return "\n".join([*fenced, *INLINE_CODE.findall(prose)])


# ---- settings ----------------------------------------------------------------------------------


@cache
def environment_names() -> frozenset[str]:
    """The PIXELFLEET_* names the code reads: the Settings' fields, the command line's
    environment-backed options, and direct reads of the environment in the package."""
    names = {f"PIXELFLEET_{field.upper()}" for field in Settings.model_fields}
    for _path, command in commands(main):
        for param in command.params:
            envvars = param.envvar if isinstance(param.envvar, list | tuple) else [param.envvar]
            names |= {str(name) for name in envvars if name}
    for source in (ROOT / "pixelfleet").rglob("*.py"):
        names |= set(ENVIRON_READ.findall(source.read_text(encoding="utf-8")))
    return frozenset(names)


# ---- the command line --------------------------------------------------------------------------


def commands(
    group: click.Command, path: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], click.Command]]:
    """Every command of the `pixelfleet` tree with its path (("admin", "grant"), ...)."""
    found: list[tuple[tuple[str, ...], click.Command]] = [(path, group)]
    if isinstance(group, click.Group):
        for name, sub in group.commands.items():
            found += commands(sub, (*path, name))
    return found


def option_names(command: click.Command) -> set[str]:
    names: set[str] = {"--help"}
    for param in command.params:
        if isinstance(param, click.Option):
            names |= {*param.opts, *param.secondary_opts}
    return names


@dataclass(frozen=True)
class Invocation:
    words: tuple[str, ...]  # what follows `pixelfleet`, up to the end of the command

    @property
    def text(self) -> str:
        return "pixelfleet " + " ".join(self.words)


_COMMAND_END = re.compile(r"[|;&`)\"']|\s#")


def invocations(code: str) -> list[Invocation]:
    """Each `pixelfleet ...` command line written in `code`."""
    found: list[Invocation] = []
    for line in code.splitlines():
        for match in INVOCATION.finditer(line):
            rest = line[match.start() + len("pixelfleet ") :]
            if rest.startswith(("charts/", "-")):
                continue
            rest = _COMMAND_END.split(rest, maxsplit=1)[0]
            try:
                words = tuple(shlex.split(rest))
            except ValueError:
                words = tuple(rest.split())
            if words and "/" not in words[0] and ":" not in words[0]:
                found.append(Invocation(words))
    return found


def resolve(invocation: Invocation) -> tuple[tuple[str, ...], click.Command, list[str]]:
    """The command an invocation runs, its path, and the options it passes. KeyError names a
    command that does not exist."""
    command: click.Command = main
    path: tuple[str, ...] = ()
    words = list(invocation.words)
    while isinstance(command, click.Group) and words and not words[0].startswith("-"):
        name = words.pop(0)
        if name not in command.commands:
            raise KeyError(f"{invocation.text}: no command {' '.join((*path, name))!r}")
        command = command.commands[name]
        path = (*path, name)
    options = [word.split("=", 1)[0] for word in words if word.startswith("--")]
    return path, command, options


# ---- metrics -----------------------------------------------------------------------------------


@cache
def exported_metric_names() -> frozenset[str]:
    """Every series name PixelFleet exports, with each histogram's and counter's suffixes, and
    the names the metrics were defined with."""
    names: set[str] = set()
    for metric in ALL:
        for family in metric.describe():
            names.add(family.name)
            if family.type == "counter":
                names |= {f"{family.name}_total", f"{family.name}_created"}
            elif family.type == "histogram":
                names |= {family.name + s for s in ("_bucket", "_count", "_sum", "_created")}
    return frozenset(names)


@cache
def defined_metric_names() -> frozenset[str]:
    """The names as written in metrics.py (counters with their `_total`)."""
    names: set[str] = set()
    for metric in ALL:
        for family in metric.describe():
            names.add(f"{family.name}_total" if family.type == "counter" else family.name)
    return frozenset(names)


# ---- chart values ------------------------------------------------------------------------------


def value_paths(tree: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every key path of a values snippet (into mappings, not into lists)."""
    paths: list[tuple[str, ...]] = []
    if isinstance(tree, dict):
        for key, sub in tree.items():
            paths.append((*prefix, str(key)))
            paths += value_paths(sub, (*prefix, str(key)))
    return paths


def is_chart_value(path: tuple[str, ...]) -> bool:
    """Whether `path` is a key of the chart's values.yaml, or lies under a free-form mapping
    there (`annotations: {}`, `labels: {}`) or a list."""
    node: Any = CHART_VALUES
    for part in path:
        if isinstance(node, list) or node == {}:
            return True
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def values_snippets(name: str) -> list[dict[str, Any]]:
    """The guide's chart values files: yaml blocks whose first line is a comment naming a
    values file (`# values.prod.yaml`)."""
    snippets: list[dict[str, Any]] = []
    for block in blocks(name, "yaml"):
        first = block.text.lstrip().splitlines()[0]
        if first.startswith("#") and "values" in first:
            snippets.append(yaml.safe_load(block.text))
    return snippets


# ---- headings ----------------------------------------------------------------------------------


def anchors(text: str) -> set[str]:
    """The anchors GitHub makes of a guide's headings."""
    found: set[str] = set()
    for heading in re.findall(r"^#{1,6} (.+)$", FENCE.sub("", text), flags=re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        found.add(slug)
    return found
