"""Checkpoint → ONNX: a graph that takes raw uint8 NHWC pixels, normalises, classifies and applies softmax."""

from __future__ import annotations

import contextlib
import io
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import onnx
import torch
from torch import nn

from inspection.core.files import atomic_write_bytes, file_sha256
from inspection.core.model_card import ModelCard, write_model_card
from inspection.core.preprocess import PreprocessSpec
from inspection.edge.inspector import CARD_KEY  # CARD_KEY: the one key the edge runtime reads
from inspection.models.checkpoint import LoadedModel
from inspection.models.normalize import Normalize
from inspection.models.segdec import MAP_CARD, has_defect_map

OPSET = 17  # pinned: the TorchScript exporter emits exactly this; the dynamo fallback starts at 18
DYNAMO_OPSET = 18
INPUT_NAME, OUTPUT_NAME = "pixels", "probs"
MAP_OUTPUT = MAP_CARD["output"]  # second output of defect-map networks: float32 [N, 1, H/stride, W/stride] in [0, 1]


class UInt8Classifier(nn.Module):
    """uint8 [N,H,W,C] → models.normalize.Normalize (the training-time normalisation) → net → softmax
    (and, for a defect-map network, the sigmoid of its map as a second output).

    Normalize runs the float32 operations of `core.preprocess.normalize` in the same order, so the exported graph
    and the training-side evaluation agree to ~1e-6. Resizing stays outside the graph (`core.resize_image`).
    """

    def __init__(self, net: nn.Module, spec: PreprocessSpec):
        super().__init__()
        self.net = net
        self.normalize = Normalize(spec)
        self.defect_map = has_defect_map(net)

    def forward(self, pixels: torch.Tensor):
        x = self.normalize(pixels)
        if self.defect_map:
            logits, map_logits = self.net(x, with_map=True)
            return torch.softmax(logits.float(), dim=1), torch.sigmoid(map_logits.float())
        return torch.softmax(self.net(x).float(), dim=1)


def output_names(wrapper: UInt8Classifier) -> list[str]:
    return [OUTPUT_NAME, MAP_OUTPUT] if wrapper.defect_map else [OUTPUT_NAME]


def _export_torchscript(wrapper: nn.Module, dummy: torch.Tensor) -> onnx.ModelProto:
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation notice is expected
        names = output_names(wrapper)
        torch.onnx.export(
            wrapper, (dummy,), buf, opset_version=OPSET, input_names=[INPUT_NAME], output_names=names,
            dynamic_axes={INPUT_NAME: {0: "batch"}, **{n: {0: "batch"} for n in names}}, do_constant_folding=True,
            dynamo=False,
        )
    return onnx.load_from_string(buf.getvalue())


def _export_dynamo(wrapper: nn.Module, dummy: torch.Tensor) -> onnx.ModelProto:
    batch = torch.export.Dim("batch", min=1, max=4096)
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            wrapper, (dummy,), None, opset_version=DYNAMO_OPSET, input_names=[INPUT_NAME],
            output_names=output_names(wrapper), dynamic_shapes=({0: batch},), dynamo=True, external_data=False,
        )
    return program.model_proto


def build_onnx_graph(model: LoadedModel) -> tuple[onnx.ModelProto, str]:
    """Trace the uint8-input wrapper; TorchScript exporter first (torch 2.11–2.14), dynamo if it is gone."""
    spec = model.spec
    wrapper = UInt8Classifier(model.net.cpu().eval(), spec).eval()
    dummy = torch.randint(0, 256, (2, spec.height, spec.width, spec.channels), dtype=torch.uint8)
    try:
        proto, exporter = _export_torchscript(wrapper, dummy), f"torchscript-opset{OPSET}"
    except (TypeError, RuntimeError, NotImplementedError, AttributeError) as ts_error:
        try:
            proto, exporter = _export_dynamo(wrapper, dummy), f"dynamo-opset{DYNAMO_OPSET}"
        except Exception as e:
            raise RuntimeError(f"ONNX export failed with both exporters: torchscript: {ts_error}; dynamo: {e}") from e
    proto = unshare_identity_initializers(proto)
    onnx.checker.check_model(proto)
    return proto, exporter


def unshare_identity_initializers(proto: onnx.ModelProto) -> onnx.ModelProto:
    """Replace `Identity(initializer)` nodes by a private copy of the initializer.

    The TorchScript exporter deduplicates equal tensors (e.g. the all-zero biases BatchNorm folding leaves in an
    untrained network) and feeds the copies through Identity nodes. Static quantisation then sees a Conv whose
    bias is no initializer, cannot fuse it into QLinearConv, and the int8 model runs slower than fp32
    (observed with torch 2.11 + onnxruntime 1.30).
    """
    graph = proto.graph
    inits = {t.name: t for t in graph.initializer}
    outputs = {o.name for o in graph.output}
    keep = []
    for node in graph.node:
        if node.op_type == "Identity" and node.input[0] in inits and node.output[0] not in outputs:
            copy = onnx.TensorProto()
            copy.CopyFrom(inits[node.input[0]])
            copy.name = node.output[0]
            graph.initializer.append(copy)
        else:
            keep.append(node)
    if len(keep) != len(graph.node):
        del graph.node[:]
        graph.node.extend(keep)
        used = {i for n in graph.node for i in n.input} | outputs
        unused = [t for t in graph.initializer if t.name not in used]
        for t in unused:
            graph.initializer.remove(t)
    return proto


def card_from_checkpoint(model: LoadedModel, checkpoint: str | os.PathLike | None, precision: str,
                         exporter: str) -> ModelCard:
    """Model card from the checkpoint's classes, preprocessing, thresholds and extra (dataset/lineage/metrics)."""
    lineage = dict(model.extra.get("lineage", {}))
    if checkpoint is not None and Path(checkpoint).is_file():
        lineage.update(checkpoint=str(Path(checkpoint).resolve()), checkpoint_sha256=file_sha256(checkpoint))
    lineage.update(exporter=exporter, torch_version=torch.__version__.split("+")[0])
    return ModelCard(
        class_names=list(model.class_names),
        preprocess=model.spec,
        thresholds=model.thresholds,
        backbone=model.backbone,
        precision=precision,
        input_layout=f"NHWC-uint8-{'RGB' if model.spec.channels == 3 else 'GRAY'}",
        dataset=dict(model.extra.get("dataset", {})),
        lineage=lineage,
        metrics=dict(model.extra.get("metrics", {})),
        defect_map=dict(MAP_CARD) if has_defect_map(model.net) else {},
    )


def metadata_props(card: ModelCard) -> dict[str, str]:
    """The full card under CARD_KEY plus flat, human-readable keys."""
    spec = card.preprocess
    return {
        CARD_KEY: json.dumps(card.to_dict(), sort_keys=True),
        "class_names": json.dumps(card.class_names),
        "input_size": f"{spec.height}x{spec.width}",
        "input_channels": str(spec.channels),
        "color_order": "RGB" if spec.channels == 3 else "GRAY",
        "input_layout": card.input_layout,
        "resize": spec.resize,
        "thresholds": json.dumps(card.thresholds.to_dict(), sort_keys=True),
        "precision": card.precision,
        "backbone": card.backbone,
        "dataset_version": str(card.dataset.get("version", "")),
        "dataset_hash": str(card.dataset.get("manifest_hash", card.dataset.get("hash", ""))),
        "git_commit": str(card.lineage.get("git_commit", "")),
        "config_hash": str(card.lineage.get("config_hash", "")),
        "metrics": json.dumps(card.metrics, sort_keys=True, default=float),
    }


def set_metadata(proto: onnx.ModelProto, card: ModelCard) -> onnx.ModelProto:
    """Replace the model's metadata_props with the card's (idempotent)."""
    del proto.metadata_props[:]
    for key, value in metadata_props(card).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.producer_name = "inspection"
    return proto


def save_onnx_atomic(proto: onnx.ModelProto, path: str | os.PathLike) -> Path:
    """Serialise, then write atomically: a crash never leaves a half model.onnx."""
    return atomic_write_bytes(path, proto.SerializeToString())


@dataclass
class ExportedModel:
    """Where an export landed and what it says about itself."""

    onnx_path: Path
    card_path: Path
    card: ModelCard


def write_exported(proto: onnx.ModelProto, card: ModelCard, out_dir: str | os.PathLike,
                   name: str = "model") -> ExportedModel:
    """Stamp the card into the graph and write `<name>.onnx` + `<name>.json`, each atomically."""
    out = Path(out_dir)
    onnx_path = save_onnx_atomic(set_metadata(proto, card), out / f"{name}.onnx")
    card_path = out / f"{name}.json"
    write_model_card(card, card_path)
    return ExportedModel(onnx_path, card_path, card)


def export_onnx(model: LoadedModel, out_dir: str | os.PathLike, checkpoint: str | os.PathLike | None = None,
                name: str = "model") -> ExportedModel:
    """Export an fp32 model + card (no parity check: see export.pipeline.export_model for the gated path)."""
    proto, exporter = build_onnx_graph(model)
    return write_exported(proto, card_from_checkpoint(model, checkpoint, "fp32", exporter), out_dir, name)
