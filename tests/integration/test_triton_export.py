"""`inspection export --triton REPO`: a Triton model repository whose config parses with Triton's own protobuf
definitions (tritonclient's model_config_pb2) and states what the ONNX graph and its card say."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import typer
from edge_helpers import make_dataset, train_on_manifest
from test_defect_map_edge import MAP, _card, build_model
from typer.testing import CliRunner

from inspection.cli import export_cmds
from inspection.core.errors import InspectionError
from inspection.core.model_card import ModelCard
from inspection.core.postprocess import postprocess
from inspection.data.manifest import load_manifest
from inspection.edge import OnnxInspector
from inspection.export.triton import model_config_pb2, parse_config, write_triton_repo

pb2 = model_config_pb2()
if pb2 is None:
    pytest.skip("tritonclient is not installed (make install adds it; pip install --no-deps tritonclient)",
                allow_module_level=True)


def _parse(folder: Path):
    config = parse_config((folder / "config.pbtxt").read_text())
    assert isinstance(config, pb2.ModelConfig)
    return config


def test_map_model_repository(tmp_path: Path) -> None:
    model = build_model(tmp_path / "model.onnx", _card(MAP))
    folder = write_triton_repo(model, tmp_path / "repo", "pill-map", max_batch_size=8, kind="cpu")
    c = _parse(folder)
    assert (c.name, c.platform, c.max_batch_size) == ("pill-map", "onnxruntime_onnx", 8)
    (inp,) = c.input
    assert inp.name == "pixels" and inp.data_type == pb2.TYPE_UINT8 and list(inp.dims) == [16, 16, 3]
    assert [(o.name, o.data_type, list(o.dims)) for o in c.output] == [("probs", pb2.TYPE_FP32, [2]),
                                                                     ("defect_map", pb2.TYPE_FP32, [1, 4, 4])]
    assert c.HasField("dynamic_batching") and c.instance_group[0].kind == pb2.ModelInstanceGroup.KIND_CPU
    assert json.loads(c.parameters["class_names"].string_value) == ["good", "defect"]
    assert json.loads(c.parameters["thresholds"].string_value) == _card(MAP)["thresholds"]
    card = ModelCard.from_dict(json.loads(c.parameters["inspection.model_card"].string_value))
    assert card.to_dict() == _card(MAP)
    assert (folder / "labels.txt").read_text().split() == ["good", "defect"]
    # the copied model is the same file, and what a Triton client decides from the parameters is `inspect`'s verdict
    assert (folder / "1" / "model.onnx").read_bytes() == model.read_bytes()
    edge = OnnxInspector(folder / "1" / "model.onnx", device="cpu")
    x = np.full((3, 16, 16, 3), 10, np.uint8)
    x[1, :8, :8] = 250
    probs = edge.predict(x)
    assert postprocess(probs, card.class_names, card.thresholds) == edge.decide(probs)


def test_export_cli_writes_the_repository(tmp_path: Path) -> None:
    csv = make_dataset(tmp_path / "ds", n_per_class=4, size=16)
    ckpt = train_on_manifest(load_manifest(csv), csv, tmp_path / "model.pt", size=16, steps=2)
    app = typer.Typer()
    export_cmds.register(app)
    out, repo = tmp_path / "steel-v1", tmp_path / "triton"
    r = CliRunner().invoke(app, ["export", str(ckpt), "--out", str(out), "--triton", str(repo),
                                 "--triton-max-batch", "16", "--parity-images", "8"])
    assert r.exit_code == 0, r.output
    c = _parse(repo / "steel-v1")
    assert c.name == "steel-v1" and c.max_batch_size == 16 and list(c.input[0].dims) == [16, 16, 1]
    assert [o.name for o in c.output] == ["probs"] and list(c.output[0].dims) == [6]
    assert c.instance_group[0].kind == pb2.ModelInstanceGroup.KIND_GPU
    assert (repo / "steel-v1" / "1" / "model.onnx").read_bytes() == (out / "model.onnx").read_bytes()
    bad = CliRunner().invoke(app, ["export", str(ckpt), "--out", str(out), "--triton", str(repo),
                                   "--triton-name", "a/b"])
    assert bad.exit_code == 2 and "use letters, digits" in bad.output


def test_refusals(tmp_path: Path) -> None:
    model = build_model(tmp_path / "model.onnx", _card(MAP))
    with pytest.raises(InspectionError, match="instance kind"):
        write_triton_repo(model, tmp_path / "r", "m", kind="tpu")
    with pytest.raises(InspectionError, match="not a valid Triton model config"):
        parse_config('name: "x"\nplatform: 3\nbogus_field: 1\n', "x/config.pbtxt")
    proto = onnx.load(str(model))
    proto.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 1  # a fixed batch of 1: no dynamic batching
    onnx.save(proto, str(tmp_path / "fixed.onnx"))
    with pytest.raises(InspectionError, match="no variable batch dimension"):
        write_triton_repo(tmp_path / "fixed.onnx", tmp_path / "r", "m")
    assert not (tmp_path / "r").exists()
