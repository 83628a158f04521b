"""Config dicts → typed dataclasses, refusing unknown keys and wrong types by name (`optim.lr=fast`)."""

from __future__ import annotations

import dataclasses
import typing

from inspection.core.errors import InspectionError

T = typing.TypeVar("T")


def to_dataclass(cls: type[T], values: dict, where: str = "") -> T:
    """Build a (nested) dataclass from a dict, refusing keys it does not know."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise InspectionError(f"unknown config key(s) {[f'{where}{k}' for k in unknown]}; known: {sorted(names)}")
    kwargs = {}
    for k, v in values.items():
        t = hints[k]
        if dataclasses.is_dataclass(t) and isinstance(v, dict):
            v = to_dataclass(t, v, f"{where}{k}.")
        elif t in (int, float, str, bool) and not (isinstance(v, t) or (t is float and isinstance(v, int))) \
                or (t is int and isinstance(v, bool)):
            raise InspectionError(f"config key {where}{k}: expected {t.__name__}, got {v!r}")
        kwargs[k] = v
    return cls(**kwargs)
