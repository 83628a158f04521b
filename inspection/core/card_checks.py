"""Complete validation of the decision configuration a model travels with (preprocessing, thresholds, card fields):
every type and range checked on load, so a bad value is one `error:` naming the key before any image is read,
not an ERROR row per image or a traceback. Used by the model card (edge) and the checkpoint loader alike."""

from __future__ import annotations

import math

from inspection.core.postprocess import Thresholds
from inspection.core.preprocess import PreprocessSpec

MAX_SIDE = 16384  # a model input side larger than this is a typo (and would not fit any accelerator)
PRECISIONS = ("fp32", "fp16", "int8")
PREPROCESS_KEYS = ("height", "width", "channels", "mean", "std", "resize", "pad_value")
THRESHOLD_KEYS = ("ok_classes", "ng", "ok", "min_confidence")


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)  # a JSON true is not 1


def _is_num(v: object) -> bool:
    return (_is_int(v) or isinstance(v, float)) and math.isfinite(v)  # type: ignore[arg-type]


def preprocess_problems(d: object) -> list[str]:
    """What is wrong with a `preprocess` mapping, one message per key (empty: valid)."""
    if not isinstance(d, dict):
        return [f"preprocess must be an object with keys {list(PREPROCESS_KEYS)}, got {type(d).__name__}"]
    out = [f"preprocess has unknown key {k!r}" for k in sorted(set(d) - set(PREPROCESS_KEYS), key=str)]
    out += [f"preprocess.{k} is missing" for k in ("height", "width") if k not in d]
    for k in ("height", "width"):
        if k in d and not (_is_int(d[k]) and 1 <= d[k] <= MAX_SIDE):
            out.append(f"preprocess.{k} must be an integer 1-{MAX_SIDE}, got {d[k]!r}")
    channels = d.get("channels", 3)
    if channels not in (1, 3) or not _is_int(channels):
        out.append(f"preprocess.channels must be 1 or 3, got {channels!r}")
        channels = 3
    for k in ("mean", "std"):
        if k not in d:
            continue
        v = d[k]
        if not isinstance(v, (list, tuple)) or len(v) not in (channels, 3) or not all(_is_num(x) for x in v):
            out.append(f"preprocess.{k} must be a list of {channels} numbers, got {v!r}")
        elif k == "std" and any(x <= 0 for x in v):
            out.append(f"preprocess.std must be > 0, got {v!r}")
    if d.get("resize", "stretch") not in ("stretch", "letterbox"):
        out.append(f"preprocess.resize must be 'stretch' or 'letterbox', got {d.get('resize')!r}")
    pad = d.get("pad_value", 0)
    if not (_is_int(pad) and 0 <= pad <= 255):
        out.append(f"preprocess.pad_value must be an integer 0-255 (a uint8 pixel), got {pad!r}")
    return out


def threshold_problems(d: object, class_names: list[str] | None) -> list[str]:
    """What is wrong with a `thresholds` mapping for these classes (empty: valid); class_names None (themselves
    invalid): the ok_classes are not compared with them."""
    if not isinstance(d, dict):
        return [f"thresholds must be an object with keys {list(THRESHOLD_KEYS)}, got {type(d).__name__}"]
    out = [f"thresholds has unknown key {k!r}" for k in sorted(set(d) - set(THRESHOLD_KEYS), key=str)]
    ok_classes = d.get("ok_classes", [])
    if not isinstance(ok_classes, (list, tuple)) or not all(isinstance(c, str) for c in ok_classes):
        out.append(f"thresholds.ok_classes must be a list of class names, got {ok_classes!r}")
    elif class_names is not None:
        unknown = [c for c in ok_classes if c not in class_names]
        if unknown:
            out.append(f"thresholds name ok_classes {unknown} that are not model classes {class_names}")
        if set(ok_classes) >= set(class_names):
            out.append(f"thresholds.ok_classes names every class {class_names}: no image could ever be NG")
    values = {k: d.get(k, default) for k, default in (("ng", 0.5), ("ok", 0.5), ("min_confidence", 0.0))}
    for k, v in values.items():
        if not (_is_num(v) and 0.0 <= v <= 1.0):
            out.append(f"thresholds.{k} must be a number in [0, 1], got {v!r}")
    if all(_is_num(v) for v in values.values()) and values["ok"] > values["ng"]:
        out.append(f"thresholds.ok ({values['ok']}) must be <= thresholds.ng ({values['ng']})")
    return out


def class_name_problems(names: object) -> list[str]:
    if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
        return [f"class_names must be a non-empty list of strings, got {names!r}"]
    if len(set(names)) != len(names):
        return [f"class_names has duplicates: {names}"]
    return []


def card_field_problems(d: dict, current_version: int) -> list[str]:
    """Checks of the card's own fields (version, precision, text and object fields)."""
    out = []
    version = d.get("card_version", current_version)
    if not (_is_int(version) and 1 <= version <= current_version):
        out.append(f"card_version must be an integer 1-{current_version} (newer cards need a newer "
                   f"`inspection`), got {version!r}")
    if d.get("precision", "fp32") not in PRECISIONS:
        out.append(f"precision must be one of {list(PRECISIONS)}, got {d.get('precision')!r}")
    for k in ("backbone", "input_layout"):
        if k in d and not isinstance(d[k], str):
            out.append(f"{k} must be a string, got {d[k]!r}")
    for k in ("dataset", "lineage", "metrics"):
        if k in d and not isinstance(d[k], dict):
            out.append(f"{k} must be an object, got {type(d[k]).__name__}")
    return out


def decision_config(preprocess: dict, thresholds: dict, class_names: list[str]) -> tuple[PreprocessSpec, Thresholds]:
    """Build the typed objects from mappings already checked by preprocess_problems / threshold_problems."""
    spec = PreprocessSpec.from_dict({k: (list(v) if isinstance(v, tuple) else v) for k, v in preprocess.items()})
    return spec, Thresholds.from_dict(thresholds)
