"""Checkpoint → ONNX → edge: metadata round trip, parity gate (and its failure), int8 gate, batch inspection."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
import typer
from bad_images import write_bad_images
from edge_helpers import make_dataset, train_on_manifest, train_tiny
from typer.testing import CliRunner

from inspection.cli import export_cmds, inspect_cmd
from inspection.core.errors import ModelCardError
from inspection.core.model_card import read_model_card
from inspection.data.manifest import load_manifest
from inspection.edge import OnnxInspector
from inspection.edge.providers import DeviceError
from inspection.edge.writers import read_rows
from inspection.export import export_model, export_onnx
from inspection.export.onnx_export import CARD_KEY, OPSET
from inspection.export.parity import check_parity
from inspection.export.verify import load_eval_images, verify_model
from inspection.models.checkpoint import load_checkpoint

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Synthetic steel set (6 classes, 32 px gray), a briefly trained tiny_cnn, and its gated fp32 export."""
    root = tmp_path_factory.mktemp("export")
    csv = make_dataset(root / "ds", n_per_class=16, size=32)
    manifest = load_manifest(csv)
    ckpt = train_on_manifest(manifest, csv, root / "model.pt", steps=80)
    report = export_model(ckpt, root / "fp32")  # data: the manifest recorded in the checkpoint
    return {"root": root, "csv": csv, "manifest": manifest, "ckpt": ckpt, "report": report,
            "onnx": root / "fp32" / "model.onnx"}


def _app() -> typer.Typer:
    app = typer.Typer()
    export_cmds.register(app)
    inspect_cmd.register(app)
    return app


def _cli(*args: str):
    return CliRunner().invoke(_app(), [str(a) for a in args])


def test_fp32_export_passes_parity_and_writes_card(trained: dict) -> None:
    report = trained["report"]
    assert report.accepted and report.parity is not None and report.parity.passed
    assert report.parity.n > 10 and report.parity.max_abs_diff <= 1e-4 and report.parity.agreement == 1.0
    assert trained["onnx"].is_file() and (trained["root"] / "fp32" / "model.json").is_file()


def test_metadata_round_trip(trained: dict) -> None:
    proto = onnx.load(str(trained["onnx"]))
    meta = {p.key: p.value for p in proto.metadata_props}
    card_json = read_model_card(trained["root"] / "fp32" / "model.json")
    edge = OnnxInspector(trained["onnx"], device="cpu")
    model = load_checkpoint(trained["ckpt"])
    assert edge.card == card_json  # ONNX metadata and model.json carry the same card
    assert json.loads(meta[CARD_KEY])["class_names"] == model.class_names
    assert json.loads(meta["class_names"]) == model.class_names
    assert meta["input_size"] == "32x32" and meta["input_channels"] == "1" and meta["color_order"] == "GRAY"
    assert meta["resize"] == "stretch" and meta["precision"] == "fp32" and meta["git_commit"] == "0123456789ab"
    assert meta["config_hash"] == "cafe" and meta["dataset_hash"] == model.extra["dataset"]["manifest_hash"]
    assert edge.card.preprocess == model.spec and edge.card.thresholds == model.thresholds
    assert edge.card.lineage["checkpoint_sha256"] and edge.card.metrics["parity"]["passed"]
    assert edge.card.metrics["exported"]["n"] == report_n(trained)
    assert proto.opset_import[0].version == OPSET
    inp = proto.graph.input[0].type.tensor_type
    assert inp.elem_type == onnx.TensorProto.UINT8 and inp.shape.dim[0].dim_param  # dynamic batch
    for n in (1, 7):  # dynamic batch really works
        assert edge.predict(np.zeros((n, 32, 32, 1), np.uint8)).shape == (n, 6)


def report_n(trained: dict) -> int:
    return trained["report"].parity.n


def _mismatched(trained: dict, tmp_path: Path, **spec_changes) -> tuple[OnnxInspector, object]:
    model = load_checkpoint(trained["ckpt"])
    wrong = dataclasses.replace(model, spec=dataclasses.replace(model.spec, **spec_changes))
    exported = export_onnx(wrong, tmp_path / "wrong")
    return OnnxInspector(exported.onnx_path, device="cpu"), model


def test_parity_fails_when_normalisation_differs(trained: dict, tmp_path: Path) -> None:
    inspector, model = _mismatched(trained, tmp_path, mean=(0.5,))  # trained with mean 0.45
    val = load_eval_images(trained["csv"], model.class_names, "val")
    report = check_parity(inspector, model, val.paths)
    assert not report.passed and report.max_abs_diff > 1e-4
    assert any("max |dp|" in p for p in report.problems) and any("preprocessing differs" in p for p in report.problems)


def test_parity_fails_when_resize_policy_differs(trained: dict, tmp_path: Path) -> None:
    inspector, model = _mismatched(trained, tmp_path, resize="letterbox")
    val = load_eval_images(trained["csv"], model.class_names, "val", limit=8)
    wide = []
    for i, p in enumerate(val.paths):  # non-square inputs: letterbox and stretch disagree numerically
        img = cv2.imread(p, cv2.IMREAD_UNCHANGED)
        wide.append(str(tmp_path / f"wide_{i}.png"))
        cv2.imwrite(wide[-1], cv2.resize(img, (96, 32)))
    report = check_parity(inspector, model, wide)
    assert not report.passed and report.max_abs_diff > 1e-4


def test_int8_export_gate_accepts_and_writes(trained: dict) -> None:
    out = trained["root"] / "int8"
    report = export_model(trained["ckpt"], out, "int8", trained["csv"])
    assert report.gate is not None and report.gate.n > 10
    assert report.accepted and report.gate.passed and (out / "model.onnx").exists(), report.to_text()
    edge = OnnxInspector(out / "model.onnx", device="cpu")
    assert edge.card.precision == "int8" and edge.card.lineage["calibration"]["n_images"] > 0
    assert edge.card.metrics["gate"]["passed"] and edge.card.metrics["gate"]["accuracy_drop_pt"] <= 0.5
    ops = {n.op_type for n in onnx.load(str(out / "model.onnx")).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    verified = verify_model(out / "model.onnx", trained["csv"])  # re-runs the gate against the checkpoint
    assert verified.passed and verified.gate is not None, verified.to_text()


def test_gate_rejection_writes_nothing_as_accepted(trained: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    import inspection.export.gated_export as pipeline

    real = pipeline.precision_gate
    monkeypatch.setattr(pipeline, "precision_gate",
                        lambda *a, **k: real(*a, **k, max_accuracy_drop_pt=-101.0))  # impossible to meet
    out = trained["root"] / "int8_rejected"
    result = _cli("export", trained["ckpt"], "--out", out, "--precision", "int8", "--data", trained["csv"])
    assert result.exit_code == 1, result.output
    assert "REJECTED" in result.output and "accuracy drops" in result.output
    assert not (out / "model.onnx").exists() and (out / "rejected-int8" / "gate.json").is_file()


def test_verify_cli(trained: dict) -> None:
    result = _cli("verify", trained["onnx"], trained["csv"], "--json", trained["root"] / "verify.json")
    assert result.exit_code == 0, result.output
    assert "PASSED" in result.output and json.loads((trained["root"] / "verify.json").read_text())["passed"]


def _folder_with_bad_files(trained: dict, tmp_path: Path) -> tuple[Path, dict[str, str], int]:
    src = tmp_path / "line"
    expected = write_bad_images(src / "bad")
    good = load_eval_images(trained["csv"], trained["manifest"].classes, "test").paths[:10]
    for p in good:
        (src / "good").mkdir(parents=True, exist_ok=True)
        (src / "good" / Path(p).name).write_bytes(Path(p).read_bytes())
    (src / "README.txt").write_text("not an image extension: ignored by the folder walk\n")
    return src, expected, len(good) + len(expected)


def test_inspect_cli_bad_files_rows_summary_and_exit_codes(trained: dict, tmp_path: Path) -> None:
    src, expected, n = _folder_with_bad_files(trained, tmp_path)
    out = tmp_path / "results.csv"
    result = _cli("inspect", trained["onnx"], src, "--out", out, "--device", "cpu", "--batch-size", "4",
                  "--report", tmp_path / "report.html")
    assert result.exit_code == 0, result.output
    rows = list(read_rows(out))
    assert len(rows) == n and len({r["path"] for r in rows}) == n
    by_name = {Path(r["path"]).name: r for r in rows}
    for name, err in expected.items():
        if err:
            assert err in by_name[name]["error"] and by_name[name]["verdict"] == "ERROR", by_name[name]
        else:
            assert by_name[name]["error"] == "" and by_name[name]["verdict"] in ("OK", "NG", "REVIEW"), name
    assert {r["model_hash"] for r in rows} == {OnnxInspector(trained["onnx"], "cpu").model_hash}
    n_bad = sum(1 for err in expected.values() if err)
    assert f"inspected {n} images" in result.stderr and f"errors {n_bad}" in result.stderr, result.stderr
    assert (tmp_path / "report.html").read_text().count("<figure") >= 1
    again = ["inspect", trained["onnx"], src, "--out", out, "--device", "cpu", "--overwrite", "--quiet"]
    assert _cli(*again, "--fail-on", "error").exit_code == 1
    assert _cli(*again, "--fail-on", "ng,review").exit_code == 1
    assert _cli(*again, "--fail-on", "bogus").exit_code == 2
    assert _cli(*again[:-2], "--quiet").exit_code == 2  # exists, neither --resume nor --overwrite


def test_edge_module_cli_jsonl_and_txt_list(trained: dict, tmp_path: Path) -> None:
    good = load_eval_images(trained["csv"], trained["manifest"].classes, "test").paths[:5]
    lst = tmp_path / "list.txt"
    lst.write_text("# paths\n" + "\n".join(good) + "\n\n" + str(tmp_path / "gone.png") + "\n")
    out = tmp_path / "r.jsonl"
    proc = subprocess.run([sys.executable, "-m", "inspection.edge", str(trained["onnx"]), str(lst), "--out", str(out),
                           "--device", "cpu", "--top-k", "2"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 6 and rows[-1]["error"] == "file not found" and len(rows[0]["top_k"]) == 2
    assert set(rows[0]["top_k"][0]) == {"class", "prob"}


def test_missing_source_and_bad_model_fail_before_work(trained: dict, tmp_path: Path) -> None:
    out = tmp_path / "r.csv"
    result = _cli("inspect", trained["onnx"], tmp_path / "nope", "--out", out)
    assert result.exit_code == 2 and "nope (not found)" in result.stderr and "Traceback" not in result.output
    assert not out.exists()
    proto = onnx.load(str(trained["onnx"]))
    for name, meta in [("nometa", None), ("badjson", "{not json"), ("nokeys", json.dumps({"class_names": ["a"]}))]:
        del proto.metadata_props[:]
        if meta is not None:
            e = proto.metadata_props.add()
            e.key, e.value = CARD_KEY, meta
        bad = tmp_path / f"{name}.onnx"
        onnx.save(proto, str(bad))
        with pytest.raises(ModelCardError, match=str(bad)):
            OnnxInspector(bad, device="cpu")
        result = _cli("inspect", bad, tmp_path, "--out", out, "--device", "cpu")
        assert result.exit_code == 2 and str(bad) in result.stderr and not out.exists()


def test_gpu_request_is_loud_and_require_gpu_fails(trained: dict, tmp_path: Path) -> None:
    try:
        edge = OnnxInspector(trained["onnx"], device="cuda", require_gpu=True)
    except DeviceError as e:
        assert "GPU required" in str(e)
    else:  # a machine with a working GPU
        assert edge.providers.on_gpu
        pytest.skip("CUDA provider loaded: the fallback path cannot be exercised here")
    result = _cli("inspect", trained["onnx"], trained["csv"].parent / "images", "--out", tmp_path / "r.csv",
                  "--device", "cuda", "--quiet")
    assert result.exit_code == 0 and "NOT GPU" in result.stderr and "did NOT load" in result.stderr


def test_kill_and_resume_yields_every_image_once(trained: dict, tmp_path: Path) -> None:
    src = tmp_path / "many"
    src.mkdir()
    rng = np.random.default_rng(0)
    n = 1500
    for i in range(n):
        cv2.imwrite(str(src / f"img_{i:05d}.png"), rng.integers(0, 256, (16, 16), np.uint8))
    out = tmp_path / "r.csv"
    cmd = [sys.executable, "-m", "inspection.edge", str(trained["onnx"]), str(src), "--out", str(out),
           "--device", "cpu", "--batch-size", "1", "--workers", "1", "--quiet"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if out.exists() and out.stat().st_size > 40 * 60:  # some dozens of rows are on disk
            break
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    first = list(read_rows(out))
    assert 0 < len(first) < n, f"killed run wrote {len(first)} of {n} rows: not killed midway"
    with open(out, "a") as f:
        f.write("/half/written/row.png,N")  # as if killed mid-write: must be dropped, not kept
    resumed = subprocess.run(cmd + ["--resume"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    paths = [r["path"] for r in read_rows(out)]
    assert len(paths) == n and len(set(paths)) == n and "/half/written/row.png" not in paths
    assert f"{len(first)} resumed" in resumed.stderr


def test_ctrl_c_says_how_to_finish(trained: dict, tmp_path: Path) -> None:
    src = tmp_path / "many"
    src.mkdir()
    for i in range(600):
        cv2.imwrite(str(src / f"img_{i:04d}.png"), np.full((16, 16), i % 256, np.uint8))
    out = tmp_path / "r.csv"
    proc = subprocess.Popen([sys.executable, "-m", "inspection.edge", str(trained["onnx"]), str(src), "--out",
                             str(out), "--device", "cpu", "--batch-size", "1", "--workers", "1", "--quiet"],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (out.exists() and out.stat().st_size > 40 * 30):
        time.sleep(0.005)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "rerun with --resume" in err and "Traceback" not in err, err[-2000:]
    rows = list(read_rows(out))
    assert 0 < len(rows) < 600 and len({r["path"] for r in rows}) == len(rows)


def test_resume_refuses_rows_from_another_model(trained: dict, tmp_path: Path) -> None:
    out = tmp_path / "r.csv"
    src = trained["csv"].parent / "images" / "crazing"
    assert _cli("inspect", trained["onnx"], src, "--out", out, "--device", "cpu", "--quiet").exit_code == 0
    other = train_tiny([str(p) for p in sorted(src.iterdir())[:4]], ["crazing"] * 4, trained["manifest"].classes,
                       load_checkpoint(trained["ckpt"]).spec, tmp_path / "other.pt", steps=2)
    exported = export_onnx(load_checkpoint(other), tmp_path / "other")
    result = _cli("inspect", exported.onnx_path, src, "--out", out, "--device", "cpu", "--resume", "--quiet")
    assert result.exit_code == 2 and "resume only with the same model" in result.stderr


def test_real_neu_parity(neu_dir: Path, tmp_path: Path) -> None:
    """A tiny_cnn briefly trained on real NEU images: exported, parity on 64 other real 200x200 JPEGs."""
    from inspection.core.preprocess import PreprocessSpec

    images = sorted((neu_dir / "IMAGES").glob("*.jpg"))
    classes = sorted({p.stem.rsplit("_", 1)[0] for p in images})
    assert len(classes) == 6
    train = [p for p in images if int(p.stem.rsplit("_", 1)[1]) <= 20]
    spec = PreprocessSpec(64, 64, 1, mean=(0.5,), std=(0.25,))
    ckpt = train_tiny([str(p) for p in train], [p.stem.rsplit("_", 1)[0] for p in train], classes, spec,
                      tmp_path / "neu.pt", steps=30)
    held_out = tmp_path / "neu_val"
    held_out.mkdir()
    for p in [p for p in images if int(p.stem.rsplit("_", 1)[1]) > 20][::26][:64]:
        os.symlink(p, held_out / p.name)
    report = export_model(ckpt, tmp_path / "onnx", data=held_out, parity_limit=64)
    assert report.accepted and report.parity.n == 64, report.to_text()
    assert report.parity.max_abs_diff <= 1e-4 and report.parity.agreement == 1.0
    assert len({Path(p).stem.rsplit("_", 1)[0] for p in load_eval_images(held_out, classes).paths}) == 6


def test_precision_gate_limits() -> None:
    from inspection.core.results import ResultRecord
    from inspection.export.quantize import precision_gate

    classes = ["a", "b"]
    onehot = {c: np.eye(2)[i] for i, c in enumerate(classes)}
    labels = ["a"] * 100 + ["b"] * 100
    ref = [ResultRecord(f"{i}", onehot[lab], lab) for i, lab in enumerate(labels)]
    flip = lambda k: [ResultRecord(r.path, onehot["b"] if i < k else r.probs, r.label)  # noqa: E731
                      for i, r in enumerate(ref)]
    assert precision_gate(ref, flip(0), classes, "int8").passed
    one = precision_gate(ref, flip(1), classes, "int8")  # 0.5 pt accuracy, 1 pt recall of 'a': both at the limit
    assert one.passed and one.accuracy_drop_pt == pytest.approx(0.5) and one.recall_drop_pt["a"] == pytest.approx(1)
    two = precision_gate(ref, flip(2), classes, "int8")
    assert not two.passed and len(two.reasons) == 2 and "recall of 'a'" in two.reasons[1]


def test_jsonl_resume_drops_half_line_and_csv_header_must_match(tmp_path: Path) -> None:
    from inspection.core.errors import InspectionError
    from inspection.edge.writers import ResultWriter

    out = tmp_path / "r.jsonl"
    with ResultWriter(out, top_k=2) as w:
        w.write_rows([{"path": "a.png", "verdict": "OK", "top_k": [("x", 0.9)]}])
    out.write_text(out.read_text() + '{"path": "b.png", "verd')
    assert [r["path"] for r in read_rows(out)] == ["a.png"]
    with ResultWriter(out, top_k=2, append=True) as w:
        w.write_rows([{"path": "b.png", "verdict": "NG", "top_k": []}])
    assert [r["path"] for r in read_rows(out)] == ["a.png", "b.png"]
    csv_out = tmp_path / "r.csv"
    ResultWriter(csv_out, top_k=3).close()
    with pytest.raises(InspectionError, match="different --top-k"):
        ResultWriter(csv_out, top_k=2, append=True)
