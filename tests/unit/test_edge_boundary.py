"""The edge runtime never imports torch & co: checked in a fresh interpreter and by scanning the imports."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FORBIDDEN = ("torch", "torchvision", "lightning", "pytorch_lightning", "hydra", "omegaconf", "timm", "pandas",
             "tqdm", "typer", "matplotlib", "albumentations", "sklearn", "onnx", "ray", "pyarrow")
ALLOWED_THIRD_PARTY = {"numpy", "cv2", "onnxruntime"}
SERVE_THIRD_PARTY = {"fastapi", "starlette", "uvicorn"}  # the `serve` extra, only under inspection/edge/serve/


def _forbidden_after(imports: str) -> str:
    """The FORBIDDEN modules loaded after `imports` in a fresh interpreter, comma-separated ('' when none)."""
    code = f"import sys\n{imports}\nprint(','.join(sorted(m for m in {FORBIDDEN!r} if m in sys.modules)))\n"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_fresh_interpreter_edge_import_pulls_no_training_stack() -> None:
    bad = _forbidden_after("import inspection.edge, inspection.edge.cli, inspection.edge.report_html, inspection.core")
    assert bad == "", f"inspection.edge imported: {bad}"


def test_fresh_interpreter_serve_import_pulls_no_training_stack() -> None:
    pytest.importorskip("fastapi", reason="the serve extra is not installed")
    bad = _forbidden_after("import inspection.edge.serve.app, inspection.edge.serve.cli, inspection.edge.serve.batcher\n"
                           "import fastapi, uvicorn")
    assert bad == "", f"inspection.edge.serve imported: {bad}"


def test_serve_help_runs_from_the_edge_cli() -> None:
    out = subprocess.run([sys.executable, "-m", "inspection.edge", "serve", "--help"], cwd=REPO, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0 and "--token-file" in out.stdout and "--max-batch" in out.stdout
def test_ray_loads_only_for_the_ray_engine() -> None:
    """The `inspect` verb and its engine table import Ray only when --engine ray opens a model."""
    code = ("import sys, inspection.cli.inspect_cmd, inspection.engines\n"
            "print(','.join(m for m in ('ray', 'pyarrow') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"importing the inspect verb imported {out.stdout.strip()}"


def test_edge_cli_help_runs_without_typer() -> None:
    out = subprocess.run([sys.executable, "-m", "inspection.edge", "--help"], cwd=REPO, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0 and "--resume" in out.stdout and "--fail-on" in out.stdout


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found = []
    for node in ast.walk(tree):  # walk: imports inside functions count too
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


@pytest.mark.parametrize("package", ["core", "edge"])
def test_ast_scan_core_and_edge_imports(package: str) -> None:
    stdlib = set(sys.stdlib_module_names)
    offenders = []
    for py in sorted((REPO / "inspection" / package).rglob("*.py")):
        for line, module in _imports(py):
            top = module.split(".")[0]
            inside = module.startswith(("inspection.core", "inspection.edge")) if top == "inspection" else None
            if package == "core" and module.startswith("inspection.edge"):
                inside = False  # core sits below edge
            allowed = ALLOWED_THIRD_PARTY | (SERVE_THIRD_PARTY if "serve" in py.relative_to(REPO).parts else set())
            ok = inside if inside is not None else (top in stdlib or top in allowed)
            if not ok:
                offenders.append(f"{py.relative_to(REPO)}:{line} imports {module}")
    assert not offenders, "\n".join(offenders)
