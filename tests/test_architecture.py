"""The shape of the code, kept by tests: the wings and their arrows, no cycles, no private reach-ins.

The wings: the **doors** (``frameseek.cli``, ``frameseek.app``, ``frameseek.service``, a coming
``frameseek.mcp``) import only the public API ``frameseek.api``; the **lab** (``frameseek.lab``) uses the
library like a user and is used by no one but the command line; the **core** is everything else and
never imports the API, the lab or a door. Each rule is a small checker over the import graph or the
syntax trees, shown to catch a small tree that breaks it on purpose before it is run on the real one.
"""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "src"
SRC = ROOT / "frameseek"
BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"

PACKAGE = "frameseek"
API = "frameseek.api"
LAB = "frameseek.lab"
DOORS = ("frameseek.cli", "frameseek.app", "frameseek.service", "frameseek.mcp", "frameseek.mcp_server")
LAUNCHERS = frozenset(
    {
        "frameseek.service.command",
        "frameseek.app",
        "frameseek.mcp",
        "frameseek.mcp.command",
        "frameseek.mcp_server.command",
    }
)
"""What one door may import of another: the function that starts it (the app's lives in its package root)."""

DOOR_OWN_ENTRY = {"frameseek.__main__": "frameseek.cli"}
"""``python -m frameseek`` is the command line's door, though it lives in the package root."""

MAX_TOP_MODULES = 12
LONG_LINES = 400
LONG_REASONS = ("one module because", "one file because", "is long because")
"""The convention: a module over ``LONG_LINES`` lines says in its opening docstring why it is one module,
in a sentence holding one of these phrases ("One module because ...", "One file because ...",
"... is long because ...")."""

Graph = dict[str, set[str]]


# --- reading a source tree ----------------------------------------------------------------------------------


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def module_files(root: Path = ROOT) -> dict[str, Path]:
    """Every module of the package under ``root`` (a ``src`` folder), by dotted name."""
    return {module_name(p, root): p for p in sorted((root / PACKAGE).rglob("*.py"))}


def is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def absolute(module: str | None, level: int, importer: str, is_package: bool) -> str:
    """The absolute module of an ``ImportFrom`` (``from ..x import y`` inside ``importer``)."""
    if not level:
        return module or ""
    base = importer.split(".") if is_package else importer.split(".")[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join([*base, module] if module else base)


def imported(path: Path, name: str) -> list[tuple[str, str | None]]:
    """(module, name) for every project import in ``path`` (None for ``import module``), lazy ones too."""
    found: list[tuple[str, str | None]] = []
    package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(a.name, None) for a in node.names if a.name.split(".")[0] == PACKAGE]
        elif isinstance(node, ast.ImportFrom):
            source = absolute(node.module, node.level, name, package)
            if source.split(".")[0] == PACKAGE:
                found += [(source, a.name) for a in node.names]
    return found


def import_graph(root: Path = ROOT) -> Graph:
    """Module → the project modules it imports. ``from pkg import x`` points at ``pkg.x`` when that is a
    module and at ``pkg`` otherwise, so an arrow to a package means a name from its ``__init__``."""
    modules = module_files(root)
    graph: Graph = {}
    for name, path in modules.items():
        targets: set[str] = set()
        for source, member in imported(path, name):
            submodule = f"{source}.{member}"
            targets.add(submodule if member is not None and submodule in modules else source)
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


# --- the rules: each returns its violations, "importer → imported" ----------------------------------------


def within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def door_of(module: str) -> str | None:
    if module in DOOR_OWN_ENTRY:
        return DOOR_OWN_ENTRY[module]
    return next((d for d in DOORS if within(module, d)), None)


def wing(module: str) -> str:
    """``door``, ``api``, ``lab`` or ``core``."""
    if door_of(module):
        return "door"
    if within(module, API):
        return "api"
    if within(module, LAB):
        return "lab"
    return "core"


def arrows(graph: Graph) -> Iterable[tuple[str, str]]:
    return ((a, b) for a in sorted(graph) for b in sorted(graph[a]))


def core_violations(graph: Graph) -> list[str]:
    """(a) The core imports neither the API, nor the lab, nor a door."""
    return [f"{a} → {b}" for a, b in arrows(graph) if wing(a) == "core" and wing(b) != "core"]


def door_violations(graph: Graph) -> list[str]:
    """(b) A door imports only the API, its own package, the lab (the command line only) and the
    launchers of the other doors."""
    bad = []
    for a, b in arrows(graph):
        door = door_of(a)
        if door is None:
            continue
        allowed = (
            within(b, API)
            or within(b, door)
            or b in LAUNCHERS
            or (door == "frameseek.cli" and within(b, LAB))
        )
        if not allowed:
            bad.append(f"{a} → {b}")
    return bad


def lab_violations(graph: Graph) -> list[str]:
    """(c) The lab imports no door: it uses the library (the core, the API) as a user would."""
    return [f"{a} → {b}" for a, b in arrows(graph) if wing(a) == "lab" and wing(b) == "door"]


def root_violations(graph: Graph) -> list[str]:
    """(e) No arrow runs back up: nothing imports the package root (the version is in frameseek.version)."""
    return [f"{a} → {b}" for a, b in arrows(graph) if b == PACKAGE and a != PACKAGE]


def private_violations(root: Path = ROOT) -> list[str]:
    """(d) No module imports another module's private name: neither ``from x import _name`` nor
    ``x._name`` on a project module (``import frameseek.x as m; m._name``, ``frameseek.x._name``)."""
    modules = module_files(root)
    bad: list[str] = []
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        package = path.name == "__init__.py"
        bound: dict[str, str] = {}  # local name → the project module it stands for
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.split(".")[0] != PACKAGE:
                        continue
                    if any(is_private(part) for part in a.name.split(".")):
                        bad.append(f"{name} → {a.name}")
                    bound[a.asname or PACKAGE] = a.name if a.asname else PACKAGE
            elif isinstance(node, ast.ImportFrom):
                source = absolute(node.module, node.level, name, package)
                if source.split(".")[0] != PACKAGE:
                    continue
                for a in node.names:
                    if is_private(a.name) or any(is_private(part) for part in source.split(".")):
                        bad.append(f"{name} → {source}.{a.name}")
                    elif f"{source}.{a.name}" in modules:
                        bound[a.asname or a.name] = f"{source}.{a.name}"
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and is_private(node.attr):
                owner = dotted(node.value, bound)
                if owner is not None and owner in modules and owner != name:
                    bad.append(f"{name} → {owner}.{node.attr}")
    return sorted(set(bad))


def dotted(node: ast.expr, bound: dict[str, str]) -> str | None:
    """The project module an expression names (``m`` or ``frameseek.video.decode``), else None."""
    if isinstance(node, ast.Name):
        return bound.get(node.id)
    if isinstance(node, ast.Attribute):
        owner = dotted(node.value, bound)
        return None if owner is None else f"{owner}.{node.attr}"
    return None


def top_level_modules(root: Path = ROOT) -> list[str]:
    """(f) The modules directly in the package folder, besides ``__init__`` and ``__main__``."""
    return sorted(p.stem for p in (root / PACKAGE).glob("*.py") if p.stem not in ("__init__", "__main__"))


def unexplained_long_modules(root: Path = ROOT) -> list[str]:
    """(g) Modules over ``LONG_LINES`` lines whose opening docstring does not say why they are one module."""
    long = []
    for path in module_files(root).values():
        text = path.read_text(encoding="utf-8")
        lines = len(text.splitlines())
        if lines > LONG_LINES:
            doc = " ".join((ast.get_docstring(ast.parse(text)) or "").lower().split())
            if not any(reason in doc for reason in LONG_REASONS):
                long.append(f"{path.relative_to(root / PACKAGE)} ({lines} lines)")
    return long


def find_cycle(graph: Graph) -> list[str] | None:
    """One import cycle as a list of modules (first == last), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def without_parent_edges(graph: Graph) -> Graph:
    """The graph less each module's arrows to its own parent packages (importing a submodule runs its
    package's ``__init__`` first: that arrow is how Python works, not a cycle)."""
    return {a: {b for b in targets if not a.startswith(b + ".")} for a, targets in graph.items()}


# --- a small tree that breaks the rules on purpose ------------------------------------------------------------


def write_tree(root: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


@pytest.fixture
def broken_tree(tmp_path: Path) -> Path:
    """A tiny ``frameseek`` whose every module breaks one rule (and one that breaks none)."""
    return write_tree(
        tmp_path,
        {
            "frameseek/__init__.py": '"""root."""\nfrom frameseek.version import __version__\n',
            "frameseek/version.py": '__version__ = "0"\n',
            "frameseek/api.py": "from frameseek.core import search\n",
            "frameseek/core.py": "def search(): ...\ndef _helper(): ...\n",
            "frameseek/sneaky.py": "from frameseek.core import _helper\n",
            "frameseek/sneaky_attr.py": "import frameseek.core as c\n\ndef f():\n    return c._helper()\n",
            "frameseek/sneaky_dotted.py": "import frameseek.core\n\nx = frameseek.core._helper\n",
            "frameseek/sneaky_relative.py": "from .core import _helper\n",
            "frameseek/uphill.py": "from frameseek import __version__\n",
            "frameseek/uses_api.py": "def f():\n    from frameseek.api import search\n",
            "frameseek/uses_lab.py": "from frameseek.lab import train\n",
            "frameseek/uses_door.py": "import frameseek.cli.main\n",
            "frameseek/lab/__init__.py": "from frameseek.core import search\n",
            "frameseek/lab/train.py": "from frameseek.service.app import serve\n",
            "frameseek/cli/__init__.py": "",
            "frameseek/cli/main.py": (
                "from frameseek.api import search\nfrom frameseek.cli import console\n"
                "from frameseek.lab import train\nfrom frameseek.service.command import serve\n"
                "from frameseek.app import launch\n"
            ),
            "frameseek/cli/console.py": "",
            "frameseek/service/__init__.py": "",
            "frameseek/service/command.py": "def serve(): ...\n",
            "frameseek/service/app.py": (
                "from frameseek.core import search\nfrom frameseek.lab import train\n"
                "from frameseek.cli.main import x\nfrom frameseek.api import search\n"
            ),
            "frameseek/app/__init__.py": "def launch(): ...\n",
            "frameseek/long.py": '"""A long module."""\n' + "x = 1\n" * LONG_LINES,
            "frameseek/long_ok.py": '"""A long module.\n\nIt is one module because it must be."""\n'
            + "x = 1\n" * LONG_LINES,
        },
    )


def test_the_core_rule_catches_the_core_importing_the_api_the_lab_or_a_door(broken_tree: Path) -> None:
    assert core_violations(import_graph(broken_tree)) == [
        "frameseek.uses_api → frameseek.api",
        "frameseek.uses_door → frameseek.cli.main",
        "frameseek.uses_lab → frameseek.lab.train",
    ]


def test_the_door_rule_catches_a_door_reaching_past_the_api(broken_tree: Path) -> None:
    assert door_violations(import_graph(broken_tree)) == [
        "frameseek.service.app → frameseek.cli.main",
        "frameseek.service.app → frameseek.core",
        "frameseek.service.app → frameseek.lab.train",
    ]


def test_the_lab_rule_catches_the_lab_importing_a_door(broken_tree: Path) -> None:
    assert lab_violations(import_graph(broken_tree)) == ["frameseek.lab.train → frameseek.service.app"]


def test_the_private_rule_catches_every_way_of_reaching_a_private_name(broken_tree: Path) -> None:
    assert private_violations(broken_tree) == [
        "frameseek.sneaky → frameseek.core._helper",
        "frameseek.sneaky_attr → frameseek.core._helper",
        "frameseek.sneaky_dotted → frameseek.core._helper",
        "frameseek.sneaky_relative → frameseek.core._helper",
    ]


def test_the_uphill_rule_catches_an_import_of_the_package_root(broken_tree: Path) -> None:
    assert root_violations(import_graph(broken_tree)) == ["frameseek.uphill → frameseek"]


def test_the_module_count_sees_only_the_modules_in_the_package_folder(broken_tree: Path) -> None:
    assert "version" in top_level_modules(broken_tree)
    assert "__init__" not in top_level_modules(broken_tree)
    assert "train" not in top_level_modules(broken_tree)  # lab/train.py is in a sub-package
    assert len(top_level_modules(broken_tree)) == 13


def test_the_long_module_rule_catches_a_long_module_that_does_not_say_why(broken_tree: Path) -> None:
    assert unexplained_long_modules(broken_tree) == [f"long.py ({LONG_LINES + 1} lines)"]


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    assert find_cycle(without_parent_edges({"p": {"p.a"}, "p.a": {"p"}})) is None


# --- the rules on the real tree --------------------------------------------------------------------------


def test_the_graph_sees_the_whole_package() -> None:
    graph = import_graph()
    assert len(graph) > 40
    assert "frameseek.video.decode" in graph["frameseek.video.sources"]


def test_no_import_cycles_among_project_modules() -> None:
    cycle = find_cycle(without_parent_edges(import_graph()))
    assert cycle is None, "import cycle: " + " → ".join(cycle or [])


def test_the_core_never_imports_the_api_the_lab_or_a_door() -> None:
    bad = core_violations(import_graph())
    assert not bad, "the core reaches up: " + "; ".join(bad)


def test_doors_import_only_the_api_their_own_package_and_the_other_doors_launchers() -> None:
    bad = door_violations(import_graph())
    assert not bad, "a door reaches past frameseek.api: " + "; ".join(bad)


def test_the_lab_never_imports_a_door() -> None:
    bad = lab_violations(import_graph())
    assert not bad, "the lab imports a door: " + "; ".join(bad)


def test_no_module_imports_another_modules_private_name() -> None:
    bad = private_violations()
    assert not bad, "private names used across modules: " + "; ".join(bad)


def test_no_module_imports_the_package_root() -> None:
    bad = root_violations(import_graph())
    assert not bad, "imports of the package root: " + "; ".join(bad)


def test_at_most_twelve_modules_sit_directly_in_the_package() -> None:
    top = top_level_modules()
    assert len(top) <= MAX_TOP_MODULES, f"{len(top)} top-level modules: {', '.join(top)}"


def test_long_modules_say_why_they_are_one_module() -> None:
    long = unexplained_long_modules()
    assert not long, (
        f"modules over {LONG_LINES} lines whose docstring does not say why ({' / '.join(LONG_REASONS)}): "
        + ", ".join(long)
    )


# --- benchmarks ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(BENCHMARKS.glob("*.py")), ids=lambda p: p.name)
def test_benchmarks_use_only_public_names(path: Path) -> None:
    """No ``from frameseek… import _private`` and no ``obj._private`` on frameseek objects."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    private = [
        f"{node.module}.{alias.name}"
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("frameseek")
        for alias in node.names
        if alias.name.startswith("_")
    ]
    private += [
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr.startswith("_")
        and not node.attr.startswith("__")
        and isinstance(node.value, ast.Name)
        and node.value.id in {"searcher", "searchers", "runner", "model", "index", "matrix", "pipeline"}
    ]
    assert not private, f"{path.name} reaches into private members: {private}"


@pytest.mark.parametrize("path", sorted(BENCHMARKS.glob("*.py")), ids=lambda p: p.name)
def test_every_benchmark_imports(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A benchmark that no longer imports (a renamed library name) is caught here, not in a long run;
    that each one still runs end to end is tests/test_benchmark_smoke.py (its ``--smoke`` mode)."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    importlib.import_module(path.stem)
