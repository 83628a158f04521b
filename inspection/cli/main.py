"""`inspection` — one console entry point, one verb per stage."""

from __future__ import annotations

import sys
from pathlib import Path

try:
    import typer
except ModuleNotFoundError as e:  # the torch-free edge install ships no CLI dependencies
    sys.exit(f"the `inspection` command needs the training install (pip install '.[train]'; missing: {e.name}). "
             "On an edge box run `python -m inspection.edge MODEL.onnx SOURCES --out results.csv` instead.")

from inspection.core.errors import user_errors  # noqa: E402  (after the typer check above)

app = typer.Typer(
    help="Visual defect inspection: train (Hydra), evaluate, export to ONNX, inspect folders, audit labels.",
    no_args_is_help=True,
    add_completion=False,
)

EXIT_INTERRUPTED = 130  # the shell's convention for a command stopped by Ctrl-C (128 + SIGINT)
_HYDRA = {"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []}


def _hydra_call(entry, args: list[str]) -> None:
    # Hydra parses sys.argv itself: hand it the overrides (and -m, --cfg, --help) untouched. argv[0] points at
    # cli/train_entry.py because Lightning's DDP launcher re-runs argv[0] for each extra process; clearing
    # __main__.__spec__ stops it from re-running `python -m inspection.cli.main`, which needs the verb.
    import inspection.cli.train_entry as script

    sys.argv = [script.__file__, *args]
    main_module = sys.modules.get("__main__")
    if main_module is not None and getattr(main_module, "__spec__", None) is not None:
        main_module.__spec__ = None
    entry()


@app.command(context_settings=_HYDRA)
def train(ctx: typer.Context) -> None:
    """Train a classifier. Hydra overrides: `data=neu model=resnet18 trainer=gpu optim.lr=1e-3`; sweep with -m; --help for groups."""
    from inspection.cli.hydra_entry import train_main

    _hydra_call(train_main, ctx.args)


@app.command(context_settings=_HYDRA)
def evaluate(ctx: typer.Context) -> None:
    """Evaluate a checkpoint: `checkpoint=outputs/.../model.pt data=neu split=test` → metrics.json + confusion PNG."""
    from inspection.cli.hydra_entry import evaluate_main

    _hydra_call(evaluate_main, ctx.args)


@app.command(context_settings=_HYDRA)
@user_errors
def search(ctx: typer.Context) -> None:
    """Hyperparameter search with Optuna over Hydra configs (resumable): `inspection search data=neu hparams_search.n_trials=20`."""
    from inspection.cli.compose_help import answered_help
    from inspection.cli.search_cmd import search as run

    if not answered_help(ctx.args, "train", "Usage: inspection search [KEY=VALUE ...]  (Optuna over "
                                            "conf/train.yaml; space and trials in conf/hparams_search/)"):
        run(ctx)


@app.command(context_settings=_HYDRA)
@user_errors
def compare(ctx: typer.Context) -> None:
    """Data-centric vs model-centric on one gold test split: `inspection compare data=neu compare=quick`; noise_sweep=true adds the noise curve."""
    from inspection.cli.compare_cmd import run_compare
    from inspection.cli.compose_help import answered_help

    if answered_help(ctx.args, "compare", "Usage: inspection compare [data=neu] [compare=quick|full|demo|tiny] "
                                          "[noise_sweep=true] [KEY=VALUE ...]"):
        return
    try:
        report = run_compare(list(ctx.args))
    except KeyboardInterrupt:
        print("interrupted (Ctrl-C): finished runs and trials are kept — run the same command again to resume",
              file=sys.stderr, flush=True)
        raise SystemExit(EXIT_INTERRUPTED) from None
    out = report["config"]["out_dir"]
    print((Path(out) / "report.md").read_text())
    print(f"report: {out}/report.md  ·  chart: {out}/compare.png")


@app.command(context_settings=_HYDRA)
def serve(ctx: typer.Context) -> None:
    """HTTP inspection service (torch-free): `inspection serve model.onnx [--port 8000] [--token-file t]`; --help for all options."""
    from inspection.edge.serve.cli import main as serve_main

    raise typer.Exit(code=serve_main(list(ctx.args), prog="inspection serve"))


def _register_optional() -> None:
    """Sub-apps live in their own modules; each registers its verbs here."""
    from inspection.cli.data_cmds import data_app

    app.add_typer(data_app, name="data", help="Import real datasets, generate synthetic ones, validate manifests.")
    from inspection.cli import curation_cmds, export_cmds, inspect_cmd

    export_cmds.register(app)
    inspect_cmd.register(app)
    curation_cmds.register(app)
    from inspection.cli import dvc_stages

    dvc_stages.register(app)
    from inspection.cli import drift_cmd, slices_cmd

    slices_cmd.register(app)
    drift_cmd.register(app)


def main() -> None:
    from inspection.edge.logs import configure_logging

    configure_logging()  # one logging setup for every verb (Hydra's verbs then add their own job logging)
    _register_optional()
    app()


if __name__ == "__main__":
    main()
