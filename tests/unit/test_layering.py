"""Layering, read from the source with ``ast`` (nothing is imported): the top-level parts of
``ytingest`` import each other without cycles, and no module grows past MAX_LINES."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "ytingest"
MAX_LINES = 400

Edges = dict[str, dict[str, list[str]]]  # node -> imported node -> ["path:line", ...]


def _modules(package: Path = PACKAGE) -> list[Path]:
    return sorted(p for p in package.rglob("*.py") if "__pycache__" not in p.parts)


def _dotted(package: Path, path: Path) -> str:
    parts = ["ytingest", *path.relative_to(package).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _node(module: str) -> str | None:
    """The top-level part a module belongs to: ``ytingest.db.schema`` -> ``ytingest.db``;
    ``ytingest`` itself (its ``__init__``) is a node too. None for modules outside ytingest."""
    parts = module.split(".")
    if parts[0] != "ytingest":
        return None
    return ".".join(parts[:2])


def _is_part(package: Path, name: str) -> bool:
    """Whether ``ytingest.<name>`` is a module or subpackage (for ``from ytingest import name``)."""
    return (package / f"{name}.py").is_file() or (package / name / "__init__.py").is_file()


def _imported(package_dir: Path, path: Path, tree: ast.Module) -> list[tuple[str, int]]:
    """Every module ``path`` imports, anywhere in it (functions and TYPE_CHECKING too)."""
    here = _dotted(package_dir, path)
    parent = here if path.name == "__init__.py" else here.rpartition(".")[0]  # what ``.`` means here
    found: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = parent.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            if module == "ytingest":
                # ``from ytingest import db`` names a part; ``from ytingest import Engine`` the root
                found += [
                    (f"ytingest.{a.name}" if _is_part(package_dir, a.name) else "ytingest", node.lineno)
                    for a in node.names
                ]
            else:
                found.append((module, node.lineno))
    return found


def _graph(package: Path = PACKAGE) -> Edges:
    edges: Edges = defaultdict(lambda: defaultdict(list))
    for path in _modules(package):
        source = _node(_dotted(package, path))
        assert source is not None
        for module, line in _imported(package, path, ast.parse(path.read_text(), str(path))):
            target = _node(module)
            if target is not None and target != source:
                edges[source][target].append(f"{path.relative_to(package.parent)}:{line}")
    return edges


def _cycles(edges: Edges) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted({*edges, *(w for targets in edges.values() for w in targets)}):
        if v not in index:
            visit(v)
    return sorted(found)


def test_the_graph_sees_every_kind_of_import(tmp_path: Path) -> None:
    """Absolute, relative, in a function, under TYPE_CHECKING, and ``from ytingest import part``."""
    pkg = tmp_path / "ytingest"
    files = {
        "__init__.py": "from ytingest.a import A\n",
        "items.py": "",
        "a/__init__.py": "from .inner import A\n",
        "a/inner.py": "from ..items import X\ndef f():\n    from ytingest.b.deep import g\n",
        "b/__init__.py": "",
        "b/deep.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ytingest import a\n",
        "c.py": "import ytingest.items\nfrom ytingest import A\nimport numpy\n",
    }
    for name, text in files.items():
        (pkg / name).parent.mkdir(parents=True, exist_ok=True)
        (pkg / name).write_text(text)
    edges = _graph(pkg)
    assert {k: sorted(v) for k, v in edges.items()} == {
        "ytingest": ["ytingest.a"],
        "ytingest.a": ["ytingest.b", "ytingest.items"],
        "ytingest.b": ["ytingest.a"],
        "ytingest.c": ["ytingest", "ytingest.items"],
    }
    assert edges["ytingest.b"]["ytingest.a"] == ["ytingest/b/deep.py:3"]
    assert _cycles(edges) == [["ytingest.a", "ytingest.b"]]


def test_cycle_finder_reports_a_cycle() -> None:
    edges: Edges = {"a": {"b": ["x:1"]}, "b": {"c": ["x:2"]}, "c": {"a": ["x:3"]}, "d": {"a": ["x:4"]}}
    assert _cycles(edges) == [["a", "b", "c"]]


def test_no_import_cycle_between_top_level_parts() -> None:
    """``ytingest.db`` -> ``ytingest.speakers`` -> ``ytingest.db`` and the like are not allowed."""
    edges = _graph()
    problems = []
    for component in _cycles(edges):
        members = set(component)
        lines = [
            f"  {a} -> {b}  ({', '.join(where[:3])})"
            for a in component
            for b, where in sorted(edges[a].items())
            if b in members
        ]
        problems.append(f"cycle among {', '.join(component)}:\n" + "\n".join(lines))
    assert not problems, "\n".join(problems)


def test_no_module_is_over_the_line_limit() -> None:
    long = {
        str(p.relative_to(PACKAGE.parent)): n
        for p in _modules()
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines: {long}"
