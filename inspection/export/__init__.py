"""Checkpoint → ONNX (uint8 pixels in, probabilities out), precision conversion, and the gates that guard them."""

from inspection.export.gated_export import ExportReport, export_model
from inspection.export.onnx_export import UInt8Classifier, build_onnx_graph, export_onnx
from inspection.export.parity import ParityReport, check_parity, compare_records
from inspection.export.quantize import GateReport, convert_fp16, precision_gate, quantize_int8
from inspection.export.verify import VerifyReport, load_eval_images, verify_model

__all__ = [
    "ExportReport",
    "GateReport",
    "ParityReport",
    "UInt8Classifier",
    "VerifyReport",
    "build_onnx_graph",
    "check_parity",
    "compare_records",
    "convert_fp16",
    "export_model",
    "export_onnx",
    "load_eval_images",
    "precision_gate",
    "quantize_int8",
    "verify_model",
]
