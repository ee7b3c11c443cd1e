"""The layers' import contracts (ARCHITECTURE.md), checked on every import statement of the package,
those inside functions and under TYPE_CHECKING included: an arrow that points up fails the build."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "prunetui"

# layer -> the layers it must never import
FORBIDDEN = {
    "core": ("sources", "workflow", "tui", "distributed", "cli", "commands"),
    "sources": ("workflow", "tui", "distributed", "cli", "commands"),
    "distributed": ("workflow", "tui", "cli", "commands"),
    "workflow": ("tui", "cli", "commands"),
}


def imported_modules(path: Path, root: Path) -> list[tuple[int, str]]:
    """(line, module) of every `import x` and `from x import y` in the file, relative ones resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = ["prunetui", *path.relative_to(root).parent.parts]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, node.module] if node.module else base)
            found.append((node.lineno, module))
    return found


def violations(layer: str, root: Path = PACKAGE) -> list[str]:
    banned = tuple(f"prunetui.{name}" for name in FORBIDDEN[layer])
    found = []
    for path in sorted((root / layer).rglob("*.py")):
        for line, module in imported_modules(path, root):
            if module in banned or module.startswith(tuple(f"{b}." for b in banned)):
                found.append(f"{path.relative_to(root.parent)}:{line} imports {module}")
    return found


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports_nothing_above_it(layer):
    assert violations(layer) == []


def test_the_checker_sees_lazy_and_relative_imports(tmp_path):
    """Imports inside functions and relative ones are arrows too."""
    core = tmp_path / "prunetui" / "core"
    core.mkdir(parents=True)
    (core / "a.py").write_text("def f():\n    from prunetui.tui import app\n", encoding="utf-8")
    (core / "b.py").write_text("from ..sources import data\nfrom . import a\n", encoding="utf-8")
    assert violations("core", tmp_path / "prunetui") == [
        "prunetui/core/a.py:2 imports prunetui.tui",
        "prunetui/core/b.py:1 imports prunetui.sources",
    ]


def test_every_package_folder_is_in_a_layer():
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert folders - {"profiles"} == {"core", "sources", "workflow", "tui", "distributed"}


def module_graph(folder: Path, root: Path = PACKAGE) -> dict[str, set[str]]:
    """module -> the modules of `folder` it imports (`from prunetui.tui import jobs` names the module
    prunetui.tui.jobs); every import counts, TYPE_CHECKING and lazy ones too."""
    modules = {
        ".".join(["prunetui", *path.relative_to(root).with_suffix("").parts]): path
        for path in folder.rglob("*.py")
        if path.name != "__init__.py"
    }
    graph = {}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        names = {name for _, name in imported_modules(path, root)}
        names |= {
            f"{node.module}.{alias.name}"
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module
            for alias in node.names
        }
        graph[module] = names & modules.keys() - {module}
    return graph


def import_loops(graph: dict[str, set[str]]) -> list[list[str]]:
    """The loops of `graph` (depth first: each loop found once from where it was entered)."""
    loops, done, path = [], set(), []

    def visit(module: str) -> None:
        if module in path:
            loops.append([*path[path.index(module) :], module])
            return
        if module in done:
            return
        path.append(module)
        for imported in sorted(graph[module]):
            visit(imported)
        path.pop()
        done.add(module)

    for module in sorted(graph):
        visit(module)
    return loops


def test_the_imports_of_tui_run_one_way():
    """app -> workbench -> panes -> flows -> bench: no flow imports the screen or the app (issue 25)."""
    assert import_loops(module_graph(PACKAGE / "tui")) == []


def test_the_loop_finder_finds_a_loop_through_a_type_checking_import(tmp_path):
    tui = tmp_path / "prunetui" / "tui"
    tui.mkdir(parents=True)
    (tui / "app.py").write_text("from prunetui.tui import flow\n", encoding="utf-8")
    (tui / "flow.py").write_text("if TYPE_CHECKING:\n    from prunetui.tui.app import App\n", encoding="utf-8")
    (tui / "bench.py").write_text("", encoding="utf-8")
    graph = module_graph(tui, tmp_path / "prunetui")
    assert import_loops(graph) == [["prunetui.tui.app", "prunetui.tui.flow", "prunetui.tui.app"]]
