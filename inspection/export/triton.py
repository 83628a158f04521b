"""An exported model.onnx → a Triton Inference Server model repository: `<repo>/<name>/config.pbtxt`,
`<repo>/<name>/labels.txt` and `<repo>/<name>/1/model.onnx`.

The config states what the edge runtime checks at load (uint8 NHWC input at the card's size, float32
probabilities, the optional defect map), turns on dynamic batching, and carries the class names, thresholds and
the whole model card as string parameters, so a Triton client can decide OK / NG / REVIEW exactly as `inspect`
does (`core.postprocess` with the card's thresholds). It is validated against Triton's own protobuf definitions
(`tritonclient.grpc.model_config_pb2`) whenever tritonclient is installed.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
from pathlib import Path

import onnx

from inspection.core.errors import InspectionError
from inspection.core.files import atomic_write_bytes, atomic_write_text
from inspection.edge.inspector import card_from_metadata

NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
KINDS = {"gpu": "KIND_GPU", "cpu": "KIND_CPU"}


def _q(s: str) -> str:
    """A protobuf text-format string literal."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _dims(value_info: onnx.ValueInfoProto) -> list[int]:
    """The per-sample dims (batch dim dropped); a symbolic dim is -1 (variable) for Triton."""
    shape = value_info.type.tensor_type.shape.dim
    return [d.dim_value if d.HasField("dim_value") else -1 for d in list(shape)[1:]]


def triton_config(proto: onnx.ModelProto, name: str, source: str, max_batch_size: int = 32,
                  max_queue_delay_us: int = 2000, kind: str = "gpu") -> str:
    """config.pbtxt text for an `inspection export` graph (its card is in the ONNX metadata)."""
    if kind not in KINDS:
        raise InspectionError(f"Triton instance kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if max_batch_size < 1:
        raise InspectionError(f"Triton max_batch_size must be >= 1, got {max_batch_size}")
    card = card_from_metadata({p.key: p.value for p in proto.metadata_props}, source)
    spec = card.preprocess
    graph = proto.graph
    inp = graph.input[0]
    batch = inp.type.tensor_type.shape.dim[0] if inp.type.tensor_type.shape.dim else None
    if batch is None or batch.HasField("dim_value"):
        raise InspectionError(f"{source}: graph input {inp.name} has no variable batch dimension; Triton's dynamic "
                              "batching needs one (export with `inspection export`)")
    if _dims(inp) != [spec.height, spec.width, spec.channels]:
        raise InspectionError(f"{source}: graph input {inp.name} dims {_dims(inp)} do not match the card "
                              f"({spec.height}x{spec.width}x{spec.channels})")
    outs = {o.name: o for o in graph.output}
    map_name = card.defect_map.get("output")
    probs = next(o for n, o in outs.items() if n != map_name)
    lines = [f"name: {_q(name)}", 'platform: "onnxruntime_onnx"', f"max_batch_size: {max_batch_size}",
             "input [", "  {", f"    name: {_q(inp.name)}", "    data_type: TYPE_UINT8", "    format: FORMAT_NHWC",
             f"    dims: [ {spec.height}, {spec.width}, {spec.channels} ]", "  }", "]", "output ["]
    out_blocks = [["  {", f"    name: {_q(probs.name)}", "    data_type: TYPE_FP32",
                   f"    dims: [ {len(card.class_names)} ]", '    label_filename: "labels.txt"', "  }"]]
    if map_name:
        dims = ", ".join(str(d) for d in _dims(outs[map_name]))
        out_blocks.append(["  {", f"    name: {_q(map_name)}", "    data_type: TYPE_FP32", f"    dims: [ {dims} ]",
                           "  }"])
    lines += [",\n".join("\n".join(b) for b in out_blocks), "]",
              "dynamic_batching {", f"  max_queue_delay_microseconds: {max_queue_delay_us}", "}",
              "instance_group [", f"  {{ kind: {KINDS[kind]}, count: 1 }}", "]"]
    params = {"class_names": json.dumps(card.class_names), "thresholds": json.dumps(card.thresholds.to_dict()),
              "preprocess": json.dumps(spec.to_dict()), "inspection.model_card": json.dumps(card.to_dict(),
                                                                                            sort_keys=True)}
    for key, value in params.items():
        lines += ["parameters {", f"  key: {_q(key)}", f"  value: {{ string_value: {_q(value)} }}", "}"]
    return "\n".join(lines) + "\n"


def model_config_pb2():
    """Triton's generated ModelConfig module from the tritonclient package, or None when it is not installed.

    Loaded by file: `tritonclient.grpc`'s own __init__ needs grpcio, which the config definitions do not."""
    spec = importlib.util.find_spec("tritonclient")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "grpc" / "model_config_pb2.py"
    if not path.is_file():
        return None
    mod_spec = importlib.util.spec_from_file_location("inspection_triton_model_config_pb2", path)
    module = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(module)
    return module


_PB2 = None


def parse_config(text: str, source: str = "config.pbtxt"):
    """Parse config.pbtxt into Triton's ModelConfig message; InspectionError naming `source` if it does not parse.

    Returns None when tritonclient is not installed (nothing to validate against)."""
    global _PB2
    _PB2 = _PB2 or model_config_pb2()
    if _PB2 is None:
        return None
    from google.protobuf import text_format

    try:
        return text_format.Parse(text, _PB2.ModelConfig())
    except text_format.ParseError as e:
        raise InspectionError(f"{source}: not a valid Triton model config ({e})") from None


def check_name(name: str) -> str:
    """A Triton model name doubles as a folder name: a plain one only."""
    if not NAME.match(name) or name in (".", ".."):
        raise InspectionError(f"Triton model name {name!r}: use letters, digits, '_', '.', '-' only")
    return name


def write_triton_repo(onnx_path: str | os.PathLike, repo: str | os.PathLike, name: str, max_batch_size: int = 32,
                      max_queue_delay_us: int = 2000, kind: str = "gpu") -> Path:
    """Write `<repo>/<name>/{config.pbtxt, labels.txt, 1/model.onnx}`; returns the model folder."""
    check_name(name)
    src = Path(onnx_path)
    proto = onnx.load(str(src))
    text = triton_config(proto, name, str(src), max_batch_size, max_queue_delay_us, kind)
    folder = Path(repo) / name
    parse_config(text, str(folder / "config.pbtxt"))  # a config Triton would refuse never reaches the disk
    card = card_from_metadata({p.key: p.value for p in proto.metadata_props}, str(src))
    atomic_write_bytes(folder / "1" / "model.onnx", src.read_bytes())
    atomic_write_text(folder / "labels.txt", "".join(c + "\n" for c in card.class_names))
    atomic_write_text(folder / "config.pbtxt", text)
    return folder
