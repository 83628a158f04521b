"""`inspection inspect`: run a model over folders with an engine picked by name from ENGINES.

Each engine opens a model file into an `edge.engine.Inspector` and keeps its own defaults (batch size, readers);
options that belong to one engine are refused with another, so nothing is silently ignored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import typer

from inspection.cli.choices import Device, Readers, TorchPrecision
from inspection.core.errors import user_errors
from inspection.edge.engine import Inspector


@dataclass(frozen=True)
class EngineOptions:
    """What the user asked for; None means the engine's own default."""

    device: str = "auto"
    require_gpu: bool = False
    precision: str | None = None
    compile: bool = False
    streams: int | None = None
    readers: str | None = None
    cpu_decode_share: float | None = None
    address: str | None = None
    concurrency: int | None = None
    gpus_per_worker: float | None = None


TORCH_ONLY = {"precision": "--precision", "compile": "--compile", "streams": "--streams", "readers": "--readers",
              "cpu_decode_share": "--cpu-decode-share"}
RAY_ONLY = {"address": "--address", "concurrency": "--concurrency", "gpus_per_worker": "--gpus-per-worker"}


def open_onnx(model: Path, o: EngineOptions) -> Inspector:
    from inspection.edge.inspector import OnnxInspector

    return OnnxInspector(model, device=o.device, require_gpu=o.require_gpu)


def open_torch(model: Path, o: EngineOptions) -> Inspector:
    from inspection.engines.torch_engine import TorchInspector  # torch loads only for this engine

    return TorchInspector(model, device=o.device, precision=o.precision or "fp16", compile=o.compile,
                          require_gpu=o.require_gpu, streams=o.streams, readers=o.readers or "auto",
                          cpu_decode_share=o.cpu_decode_share or 0.0)


def open_ray(model: Path, o: EngineOptions) -> Inspector:
    from inspection.engines.ray_engine import RayInspector  # ray loads only for this engine

    return RayInspector(model, device=o.device, address=o.address, concurrency=o.concurrency,
                        gpus_per_worker=o.gpus_per_worker or 0.0)


@dataclass(frozen=True)
class Engine:
    open: Callable[[Path, EngineOptions], Inspector]
    options: frozenset[str]  # engine-specific EngineOptions fields it takes
    devices: frozenset[str]


ENGINES: dict[str, Engine] = {
    "onnx": Engine(open_onnx, frozenset(), frozenset({"auto", "cpu", "cuda", "tensorrt"})),
    "torch": Engine(open_torch, frozenset(TORCH_ONLY), frozenset({"auto", "cpu", "cuda"})),
    "ray": Engine(open_ray, frozenset(RAY_ONLY), frozenset({"auto", "cpu", "cuda", "tensorrt"})),
}
EngineName = Enum("EngineName", {name: name for name in ENGINES}, type=str)


def check_options(engine: str, o: EngineOptions) -> None:
    """Refuse options the chosen engine does not take (typer.BadParameter: usage error, exit 2)."""
    spec = ENGINES[engine]
    for only, owner in ((TORCH_ONLY, "torch"), (RAY_ONLY, "ray")):
        given = [flag for field, flag in only.items()
                 if field not in spec.options and getattr(o, field) not in (None, False)]
        if given:
            raise typer.BadParameter(f"{', '.join(given)} need --engine {owner}")
    if o.device not in spec.devices:
        raise typer.BadParameter(f"--device {o.device} needs --engine onnx" if engine == "torch"
                                 else f"--device {o.device} is not available with --engine {engine}")


@user_errors
def inspect_cmd(
    model: Path = typer.Argument(..., help="model.onnx written by `inspection export`."),
    sources: list[str] = typer.Argument(..., help="Image files, folders (recursive), globs or .txt path lists."),
    out: Path = typer.Option(..., "--out", help="results.csv or results.jsonl (one row per image); locked while the run "
                                                "works, <out>.done.json written when it has finished."),
    device: Device = typer.Option(Device.auto, "--device", help="ONNX Runtime execution provider."),
    require_gpu: bool = typer.Option(False, "--require-gpu", help="Fail if no GPU provider loads."),
    batch_size: int | None = typer.Option(None, "--batch-size", min=1,
                                          help="Images per batch (default: the engine's own; onnx 32, torch 256, "
                                               "ray 64)."),
    workers: int | None = typer.Option(None, "--workers", help="Reader/decode threads (default: min(8, CPUs); "
                                       "torch engine: 4 reader processes with nvJPEG, min(16, CPUs) threads without; "
                                       "ray: decode threads and CPUs per actor, default 1)."),
    resume: bool = typer.Option(False, "--resume", help="Skip images already in --out."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --out."),
    fail_on: list[str] | None = typer.Option(
        None, "--fail-on", help="Exit 1 when rows are ng, review or error (repeatable or comma-separated)."),
    report: Path | None = typer.Option(None, "--report", help="Self-contained HTML report."),
    drift_reference: Path | None = typer.Option(None, "--drift-reference", help="A reference run (predictions.csv "
                                                "or an inspect output): also write <out>_drift/drift.html/.json."),
    top_k: int = typer.Option(3, "--top-k"),
    quiet: bool = typer.Option(False, "--quiet", help="No progress line."),
    engine: EngineName = typer.Option(EngineName("onnx"), "--engine",
                                      help="onnx: ONNX Runtime on model.onnx; torch: a checkpoint (model.pt) on a GPU "
                                           "server with nvJPEG decode, fp16 and channels_last; ray: model.onnx "
                                           "(or model.pt) on a Ray cluster's actors (pip install "
                                           "'inspection[cluster]')."),
    precision: TorchPrecision | None = typer.Option(None, "--precision",
                                                    help="torch engine on CUDA (default fp16)."),
    compile_model: bool = typer.Option(False, "--compile", help="torch engine: torch.compile the network."),
    streams: int | None = typer.Option(None, "--streams", min=1, help="torch engine: batches in flight, each on its "
                                       "own CUDA stream (default 1; see the benchmark table)."),
    readers: Readers | None = typer.Option(None, "--readers", help="torch engine: read files in threads or "
                                           "processes; auto (default): processes with nvJPEG on CUDA (they sidestep "
                                           "the GIL), threads otherwise."),
    cpu_decode_share: float | None = typer.Option(None, "--cpu-decode-share", min=0.0, max=1.0,
                                                  help="torch engine with nvJPEG: share of the JPEGs the readers "
                                                       "decode on the CPU, to offload the GPU decoder's one host "
                                                       "thread (default 0)."),
    address: str | None = typer.Option(None, "--address", help="ray engine: 'auto' joins the running cluster, "
                                       "ray://head:10001 connects through Ray Client (default: a private local "
                                       "cluster on this machine's CPUs)."),
    concurrency: int | None = typer.Option(None, "--concurrency", min=1, help="ray engine: actors in the pool "
                                           "(default: one per --workers CPUs of the cluster, or per GPU share "
                                           "with --gpus-per-worker)."),
    gpus_per_worker: float | None = typer.Option(None, "--gpus-per-worker", min=0.0, help="ray engine: GPUs "
                                                 "each actor reserves (default 0: CPU actors; > 0: ONNX Runtime, "
                                                 "or the torch engine for a .pt checkpoint, on CUDA)."),
) -> None:
    """Inspect images with an exported model: OK / NG / REVIEW per image, streamed to CSV/JSONL."""
    from inspection.edge.cli import inspect_command

    options = EngineOptions(device=device.value, require_gpu=require_gpu,
                            precision=precision.value if precision else None, compile=compile_model, streams=streams,
                            readers=readers.value if readers else None, cpu_decode_share=cpu_decode_share,
                            address=address, concurrency=concurrency, gpus_per_worker=gpus_per_worker)
    name = engine.value
    check_options(name, options)
    if drift_reference is not None and not drift_reference.is_file():
        raise typer.BadParameter(f"{drift_reference}: drift reference not found", param_hint="--drift-reference")
    code = inspect_command(lambda: ENGINES[name].open(model, options), sources, str(out), batch_size=batch_size,
                           workers=workers, resume=resume, overwrite=overwrite, fail_on=fail_on or [],
                           report=str(report) if report else None, top_k=top_k, quiet=quiet)
    if drift_reference is not None:  # `inspection drift` on this run's rows, written beside them
        from inspection.cli.drift_cmd import check_drift

        found, page = check_drift(drift_reference, out, out.with_name(out.stem + "_drift"))
        typer.echo(f"drift: {'DRIFT (' + ', '.join(found['chunks'][0]['reasons']) + ')' if found['drift'] else 'none'}"
                   f" → {page}")
    if code:
        raise typer.Exit(code=code)


def register(app: typer.Typer) -> None:
    """Add `inspect` to the main app."""
    app.command("inspect")(inspect_cmd)
