"""The package type-checks under `mypy --strict`, the tree is `ruff` clean, its modules stay
small, and the imaging and command-line packages import no module that imports them back."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "pixelfleet"
MAX_MODULE_LINES = 600


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, check=False
    )


def test_the_package_passes_mypy_strict() -> None:
    result = _run("mypy", "--strict", "pixelfleet")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_tree_is_ruff_clean() -> None:
    result = _run("ruff", "check", "pixelfleet", "tests", "migrations", "bench")
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_module_of_the_package_is_over_600_lines() -> None:
    sizes = {
        str(path.relative_to(ROOT)): len(path.read_text(encoding="utf-8").splitlines())
        for path in PACKAGE.rglob("*.py")
    }
    assert {name: lines for name, lines in sizes.items() if lines > MAX_MODULE_LINES} == {}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _import_graph() -> dict[str, set[str]]:
    """Which modules of the package each module imports, counting every import statement
    wherever it stands (inside functions and `if TYPE_CHECKING:` blocks too)."""
    paths = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in paths}
    for name, path in paths.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                graph[name] |= {alias.name for alias in node.names if alias.name in paths}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*parent, *([node.module] if node.module else [])])
                for alias in node.names:
                    target = f"{base}.{alias.name}"
                    if target in paths:
                        graph[name].add(target)
                    elif base in paths:
                        graph[name].add(base)
    return graph


def _import_circles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected groups of more than one module (or a module importing itself)."""
    order: dict[str, int] = {}
    lowest: dict[str, int] = {}
    stack: list[str] = []
    circles: list[set[str]] = []

    def visit(module: str) -> None:
        order[module] = lowest[module] = len(order)
        stack.append(module)
        for imported in graph[module]:
            if imported not in order:
                visit(imported)
                lowest[module] = min(lowest[module], lowest[imported])
            elif imported in stack:
                lowest[module] = min(lowest[module], order[imported])
        if lowest[module] == order[module]:
            group = set()
            while True:
                member = stack.pop()
                group.add(member)
                if member == module:
                    break
            if len(group) > 1 or module in graph[module]:
                circles.append(group)

    for module in graph:
        if module not in order:
            visit(module)
    return circles


def test_the_import_circle_finder_finds_a_circle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _import_circles(graph) == [{"a", "b", "c"}]


def test_imaging_and_the_command_line_are_in_no_import_circle() -> None:
    owned = ("pixelfleet.imaging", "pixelfleet.cli")
    circles = [
        circle
        for circle in _import_circles(_import_graph())
        if any(module.startswith(owned) for module in circle)
    ]
    assert circles == []
