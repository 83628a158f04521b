"""`inspection pipeline params | prepare | run`: the glue between params.yaml and the real verbs in dvc.yaml.

params.yaml is generated: DVC composes it from conf/pipeline.yaml on `dvc exp run -S key=value` (.dvc/config
[hydra]), and `inspection pipeline params` runs the very same composition for `dvc repro`. A stage then hands
the params it declares to an ordinary verb as Hydra overrides:

    inspection pipeline run --replace data --set seed -v data.manifest=labels/v1/manifest_v1.csv -- train a=b
    → inspection train a=b ~data ++data.name='synth_steel' ... ++seed=0 ++data.manifest='labels/v1/manifest_v1.csv'

`--replace S` drops the verb's own default for S (a config group such as data=, model=) and rebuilds it from
params.yaml, so no key of the default survives; `--set SRC[:DEST]` writes the leaves of params SRC at DEST (`.`:
the root). Every override is parsed back with Hydra's own parser before the verb starts: a value the grammar
would change is an error here, not a silently different run.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import typer
import yaml

from inspection.core.errors import InspectionError, user_errors

pipeline_app = typer.Typer(
    help="DVC pipeline helpers: generate params.yaml from conf/, prepare the dataset, run a verb with params.",
    no_args_is_help=True,
)

PARAMS = "params.yaml"
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")  # a config key that can sit in an override's dotted path
_DICT_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-.]*$")  # a key inside a {..} literal (e.g. 'optim.lr')


def repo_root(start: Path | None = None) -> Path:
    """The DVC project around the current directory (where dvc.yaml and params.yaml live)."""
    from inspection.cli.lineage import find_dvc_root

    root = find_dvc_root(start or Path.cwd())
    if root is None:
        raise InspectionError(f"{Path.cwd()}: not inside a DVC project (no .dvc/ folder above it)")
    return root


def hydra_settings(root: Path) -> tuple[Path, str]:
    """conf dir and primary config name from .dvc/config [hydra] (what `dvc exp run -S` composes)."""
    from dvc.config import Config

    hydra = Config(dvc_dir=str(root / ".dvc")).get("hydra", {})
    return root / hydra.get("config_dir", "conf"), str(hydra.get("config_name", "pipeline"))


def compose_params(out: Path, root: Path, overrides: list[str]) -> None:
    """Write `out` exactly as DVC's Hydra composition would (it is DVC's own function)."""
    from dvc.utils.hydra import compose_and_dump
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    conf, name = hydra_settings(root)
    try:
        compose_and_dump(out, str(conf), None, name, str(root), overrides)
    except (HydraException, OmegaConfBaseException) as e:
        raise InspectionError(f"config {name}: {str(e).splitlines()[0]}") from None


@pipeline_app.command("params")
@user_errors
def params_cmd(
    overrides: list[str] | None = typer.Argument(None, help="Hydra overrides, as after `dvc exp run -S`."),
    out: Path | None = typer.Option(None, "--out", help="Where to write (default: params.yaml of the project)."),
    check: bool = typer.Option(False, "--check", help="Only check that params.yaml matches conf/; exit 1 if not."),
) -> None:
    """Generate params.yaml from conf/ (as the `hydra` section of .dvc/config says); run it after editing conf/."""
    import tempfile

    root = repo_root()
    target = out or root / PARAMS
    if not check:
        compose_params(target, root, list(overrides or []))
        typer.echo(f"wrote {target}")
        return
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp) / PARAMS
        compose_params(fresh, root, list(overrides or []))
        same = target.is_file() and target.read_text() == fresh.read_text()
    if not same:
        typer.echo(f"{target} is out of date with conf/: run `inspection pipeline params`", err=True)
        raise typer.Exit(code=1)
    typer.echo(f"{target}: up to date with conf/")


def load_params(path: Path) -> dict:
    """params.yaml as plain data."""
    if not path.is_file():
        raise InspectionError(f"{path}: not found (generate it: `inspection pipeline params`)")
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict):
        raise InspectionError(f"{path}: expected a mapping at the top level")
    return data


def select(params: dict, key: str, source: str = PARAMS):
    """params['a']['b'] for key 'a.b', with an error naming the missing part."""
    node = params
    for i, part in enumerate(key.split(".")):
        if not isinstance(node, dict) or part not in node:
            raise InspectionError(f"{source}: no key {'.'.join(key.split('.')[: i + 1])!r} (wanted {key!r})")
        node = node[part]
    return node


def hydra_value(v) -> str:
    """A Hydra override literal that parses back to exactly `v` (strings always quoted: 'true' stays a string)."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v) or math.isinf(v):
            return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
        return repr(v)
    if isinstance(v, str):
        if "${" in v:
            raise InspectionError(f"value {v!r}: an interpolation in a resolved params file")
        return "'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(v, list):
        return "[" + ",".join(hydra_value(x) for x in v) + "]"
    if isinstance(v, dict):
        bad = [k for k in v if not isinstance(k, str) or not _DICT_KEY.match(k)]
        if bad:
            raise InspectionError(f"keys {bad}: not expressible in a Hydra override")
        return "{" + ", ".join(f"{k}: {hydra_value(x)}" for k, x in v.items()) + "}"
    raise InspectionError(f"value {v!r}: type {type(v).__name__} has no Hydra override form")


def _leaves(prefix: str, v, out: dict) -> None:
    """One entry per leaf; a mapping whose keys cannot sit in a dotted path (`optim.lr`) stays one {..} value."""
    if isinstance(v, dict) and v and all(isinstance(k, str) and _KEY.match(k) for k in v):
        for k, x in v.items():
            _leaves(f"{prefix}.{k}" if prefix else k, x, out)
    elif not prefix:
        if v != {}:  # an empty mapping merged at the root changes nothing
            raise InspectionError(f"cannot write {v!r} at the root of the config")
    else:
        out[prefix] = v


def build_overrides(params: dict, replace: list[str], sets: list[str], values: list[str] = (),
                    source: str = PARAMS) -> list[str]:
    """`~S` per replaced section, then one `++key=value` per leaf; later sections, then `values`, win a shared key."""
    deletions, leaves = [], {}
    for section in replace:
        deletions.append(f"~{section}")
        _leaves(section, select(params, section, source), leaves)
    for spec in sets:
        src, _, dest = spec.partition(":")
        dest = src if not dest else ("" if dest == "." else dest)
        _leaves(dest, select(params, src, source), leaves)
    for spec in values:
        key, eq, text = spec.partition("=")
        if not eq or not all(_KEY.match(k) for k in key.split(".")):
            raise InspectionError(f"--value {spec!r}: expected KEY=VALUE with a dotted key")
        _leaves(key, yaml.safe_load(text) if text else "", leaves)
    overrides = [*deletions, *(f"++{k}={hydra_value(v)}" for k, v in leaves.items())]
    _check_roundtrip(overrides, leaves)
    return overrides


def _check_roundtrip(overrides: list[str], leaves: dict) -> None:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides([o for o in overrides if not o.startswith("~")])
    for o in parsed:
        if o.key_or_group not in leaves:
            raise InspectionError(f"override {o.input_line!r} would set key {o.key_or_group!r}")
        want, got = leaves[o.key_or_group], o.value()
        if json.dumps(want, sort_keys=True) != json.dumps(got, sort_keys=True, default=str):
            raise InspectionError(f"override for {o.key_or_group} would read {got!r}, not {want!r}")


@pipeline_app.command("run", context_settings={"allow_interspersed_args": False})
@user_errors
def run_cmd(
    command: list[str] = typer.Argument(..., help="The verb and its arguments, after `--`: `-- train key=value`."),
    replace: list[str] | None = typer.Option(None, "--replace", "-r", help="Rebuild this section from params."),
    set_: list[str] | None = typer.Option(None, "--set", "-s", help="SRC[:DEST]: write params SRC's leaves at DEST."),
    value: list[str] | None = typer.Option(None, "--value", "-v", help="KEY=VALUE (YAML), applied last."),
    params: Path = typer.Option(Path(PARAMS), "--params", help="The params file."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the command instead of running it."),
) -> None:
    """Run `inspection VERB ARGS` with the named params.yaml sections appended as Hydra overrides."""
    overrides = build_overrides(load_params(params), list(replace or []), list(set_ or []), list(value or []),
                                str(params))
    argv = [sys.executable, "-m", "inspection.cli.main", *command, *overrides]
    if dry_run:
        typer.echo("+ inspection " + " ".join([*command, *overrides]))
        return
    # One line per stage: the verb as dvc.yaml writes it; the params overrides stay out of the log (--dry-run
    # prints them all).
    sections = ", ".join(dict.fromkeys(x.split(":")[0] for x in [*(replace or []), *(set_ or [])]))
    typer.echo(f"+ inspection {' '.join(command)}  (+{len(overrides)} overrides from {params}"
               + (f": {sections})" if sections else ")"), err=True)
    sys.stdout.flush()
    sys.stderr.flush()
    if os.name == "posix":
        os.execv(sys.executable, argv)  # the verb replaces this process: its exit code and signals are DVC's
    raise typer.Exit(code=subprocess.call(argv))


@pipeline_app.command("prepare")
@user_errors
def prepare_cmd(
    params: Path = typer.Option(Path(PARAMS), "--params", help="The params file (its `data` section)."),
) -> None:
    """Create the dataset params.data describes (synthesise, or import from paths.shared_data / data.prepare.src)."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from inspection.cli.data_cmds import summarize
    from inspection.cli.prepare_data import prepare_dataset  # not cli.config: no Lightning to import
    from inspection.data.manifest import load_manifest

    data = select(load_params(params), "data", str(params))
    try:
        manifest = prepare_dataset(OmegaConf.create(data))
    except OmegaConfBaseException as e:  # e.g. data=folder without data.prepare.src
        raise InspectionError(f"{params}: data.{str(e).splitlines()[0]} (set it: -S data.prepare.src=...)") from None
    typer.echo(summarize(load_manifest(manifest)))
    typer.echo(f"wrote {manifest}")


def register(app: typer.Typer) -> None:
    """Add `inspection pipeline ...` to the main app."""
    app.add_typer(pipeline_app, name="pipeline", help="DVC pipeline helpers (params.yaml, prepare, run with params).")
