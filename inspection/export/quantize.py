"""Lower precision: fp16 (GPU) and int8 static QDQ per-channel (CPU), both keeping uint8 in / float32 out.

Neither is trusted by default: `precision_gate` accepts a candidate only if validation accuracy drops by at
most 0.5 pt and no class loses more recall than 1 pt of its images against the fp32 reference — counted in
images, with one image always allowed: on a class of 25 validation images one image is 4 pt, the smallest change
its recall can show, and no evidence of a worse model. `export --override-gate REASON` ships a rejected candidate
anyway and records the reason and the failed checks in the card.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

from inspection.core.errors import ConfigError
from inspection.core.postprocess import Thresholds
from inspection.core.results import ResultRecord
from inspection.edge.inspector import OnnxInspector
from inspection.evaluation.metrics import compute_metrics

MAX_ACCURACY_DROP_PT = 0.5
MAX_RECALL_DROP_PT = 1.0
# Ops worth quantising on CPU. The uint8→float normalisation (Cast/Mul/Sub/Div) and Softmax stay float32.
INT8_OPS = ["Conv", "Gemm", "MatMul", "Add", "MaxPool", "GlobalAveragePool", "AveragePool", "Relu", "Clip"]


def convert_fp16(src: str | os.PathLike, dst: str | os.PathLike) -> onnx.ModelProto:
    """float32 weights/activations → float16; uint8 input and float32 probabilities are kept (keep_io_types)."""
    # Shipped inside onnxruntime (a copy of onnxconverter-common's converter): no extra dependency.
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16

    model = onnx.load(str(src))
    fp16 = convert_float_to_float16(model, keep_io_types=True, op_block_list=[*DEFAULT_OP_BLOCK_LIST, "Softmax"])
    onnx.save(fp16, str(dst))
    return fp16


class _PixelReader(CalibrationDataReader):
    """Calibration batches of resized uint8 pixels, read lazily from files (ORT CalibrationDataReader protocol)."""

    def __init__(self, inspector: OnnxInspector, paths: Sequence[str | Path], batch_size: int = 16):
        self.inspector, self.paths, self.batch_size, self.pos = inspector, [str(p) for p in paths], batch_size, 0

    def get_next(self) -> dict | None:
        while self.pos < len(self.paths):
            chunk = self.paths[self.pos : self.pos + self.batch_size]
            self.pos += self.batch_size
            pixels = []
            for p in chunk:
                try:
                    pixels.append(self.inspector.load(p))
                except Exception:  # unreadable calibration images are skipped, not fatal
                    continue
            if pixels:
                return {self.inspector.input_name: np.stack(pixels)}
        return None

    def rewind(self) -> None:
        self.pos = 0


CALIBRATION_METHODS = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
                       "percentile": CalibrationMethod.Percentile}


def quantize_int8(src: str | os.PathLike, dst: str | os.PathLike, calibration_paths: Sequence[str | Path],
                  per_channel: bool = True, method: str = "minmax", keep_first_last_fp32: bool = False,
                  ) -> onnx.ModelProto:
    """Static QDQ int8 (u8 activations, s8 per-channel weights), calibrated on training-split images."""
    if not calibration_paths:
        raise ConfigError("int8 quantisation needs calibration images (the training split)")
    inspector = OnnxInspector(src, device="cpu")
    reader = _PixelReader(inspector, calibration_paths)
    with tempfile.TemporaryDirectory(prefix="inspection-int8-") as tmp:
        prepped = Path(tmp) / "prepped.onnx"
        quant_pre_process(str(src), str(prepped), skip_symbolic_shape=True)
        quantize_static(
            str(prepped), str(dst), reader, quant_format=QuantFormat.QDQ, per_channel=per_channel,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, op_types_to_quantize=INT8_OPS,
            nodes_to_exclude=_first_last(prepped) if keep_first_last_fp32 else None,
            calibrate_method=CALIBRATION_METHODS[method],
            extra_options={"ActivationSymmetric": False, "WeightSymmetric": True},
        )
    model = onnx.load(str(dst))
    # quant_pre_process drops metadata_props on some versions: carry the card over from the fp32 model.
    src_meta = {p.key: p.value for p in onnx.load(str(src), load_external_data=False).metadata_props}
    have = {p.key for p in model.metadata_props}
    for key, value in src_meta.items():
        if key not in have:
            entry = model.metadata_props.add()
            entry.key, entry.value = key, value
    onnx.save(model, str(dst))
    return model


def _first_last(model_path: Path) -> list[str]:
    """Names of the first Conv and the last Conv/Gemm: the layers most sensitive to int8."""
    nodes = [n for n in onnx.load(str(model_path)).graph.node if n.op_type in ("Conv", "Gemm", "MatMul")]
    return sorted({nodes[0].name, nodes[-1].name}) if nodes else []


@dataclass
class GateReport:
    """Accuracy and per-class recall of a lower-precision model against the fp32 reference."""

    precision: str
    passed: bool
    n: int
    accuracy_ref: float
    accuracy: float
    accuracy_drop_pt: float
    recall_drop_pt: dict[str, float]
    reasons: list[str] = field(default_factory=list)
    max_accuracy_drop_pt: float = MAX_ACCURACY_DROP_PT
    max_recall_drop_pt: float = MAX_RECALL_DROP_PT
    images_lost: dict[str, int] = field(default_factory=dict)  # per class: recall drop in images
    images_allowed: dict[str, int] = field(default_factory=dict)  # per class: allowed_recall_loss(support)
    override: str = ""  # why a failed gate was overridden (export --override-gate); "" = not overridden

    def to_dict(self) -> dict:
        return asdict(self)

    def to_text(self) -> str:
        head = (f"{self.precision} gate {'PASSED' if self.passed else 'FAILED'} on {self.n} labelled images: "
                f"accuracy {self.accuracy:.2%} vs fp32 {self.accuracy_ref:.2%} (drop {self.accuracy_drop_pt:+.2f} pt,"
                f" limit {self.max_accuracy_drop_pt} pt); worst class recall drop "
                f"{max(self.recall_drop_pt.values(), default=0.0):+.2f} pt (limit {self.max_recall_drop_pt} pt of a "
                f"class's images, at least one image)")
        tail = [f"  gate OVERRIDDEN: {self.override}"] if self.override else []
        return "\n".join([head, *(f"  - {r}" for r in self.reasons), *tail])


def precision_gate(reference: list[ResultRecord], candidate: list[ResultRecord], class_names: list[str],
                   precision: str, thresholds: Thresholds | None = None,
                   max_accuracy_drop_pt: float = MAX_ACCURACY_DROP_PT,
                   max_recall_drop_pt: float = MAX_RECALL_DROP_PT) -> GateReport:
    """Score both record sets with evaluation.metrics.compute_metrics and apply the acceptance limits."""
    ref = compute_metrics(reference, class_names, thresholds)
    cand = compute_metrics(candidate, class_names, thresholds)
    reasons = []
    if ref["n"] == 0 or cand["n"] != ref["n"]:
        reasons.append(f"need the same labelled images on both sides (fp32 {ref['n']}, {precision} {cand['n']})")
    # Rounded: 100 * (1.0 - 0.995) is 0.5000000000000004, and a drop exactly at the limit is allowed.
    acc_drop = round(100.0 * (ref["accuracy"] - cand["accuracy"]), 6) if ref["n"] else float("nan")
    drops = {c: round(100.0 * (ref["per_class"][c]["recall"] - cand["per_class"][c]["recall"]), 6)
             for c in class_names if ref["per_class"][c]["support"]}
    if not acc_drop <= max_accuracy_drop_pt:
        reasons.append(f"accuracy drops {acc_drop:.2f} pt > {max_accuracy_drop_pt} pt")
    lost = {c: int(round(d * ref["per_class"][c]["support"] / 100.0)) for c, d in drops.items()}
    allowed = {c: allowed_recall_loss(ref["per_class"][c]["support"], max_recall_drop_pt) for c in drops}
    for c, d in drops.items():
        if lost[c] > allowed[c]:
            reasons.append(f"recall of {c!r} drops {d:.2f} pt: {lost[c]} of {ref['per_class'][c]['support']} images "
                           f"lost > {allowed[c]} allowed")
    return GateReport(precision, not reasons, int(cand["n"]), float(ref["accuracy"]), float(cand["accuracy"]),
                      acc_drop, drops, reasons, max_accuracy_drop_pt, max_recall_drop_pt, lost, allowed)


def allowed_recall_loss(support: int, max_recall_drop_pt: float = MAX_RECALL_DROP_PT) -> int:
    """Images a class may lose: `max_recall_drop_pt` of its support, and at least one (its recall's resolution)."""
    return max(1, int(support * max_recall_drop_pt / 100.0 + 1e-9))
