"""The package type-checks under `mypy --strict`, the tree is `ruff` clean, its modules stay
small, it holds no import circle, and its context and ports import no adapter."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

# `mypy --strict` over the package takes a minute or more on a clean clone (no cache yet).
pytestmark = pytest.mark.heavy

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


def _a_path_around(circle: set[str], graph: dict[str, set[str]]) -> str:
    """One way around the circle, for the message: `a -> b -> a`."""
    start = min(circle)
    paths = {start: [start]}
    todo = [start]
    while todo:
        module = todo.pop(0)
        for other in sorted(graph[module] & circle):
            if other == start:
                return " -> ".join([*paths[module], start])
            if other not in paths:
                paths[other] = [*paths[module], other]
                todo.append(other)
    return ", ".join(sorted(circle))


def test_the_package_has_no_import_circles() -> None:
    graph = _import_graph()
    circles = _import_circles(graph)
    assert not circles, "import circles:\n" + "\n".join(
        _a_path_around(c, graph) for c in circles
    )


def test_the_import_graph_sees_imports_inside_functions_and_for_type_checking() -> None:
    graph = _import_graph()
    # `pixelfleet.bootstrap` imports the operator's state inside a function and for type
    # checking only; the launcher port names the Task model for type checking only.
    assert "pixelfleet.operator.state" in graph["pixelfleet.bootstrap"]
    assert "pixelfleet.models" in graph["pixelfleet.launchers"]


# Modules that choose or are adapters, and the drivers that use them.
ADAPTERS_AND_DRIVERS = (
    "pixelfleet.bootstrap",
    "pixelfleet.cli",
    "pixelfleet.api",
    "pixelfleet.worker",
    "pixelfleet.operator",
    "pixelfleet.launchers.",
    "pixelfleet.events.redis_stream",
    "pixelfleet.events.local_socket",
    "pixelfleet.events.postgres_notify",
    "pixelfleet.storage.local",
    "pixelfleet.storage.s3",
    "pixelfleet.storage.factory",
    "pixelfleet.webhooks.delivery",
    "pixelfleet.jobs.pipeline_processes",
    "pixelfleet.payments.razorpay",
    "pixelfleet.rate_limits.stores",
)
CONTEXT_AND_PORTS = (
    "pixelfleet.context",
    "pixelfleet.launchers",
    "pixelfleet.webhooks.sender",
    "pixelfleet.events",
    "pixelfleet.storage.base",
    "pixelfleet.payments.gateway",
    "pixelfleet.jobs.pipeline_runs",
)


def _reached_from(graph: dict[str, set[str]], module: str) -> set[str]:
    reached: set[str] = set()
    todo = [module]
    while todo:
        for other in graph[todo.pop()] - reached:
            reached.add(other)
            todo.append(other)
    return reached


def test_the_context_and_its_ports_import_no_adapter() -> None:
    graph = _import_graph()
    for low in CONTEXT_AND_PORTS:
        adapters = sorted(
            m for m in _reached_from(graph, low) if m.startswith(ADAPTERS_AND_DRIVERS)
        )
        assert not adapters, f"{low} imports {adapters}"


def test_only_drivers_import_the_composition_root() -> None:
    graph = _import_graph()
    importers = sorted(m for m, imported in graph.items() if "pixelfleet.bootstrap" in imported)
    drivers = ("pixelfleet.api.app", "pixelfleet.cli", "pixelfleet.worker.", "pixelfleet.operator.")
    assert [m for m in importers if not m.startswith(drivers)] == []
