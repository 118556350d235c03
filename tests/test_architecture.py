"""The shape of the code: imports flow one way (no cycles), benchmarks use public stages only."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "frameseek"
BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_imports(path: Path) -> set[str]:
    """Every ``frameseek`` module ``path`` imports, at the top or inside a function (lazy imports too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("frameseek")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("frameseek"):
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}  # `from frameseek.x import module`
    return found


def import_graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in SRC.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = {t for t in project_imports(path) if t in modules and t != name}
        # importing a package's submodule runs the package's __init__ first; that edge is not a cycle
        graph[name] = {t for t in targets if not name.startswith(t + ".")}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
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


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycles_among_project_modules() -> None:
    graph = import_graph()
    assert len(graph) > 40  # the walk really saw the package
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " → ".join(cycle or [])


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


def test_long_modules_say_why() -> None:
    """A module over ~400 lines explains in its opening docstring why it is one file."""
    long = []
    for path in SRC.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        if text.count("\n") > 420:
            doc = ast.get_docstring(ast.parse(text)) or ""
            if "one file" not in doc.lower() and "one module" not in doc.lower():
                long.append(f"{path.relative_to(SRC)} ({text.count(chr(10))} lines)")
    assert not long, "long modules without a reason in their docstring: " + ", ".join(long)


@pytest.mark.parametrize("path", sorted(BENCHMARKS.glob("*.py")), ids=lambda p: p.name)
def test_every_benchmark_imports(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A benchmark that no longer imports (a renamed library name) is caught here, not in a long run."""
    import importlib

    monkeypatch.syspath_prepend(str(BENCHMARKS))
    importlib.import_module(path.stem)
