"""`inspect --engine ray` on a local 2-CPU Ray cluster: the same rows as the local ONNX runner (bad files
included), resume after an interrupted run, defect maps through the object store, a clean shutdown.

One cluster per module (starting Ray takes ~20 s on the shared 2-core box); the shutdown test runs last."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import typer
from bad_images import write_bad_images
from test_defect_map_edge import MAP, _card, build_model
from typer.testing import CliRunner

from inspection.cli import inspect_cmd
from inspection.edge import OnnxInspector
from inspection.edge.runner import Progress, run_inspection
from inspection.edge.writers import read_rows

ray = pytest.importorskip("ray", reason="--engine ray needs pip install '.[cluster]' (make install has it)")
from inspection.engines.ray_engine import RayInspector  # noqa: E402

# Ray Data reads its own deprecated settings when it copies its context to the workers: not ours to fix.
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.data.context")]
N_GOOD = 300
BATCH = "16"


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A 2-class ONNX classifier (brightness → p_defect) and 300 PNGs of varied brightness plus every bad kind."""
    root = tmp_path_factory.mktemp("ray")
    model = build_model(root / "model.onnx", _card(), with_map_output=False)
    src = root / "images"
    bad = write_bad_images(src / "bad")
    rng = np.random.default_rng(0)
    for i in range(N_GOOD):
        img = rng.integers(0, 256, (20, 24, 3), np.uint8) // int(rng.integers(1, 6))
        cv2.imwrite(str(src / f"img_{i:04d}.png"), img)
    return {"root": root, "model": model, "src": src, "bad": bad, "n": N_GOOD + len(bad)}


@pytest.fixture(scope="module")
def engine(data: dict):
    """The module's one Ray cluster, started by the engine itself (local, 2 CPUs, 2 actors)."""
    assert not ray.is_initialized()
    e = RayInspector(data["model"], concurrency=2)
    yield e
    e.close()


def _cli(*args: object):
    app = typer.Typer()
    inspect_cmd.register(app)
    app.command("noop")(lambda: None)  # two commands: typer keeps `inspect` as a subcommand
    return CliRunner().invoke(app, ["inspect", *map(str, args)])


@pytest.fixture(scope="module")
def local_rows(data: dict) -> list[dict]:
    out = data["root"] / "local.csv"
    r = _cli(data["model"], data["src"], "--out", out, "--device", "cpu", "--batch-size", BATCH, "--quiet")
    assert r.exit_code == 0, r.output
    return list(read_rows(out))


def test_cli_ray_rows_equal_the_local_runner(engine: RayInspector, data: dict, local_rows: list[dict],
                                             tmp_path: Path) -> None:
    out = tmp_path / "ray.csv"
    r = _cli(data["model"], data["src"], "--out", out, "--engine", "ray", "--concurrency", "2",
             "--batch-size", BATCH, "--quiet")
    assert r.exit_code == 0, r.output
    assert "on ray (local): 2 actors, onnxruntime cpu" in r.output and f"inspected {data['n']} images" in r.output
    rows = list(read_rows(out))
    assert len(rows) == data["n"] == len({row["path"] for row in rows})
    assert rows == local_rows  # verdicts, classes, p_ng, top-k, errors, order: all identical
    verdicts = {row["verdict"] for row in rows}
    assert {"OK", "REVIEW", "ERROR"} <= verdicts, verdicts  # the comparison covers more than one kind of row
    by_name = {Path(row["path"]).name: row for row in rows}
    for name, err in data["bad"].items():
        assert (err in by_name[name]["error"] and by_name[name]["verdict"] == "ERROR") if err else \
            by_name[name]["verdict"] != "ERROR", by_name[name]


def test_resume_after_an_interrupted_run_gives_one_row_per_file(engine: RayInspector, data: dict,
                                                              local_rows: list[dict], tmp_path: Path) -> None:
    lines = (data["root"] / "local.csv").read_text().splitlines(keepends=True)
    out = tmp_path / "r.csv"
    out.write_text("".join(lines[:121]) + lines[121][:25])  # header + 120 rows, then a row cut mid-write
    summary = run_inspection(engine, [str(data["src"])], out, batch_size=int(BATCH), resume=True,
                             progress=Progress(enabled=False))
    assert (summary.n_resumed, summary.n_new) == (120, data["n"] - 120)
    rows = list(read_rows(out))
    assert rows == local_rows  # the cut row dropped, every file exactly once, in listing order


def test_object_store_uris_in_a_list_are_fetched_by_the_actors(engine: RayInspector, local_rows: list[dict],
                                                               tmp_path: Path) -> None:
    """URIs go through pyarrow.fs in the actors (file:// here; s3:// and gs:// take the same path)."""
    chosen = local_rows[-40:]  # bad/ lists last: its files' errors must survive the fetch too
    uris = [Path(r["path"]).as_uri() for r in chosen] + ["file:///no/such/dir/gone.png"]
    (tmp_path / "uris.txt").write_text("\n".join(uris) + "\n")
    run_inspection(engine, [str(tmp_path / "uris.txt")], tmp_path / "r.csv", batch_size=int(BATCH),
                   progress=Progress(enabled=False))
    rows = list(read_rows(tmp_path / "r.csv"))
    assert [r["path"] for r in rows] == uris
    strip = lambda row: {k: v for k, v in row.items() if k != "path"}  # noqa: E731
    assert [strip(r) for r in rows[:-1]] == [strip(r) for r in chosen]
    assert rows[-1]["verdict"] == "ERROR" and rows[-1]["error"] == "file not found"
    assert any(r["verdict"] == "ERROR" for r in chosen) and any(r["verdict"] != "ERROR" for r in chosen)


def test_defect_maps_travel_back_with_their_rows(engine: RayInspector, tmp_path: Path) -> None:
    model = build_model(tmp_path / "map.onnx", _card(MAP))
    src = tmp_path / "img"
    src.mkdir()
    for i, v in enumerate((10, 60, 130, 200, 250)):
        img = np.full((32, 32, 3), 10, np.uint8)
        img[:16, :16] = v
        cv2.imwrite(str(src / f"m{i}.png"), img)
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    rows = {}
    for name, inspector in (("local", OnnxInspector(model, "cpu")), ("ray", RayInspector(model, concurrency=1))):
        summary = run_inspection(inspector, [str(src)], tmp_path / f"{name}.jsonl", progress=Progress(enabled=False))
        inspector.close()  # the ray one joined the module's cluster: it must leave it running
        rows[name] = list(read_rows(tmp_path / f"{name}.jsonl"))
        assert summary.n_flagged >= 1 and all("defect_map" in f for f in summary.flagged)
    assert ray.is_initialized()
    assert rows["ray"] == rows["local"] and any(r["defect_area"] for r in rows["ray"])


def test_wrong_options_fail_before_ray_starts(data: dict, tmp_path: Path) -> None:
    out = tmp_path / "x.csv"
    r = _cli(data["model"], data["src"], "--out", out, "--address", "auto")
    assert r.exit_code == 2 and "--address need --engine ray" in r.output
    r = _cli(data["model"], data["src"], "--out", out, "--engine", "ray", "--device", "cuda")
    assert r.exit_code == 2 and "--gpus-per-worker" in r.output, r.output
    assert not out.exists()


def test_a_pool_the_local_cluster_cannot_hold_is_refused(engine: RayInspector, data: dict) -> None:
    from inspection.core.errors import InspectionError

    with pytest.raises(InspectionError, match=r"2 actors need 6 CPUs \(--workers 3 each\).*has 2"):
        next(engine.iter_results([str(data["model"])], workers=3))  # would otherwise wait forever


def _processes_of(session_dir: str) -> list[str]:
    found = []
    for cmd in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmd.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # ended while we looked
        if session_dir in text:
            found.append(f"{cmd.parent.name}: {text[:120]}")
    return found


def test_close_shuts_the_local_cluster_down(engine: RayInspector) -> None:
    session = ray._private.worker._global_node.get_session_dir_path()
    assert _processes_of(session), "expected Ray's processes while the engine is open"
    engine.close()
    assert not ray.is_initialized()
    deadline = time.monotonic() + 20
    while _processes_of(session) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _processes_of(session), _processes_of(session)
