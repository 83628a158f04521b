"""A torch-free model.onnx for fast edge tests: mean colour → two classes, with a real model card in its metadata.

Built with onnx.helper in milliseconds, so tests of listing, writers, locks and resume need no training."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import onnx
from onnx import TensorProto, helper

from inspection.core.model_card import ModelCard
from inspection.core.postprocess import Thresholds
from inspection.core.preprocess import PreprocessSpec
from inspection.edge.inspector import CARD_KEY

SIZE = 8
CLASSES = ["good", "defect"]


def tiny_card(**changes) -> dict:
    """The card dict of the tiny model; keyword arguments replace top-level entries."""
    card = ModelCard(CLASSES, PreprocessSpec(SIZE, SIZE, 3), Thresholds(ok_classes=("good",), ng=0.6, ok=0.4),
                     backbone="tiny_onnx")
    return {**card.to_dict(), **changes}


def write_tiny_onnx(path: Path, card: dict | None = None) -> Path:
    """uint8 [N, 8, 8, 3] → probs [N, 2]: softmax of (bright - dark) from the mean pixel value."""
    x = helper.make_tensor_value_info("images", TensorProto.UINT8, ["N", SIZE, SIZE, 3])
    y = helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", 2])
    w = helper.make_tensor("w", TensorProto.FLOAT, [3, 2], [0.02, -0.02] * 3)
    b = helper.make_tensor("b", TensorProto.FLOAT, [2], [-2.5, 2.5])
    nodes = [
        helper.make_node("Cast", ["images"], ["xf"], to=TensorProto.FLOAT),
        helper.make_node("ReduceMean", ["xf"], ["m"], axes=[1, 2], keepdims=0),
        helper.make_node("MatMul", ["m", "w"], ["z0"]),
        helper.make_node("Add", ["z0", "b"], ["z"]),
        helper.make_node("Softmax", ["z"], ["probs"], axis=1),
    ]
    graph = helper.make_graph(nodes, "tiny", [x], [y], [w, b])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    helper.set_model_props(model, {CARD_KEY: json.dumps(card or tiny_card())})
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def write_images(folder: Path, n: int, prefix: str = "img") -> list[Path]:
    """`n` small PNGs (half dark, half bright) in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        p = folder / f"{prefix}{i:03d}.png"
        cv2.imwrite(str(p), np.full((12, 12, 3), 40 if i % 2 else 220, np.uint8))
        out.append(p)
    return out
