"""The one way commands compose Hydra configs from conf/ outside @hydra.main (compare, search, curation, help).

Hydra's and OmegaConf's errors (an unknown group option, a bad override) become InspectionError, so every verb
reports them as `error: ...` with exit 2.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from inspection.core.errors import InspectionError


def config_dir() -> str:
    """conf/ beside the package (repo checkout / editable install), or $INSPECTION_CONFIG_DIR."""
    env = os.environ.get("INSPECTION_CONFIG_DIR")
    if env:
        return str(Path(env).resolve())
    return str(Path(__file__).resolve().parents[2] / "conf")


def compose_config(name: str, overrides: Sequence[str] = ()) -> DictConfig:
    """conf/<name>.yaml + overrides, composed as `inspection <verb> key=value ...` would."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    try:
        with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
            return compose(name, overrides=list(overrides))
    except (HydraException, OmegaConfBaseException) as e:
        raise InspectionError(f"config {name}: {str(e).splitlines()[0]}") from None


def compose_train(overrides: Sequence[str]) -> DictConfig:
    """conf/train.yaml outside a Hydra run (no run dir, no logger that needs one): search and compare trials."""
    return compose_config("train", [*overrides, "~logger"])


def compose_group(group: str, overrides: Sequence[str]) -> dict:
    """conf/<group>/default.yaml + overrides (keys may omit the `<group>.` prefix) → plain dict."""
    flags = [o for o in overrides if o.startswith("-")]
    if flags:
        raise InspectionError(f"unknown option(s) {flags}; config overrides are written key=value")
    bad = [o for o in overrides if "=" not in o]
    if bad:
        raise InspectionError(f"expected key=value overrides, got {bad}")
    prefixed = [o if o.lstrip("+~").startswith(f"{group}.") else _prefix(o, group) for o in overrides]
    cfg = compose_config(f"{group}/default", prefixed)
    return OmegaConf.to_container(cfg[group], resolve=True)


def _prefix(override: str, group: str) -> str:
    head = len(override) - len(override.lstrip("+~"))
    return f"{override[:head]}{group}.{override[head:]}"
