"""Imports run one way between the packages of `inspection`, and no two modules import each other in a circle.

The allowed directions are the house plan (docs/development.md): core ← edge ← the training side ← cli. Lazy
imports inside functions count too: a cycle hidden in a function body is still a cycle for the reader.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "inspection"

_BASE = {"core", "edge"}
# package → the packages it may import (besides itself)
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "edge": {"core"},
    "data": _BASE,
    "models": _BASE | {"data"},
    "evaluation": _BASE | {"data", "models"},
    "training": _BASE | {"data", "models", "evaluation"},
    "curation": _BASE | {"data", "models", "evaluation", "training"},
    "export": _BASE | {"data", "models", "evaluation"},
    "engines": _BASE | {"models"},
    "cli": _BASE | {"data", "models", "evaluation", "training", "curation", "export", "engines"},
}


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, source: str | None = None) -> list[tuple[int, str]]:
    """(line, module) for every `inspection.*` import in the file, relative imports resolved."""
    tree = ast.parse(source if source is not None else path.read_text(encoding="utf-8"), str(path))
    here = module_name(path).split(".")
    if path.name != "__init__.py":
        here = here[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("inspection")]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(here[: len(here) - node.level + 1] + ([base] if base else []))
            if not base.startswith("inspection"):
                continue
            # `from inspection.cli import typed` imports the module inspection.cli.typed
            for a in node.names:
                sub = f"{base}.{a.name}"
                found.append((node.lineno, sub if (PACKAGE.parent / (sub.replace(".", "/") + ".py")).exists()
                              or (PACKAGE.parent / sub.replace(".", "/")).is_dir() else base))
    return found


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def package_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def file_violations(path: Path, source: str | None = None, allowed: dict[str, set[str]] = ALLOWED) -> list[str]:
    """The imports of one module that run against the allowed directions."""
    pkg = package_of(module_name(path))
    if pkg is None:
        return []
    assert pkg in allowed, f"new package inspection.{pkg}: add it to ALLOWED with its directions"
    bad = []
    for line, target in imported_modules(path, source):
        other = package_of(target)
        if other and other != pkg and other not in allowed[pkg]:
            bad.append(f"{path.relative_to(REPO)}:{line} ({pkg} → {other}) imports {target}")
    return bad


def module_cycles() -> list[list[str]]:
    """Strongly connected groups of two or more modules (Tarjan), i.e. modules that import each other."""
    mods = all_modules()
    graph = {m: {t for _, t in imported_modules(p) if t in mods and t != m} for m, p in mods.items()}
    # a package's __init__ re-exporting its own modules is not a cycle a reader walks
    for m in graph:
        graph[m] = {t for t in graph[m] if not (mods[t].name == "__init__.py" and m.startswith(t + "."))}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in graph:
        if v not in index:
            visit(v)
    return groups


def test_packages_import_one_way() -> None:
    bad = [v for path in all_modules().values() for v in file_violations(path)]
    assert not bad, "imports against the house plan:\n" + "\n".join(bad)


def test_no_module_imports_back_into_a_circle() -> None:
    assert module_cycles() == []


@pytest.mark.parametrize("where,source", [
    # the loop this test was written for: models/train.py imported evaluation, which imports models.checkpoint
    ("models/train.py", "from inspection.evaluation.evaluate import evaluate_model"),
    ("edge/runner.py", "def f():\n    from inspection.engines.torch_engine import TorchInspector"),
    ("core/files.py", "import inspection.edge.inspector"),
    ("export/probe.py", "from inspection.curation import audit"),
])
def test_the_check_catches_an_import_back_up(where: str, source: str) -> None:
    assert len(file_violations(PACKAGE / where, source)) == 1


@pytest.mark.parametrize("source,expected", [
    ("from inspection.core.files import atomic_write_text", "inspection.core.files"),
    ("from inspection.cli import typed", "inspection.cli.typed"),
    ("from . import files", "inspection.core.files"),
])
def test_import_resolution(source: str, expected: str) -> None:
    assert [m for _, m in imported_modules(PACKAGE / "core" / "probe.py", source)] == [expected]
