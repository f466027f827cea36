"""What the wheel installs, and which code may import the faust app."""

from __future__ import annotations

import ast
import tomllib
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LIBRARY = REPO / "src" / "stocksync"
STREAMS = REPO / "streams"
# The worker command starts the faust app: the one place the library reaches into it.
WORKER_ENTRY_POINT = LIBRARY / "cli" / "worker.py"


def imported_modules(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module


def test_the_wheel_names_every_package_and_installs_streams_as_stocksync_streams() -> None:
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    on_disk = {
        "stocksync." + ".".join(init.parent.relative_to(LIBRARY).parts)
        for init in LIBRARY.rglob("__init__.py")
    } | {"stocksync.api.static", "stocksync.streams"}
    on_disk = {name.rstrip(".") for name in on_disk}
    assert set(setuptools["packages"]) == on_disk
    assert setuptools["package-dir"] == {"": "src", "stocksync.streams": "streams"}


def test_only_the_worker_command_imports_the_faust_app() -> None:
    importers = {
        path.relative_to(REPO).as_posix()
        for path in LIBRARY.rglob("*.py")
        if any(m.split(".")[:2] == ["stocksync", "streams"] for m in imported_modules(path))
    }
    assert importers == {WORKER_ENTRY_POINT.relative_to(REPO).as_posix()}


def test_faust_is_imported_in_streams_only() -> None:
    faust_users = {
        path.relative_to(REPO).as_posix()
        for folder in (LIBRARY, REPO / "sim")
        for path in folder.rglob("*.py")
        if any(m.split(".")[0] in {"faust", "mode"} for m in imported_modules(path))
    }
    assert faust_users == set()


def test_streams_modules_import_each_other_relatively() -> None:
    # Installed, the folder is the package stocksync.streams: an absolute `streams.x` import
    # would work from a checkout only.
    absolute = {
        path.name
        for path in STREAMS.glob("*.py")
        if any(m.split(".")[0] == "streams" for m in imported_modules(path))
    }
    assert absolute == set()


def module_name(path: Path) -> str:
    if path.is_relative_to(STREAMS):
        parts = ("stocksync", "streams", *path.relative_to(STREAMS).with_suffix("").parts)
    else:
        parts = ("stocksync", *path.relative_to(LIBRARY).with_suffix("").parts)
    return ".".join(parts).removesuffix(".__init__")


def module_level_imports(path: Path, name: str) -> Iterator[str]:
    """Imports executed when the module loads (not those under `if TYPE_CHECKING:` or inside
    functions), resolved to absolute names."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.parse(path.read_text(), str(path)).body:
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            yield module
            yield from (f"{module}.{alias.name}" for alias in node.names)


def test_no_import_cycle_between_stocksync_modules() -> None:
    paths = [*LIBRARY.rglob("*.py"), *STREAMS.glob("*.py")]
    names = {module_name(path): path for path in paths}
    graph = {
        name: {m for m in module_level_imports(path, name) if m in names and m != name}
        for name, path in names.items()
    }
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*trail[trail.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert cycles == []
