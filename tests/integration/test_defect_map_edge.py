"""Defect-map models on the edge, without torch: a hand-built two-output ONNX graph → rows with peak/area
columns (CSV, JSONL, resume), report overlays, card validation; classifier-only rows stay exactly as before."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from inspection.core.defect_map import overlay, summarize_map
from inspection.core.errors import ModelCardError
from inspection.core.model_card import ModelCard
from inspection.core.postprocess import Thresholds
from inspection.core.preprocess import PreprocessSpec
from inspection.edge import OnnxInspector
from inspection.edge.inspector import CARD_KEY
from inspection.edge.writers import read_rows

REPO = Path(__file__).resolve().parents[2]
SIZE, STRIDE = 16, 4  # model input 16x16 → a 4x4 map
MAP = {"output": "defect_map", "threshold": 0.5}
# The classifier header as it was before defect maps: old result files must keep resuming.
OLD_HEADER = ["path", "verdict", "predicted", "confidence", "p_ng", "top1_class", "top1_prob", "top2_class",
              "top2_prob", "model_hash", "error"]
MAP_COLUMNS = ["defect_peak", "defect_peak_x", "defect_peak_y", "defect_area"]


def _card(defect_map: dict | None = None) -> dict:
    card = ModelCard(class_names=["good", "defect"], preprocess=PreprocessSpec(SIZE, SIZE, 3),
                     thresholds=Thresholds(ok_classes=("good",), ng=0.9, ok=0.3), backbone="handmade").to_dict()
    if defect_map is not None:
        card["defect_map"] = defect_map  # a raw dict: bad entries must reach the loader unvalidated
    return card


def build_model(path: Path, card: dict, with_map_output: bool = True, map_first: bool = False,
                probs_output: bool = True) -> Path:
    """uint8 [N,16,16,3] → brightness → 4x4 average → sigmoid(20 (x - 0.5)) = `defect_map`; probs = [1-max, max]."""
    c = lambda name, v: helper.make_tensor(name, TensorProto.FLOAT, [], [v])  # noqa: E731
    nodes = [
        helper.make_node("Cast", ["pixels"], ["x"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["x", "inv255"], ["xs"]),
        helper.make_node("ReduceMean", ["xs"], ["gray"], axes=[3], keepdims=1),  # [N,16,16,1]
        helper.make_node("Transpose", ["gray"], ["gray_nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("AveragePool", ["gray_nchw"], ["cells"], kernel_shape=[STRIDE, STRIDE],
                         strides=[STRIDE, STRIDE]),
        helper.make_node("Sub", ["cells", "half"], ["centred"]),
        helper.make_node("Mul", ["centred", "gain"], ["logits"]),
        helper.make_node("Sigmoid", ["logits"], ["defect_map"]),
        helper.make_node("ReduceMax", ["defect_map"], ["m"], axes=[2, 3], keepdims=0),  # [N,1]
        helper.make_node("Sub", ["one", "m"], ["p_ok"]),
        helper.make_node("Concat", ["p_ok", "m"], ["probs"], axis=1),
    ]
    h = SIZE // STRIDE
    probs = helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", 2])
    dmap = helper.make_tensor_value_info("defect_map", TensorProto.FLOAT, ["N", 1, h, h])
    outputs = [o for o, keep in ((probs, probs_output), (dmap, with_map_output)) if keep]
    graph = helper.make_graph(
        nodes, "defect_map_test",
        [helper.make_tensor_value_info("pixels", TensorProto.UINT8, ["N", SIZE, SIZE, 3])],
        outputs[::-1] if map_first else outputs,
        initializer=[c("inv255", 1 / 255), c("half", 0.5), c("gain", 20.0), c("one", 1.0)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    helper.set_model_props(model, {CARD_KEY: json.dumps(card, sort_keys=True)})
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """48x64 (w x h) PNGs, not the model's 16x16: dark ones (OK), a bright top-left quarter (NG), a grey one."""
    root = tmp_path_factory.mktemp("defect_images")
    dark = np.full((64, 48, 3), 10, np.uint8)
    for i in range(3):
        cv2.imwrite(str(root / f"dark_{i}.png"), dark)
    bright = dark.copy()
    bright[:32, :24] = 250  # exactly the top-left quarter: 2x2 of the 4x4 map cells
    cv2.imwrite(str(root / "spot.png"), bright)
    grey = dark.copy()
    grey[32:, 24:] = 138  # a faint bottom-right defect: sigmoid(20 (0.54 - 0.5)) ≈ 0.69 → REVIEW
    cv2.imwrite(str(root / "faint.png"), grey)
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    return root


@pytest.fixture(scope="module")
def map_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_model(tmp_path_factory.mktemp("map_model") / "model.onnx", _card(MAP))


def _inspect(model: Path, src: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "inspection.edge", str(model), str(src), "--out", str(out),
                           "--device", "cpu", "--top-k", "2", "--quiet", "--batch-size", "2", *extra],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc


def _check_rows(rows: list[dict]) -> None:
    by = {Path(r["path"]).stem: r for r in rows}
    assert len(rows) == 6 and len(by) == 6
    num = {k: lambda r, k=k: float(r[k]) for k in MAP_COLUMNS}
    for i in range(3):
        d = by[f"dark_{i}"]
        assert d["verdict"] == "OK" and num["defect_area"](d) == 0.0 and num["defect_peak"](d) < 0.01
    spot = by["spot"]
    assert spot["verdict"] == "NG" and num["defect_peak"](spot) > 0.99
    assert num["defect_peak_x"](spot) < 0.5 and num["defect_peak_y"](spot) < 0.5  # in the bright quarter
    assert num["defect_area"](spot) == pytest.approx(0.25)  # the square's share of the image
    faint = by["faint"]
    assert faint["verdict"] == "REVIEW" and 0.6 < num["defect_peak"](faint) < 0.8
    assert num["defect_peak_x"](faint) > 0.5 and num["defect_peak_y"](faint) > 0.5
    assert num["defect_area"](faint) == pytest.approx(0.25)
    broken = by["broken"]
    assert broken["verdict"] == "ERROR" and all(broken[k] in ("", None) for k in MAP_COLUMNS)


def test_csv_rows_and_report_overlays(map_model: Path, images: Path, tmp_path: Path) -> None:
    out, report = tmp_path / "r.csv", tmp_path / "report.html"
    _inspect(map_model, images, out, "--report", str(report))
    with open(out, newline="") as f:
        header = next(csv.reader(f))
    assert header == OLD_HEADER[:5] + MAP_COLUMNS + OLD_HEADER[5:]
    _check_rows(list(read_rows(out)))
    page = report.read_text()
    assert page.count('<img class="overlay" src="data:image/jpeg;base64,') == 2  # the NG and the REVIEW image
    assert page.count('class="thumb ng map"') == 1 and page.count('class="thumb review map"') == 1
    assert "defect peak 1.00 at x 0.12, y 0.12 &middot; area 25.0%" in page and 'id="map-legend"' in page
    assert not any(f'{a}="http' in page for a in ("src", "href"))  # self-contained: nothing fetched


def test_flagged_rows_keep_small_maps_and_resumed_ones_keep_their_figures(map_model: Path, images: Path,
                                                                          tmp_path: Path) -> None:
    from inspection.edge.report_html import render_report
    from inspection.edge.runner import Progress, run_inspection

    edge, out = OnnxInspector(map_model, device="cpu"), tmp_path / "r.csv"
    first = run_inspection(edge, [str(images / "spot.png")], out, progress=Progress(enabled=False))
    (kept,) = first.flagged
    assert kept["defect_map"].dtype == np.float16 and kept["defect_map"].shape == (4, 4)
    resumed = run_inspection(edge, [str(images)], out, resume=True, progress=Progress(enabled=False))
    assert resumed.n_resumed == 1 and resumed.n_new == 5 and len(resumed.flagged) == 2
    page = render_report(resumed)
    # The resumed NG row has no map in memory: its plain thumbnail and its figures from the file.
    assert page.count('class="overlay"') == 1 and page.count("area 25.0%") == 2


def test_jsonl_and_resume_after_a_half_written_row(map_model: Path, images: Path, tmp_path: Path) -> None:
    for out in (tmp_path / "r.jsonl", tmp_path / "r.csv"):
        _inspect(map_model, images, out)
        full = list(read_rows(out))
        _check_rows(full)
        lines = out.read_text().splitlines(keepends=True)
        out.write_text("".join(lines[:3]) + lines[3][: len(lines[3]) // 2])  # killed mid-row
        _inspect(map_model, images, out, "--resume")
        again = list(read_rows(out))
        assert sorted(r["path"] for r in again) == sorted(r["path"] for r in full)  # no duplicate, none lost
        _check_rows(again)
    rows = [json.loads(line) for line in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert all(set(MAP_COLUMNS) <= set(r) for r in rows)


def test_classifier_only_rows_keep_the_old_columns(images: Path, tmp_path: Path) -> None:
    model = build_model(tmp_path / "clf.onnx", _card(), with_map_output=False)
    out = tmp_path / "r.csv"
    _inspect(model, images, out)
    with open(out, newline="") as f:
        assert next(csv.reader(f)) == OLD_HEADER
    _inspect(model, images, tmp_path / "r.jsonl")
    keys = {k for line in (tmp_path / "r.jsonl").read_text().splitlines() for k in json.loads(line)}
    assert keys == {"path", "verdict", "predicted", "confidence", "p_ng", "top_k", "model_hash", "error"}
    # A graph output the card does not claim is ignored, and a classifier's results carry no map.
    extra = OnnxInspector(build_model(tmp_path / "extra.onnx", _card()), device="cpu")
    assert extra.card.defect_map == {} and extra.card.defect_threshold is None
    assert all(r.defect_map is None for batch in extra.iter_results([str(images / "spot.png")]) for r in batch)


def test_predict_keeps_returning_probabilities(map_model: Path, tmp_path: Path) -> None:
    batch = np.zeros((3, SIZE, SIZE, 3), np.uint8)
    batch[1, :8, :8] = 255
    for model in (map_model, build_model(tmp_path / "first.onnx", _card(MAP), map_first=True)):
        edge = OnnxInspector(model, device="cpu")
        probs = edge.predict(batch)
        assert probs.shape == (3, 2) and probs.dtype == np.float32
        p2, maps = edge.predict_with_map(batch)
        assert maps is not None and maps.shape == (3, 4, 4) and maps.dtype == np.float32
        np.testing.assert_array_equal(probs, p2)
        assert maps[1, :2, :2].min() > 0.99 and maps[0].max() < 0.01
    assert edge.card.defect_map == MAP and edge.card.defect_threshold == 0.5


@pytest.mark.parametrize("defect_map, match", [
    ({"threshold": 7}, "defect_map"),
    ({"output": "defect_map", "threshold": 7}, "threshold"),
    ({"output": "defect_map", "threshold": True}, "threshold"),
    ({"output": "", "threshold": 0.5}, "output"),
    ({"output": "defect_map", "threshold": 0.5, "stride": 4}, "unknown"),
    ("defect_map", "object"),
])
def test_malformed_defect_map_entry_is_refused(defect_map: object, match: str, tmp_path: Path) -> None:
    model = build_model(tmp_path / "bad.onnx", _card(defect_map))  # type: ignore[arg-type]
    with pytest.raises(ModelCardError, match=match) as e:
        OnnxInspector(model, device="cpu")
    assert str(model) in str(e.value)
    with pytest.raises(ModelCardError, match="model.json"):
        ModelCard.from_dict(_card(defect_map), "model.json")  # type: ignore[arg-type]


def test_card_claiming_a_map_the_graph_lacks_is_refused(tmp_path: Path) -> None:
    missing = build_model(tmp_path / "nomap.onnx", _card(MAP), with_map_output=False)
    with pytest.raises(ModelCardError, match=r"nomap\.onnx.*'defect_map'"):
        OnnxInspector(missing, device="cpu")
    renamed = build_model(tmp_path / "renamed.onnx", _card({"output": "heat", "threshold": 0.5}))
    with pytest.raises(ModelCardError, match="'heat'"):
        OnnxInspector(renamed, device="cpu")
    only_map = build_model(tmp_path / "onlymap.onnx", _card(MAP), probs_output=False)
    with pytest.raises(ModelCardError, match="class probabilities"):
        OnnxInspector(only_map, device="cpu")
    result = subprocess.run([sys.executable, "-m", "inspection.edge", str(missing), str(tmp_path), "--out",
                             str(tmp_path / "r.csv"), "--device", "cpu"], cwd=REPO, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2 and "error:" in result.stderr and "Traceback" not in result.stderr


def test_old_cards_load_without_the_key() -> None:
    card = _card()
    del card["defect_map"]
    assert ModelCard.from_dict(card).defect_map == {}


def test_summary_and_overlay_numbers() -> None:
    m = np.zeros((4, 5), np.float32)
    m[3, 1], m[0, 4] = 0.9, 0.6
    s = summarize_map(m, 0.5)
    assert (s.peak, s.peak_x, s.peak_y, s.area) == (pytest.approx(0.9), 1.5 / 5, 3.5 / 4, 2 / 20)
    img = np.full((40, 50, 3), 100, np.uint8)
    out = overlay(img, m, 0.5)
    assert out.shape == img.shape and out.dtype == np.uint8
    assert (out[2:6, 2:6] == 100).all()  # probability 0: the image untouched
    assert not np.array_equal(out[30:40, 10:20], img[30:40, 10:20])  # the peak cell is coloured
    assert overlay(img[:, :, 0], m, 0.5).shape == img.shape  # grey images become RGB
    with pytest.raises(ValueError, match="defect map"):
        summarize_map(np.zeros((2, 2, 2)), 0.5)
