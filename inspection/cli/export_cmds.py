"""`inspection export | verify | inspect`: ship a checkpoint as ONNX, re-check it, and run it over folders."""

from __future__ import annotations

import functools
import json
from enum import Enum
from pathlib import Path

import typer

from inspection.core.errors import InspectionError

EXIT_REJECTED = 1  # the command ran, but a gate rejected the model (export) or the model failed a check (verify)
EXIT_ERROR = 2  # a user error: bad input, missing file, malformed metadata


class Precision(str, Enum):
    """Export precisions."""

    fp32 = "fp32"
    fp16 = "fp16"
    int8 = "int8"


class Device(str, Enum):
    """ONNX Runtime device choices."""

    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"
    tensorrt = "tensorrt"


def _user_errors(fn):
    """InspectionError → `error: ...` on stderr and exit 2, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except InspectionError as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(code=EXIT_ERROR) from None

    return wrapper


@_user_errors
def export_cmd(
    checkpoint: Path = typer.Argument(..., help="Checkpoint written by `inspection train`."),
    out: Path = typer.Option(..., "--out", help="Output folder for model.onnx + model.json."),
    precision: Precision = typer.Option(Precision.fp32, "--precision", help="fp32, fp16 (GPU) or int8 (CPU)."),
    data: Path | None = typer.Option(
        None, "--data", help="manifest.csv (val: parity + gate, train: int8 calibration) or an image folder; "
        "default: the manifest recorded in the checkpoint."),
    parity_images: int = typer.Option(256, "--parity-images", help="Validation images for the parity gate."),
    calibration_images: int = typer.Option(128, "--calibration-images", help="Train images for int8 calibration."),
    device: Device = typer.Option(Device.cpu, "--device", help="Where the fp16/int8 gate runs."),
) -> None:
    """Export to ONNX (uint8 pixels in, probabilities out) and gate it: parity for fp32, accuracy for fp16/int8."""
    from inspection.edge.cli import configure_logging
    from inspection.export.pipeline import export_model

    configure_logging()
    report = export_model(checkpoint, out, precision.value, data, parity_limit=parity_images,
                          calibration_limit=calibration_images, device=device.value)
    typer.echo(report.to_text())
    if not report.accepted:
        raise typer.Exit(code=EXIT_REJECTED)


@_user_errors
def verify_cmd(
    model: Path = typer.Argument(..., help="model.onnx written by `inspection export`."),
    data: Path = typer.Argument(..., help="manifest.csv (split --split) or a folder of images."),
    checkpoint: Path | None = typer.Option(None, "--checkpoint", help="Reference checkpoint (default: the card's)."),
    split: str = typer.Option("val", "--split", help="Manifest split to check on."),
    limit: int | None = typer.Option(None, "--limit", help="At most this many images (evenly spread)."),
    device: Device = typer.Option(Device.cpu, "--device"),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the report as JSON here."),
) -> None:
    """Re-run parity (vs the checkpoint) and accuracy for any exported model; exit 1 if it fails."""
    from inspection.core.model_card import atomic_write_text
    from inspection.edge.cli import configure_logging
    from inspection.export.verify import verify_model

    configure_logging()
    report = verify_model(model, data, checkpoint, split, limit, device.value)
    typer.echo(report.to_text())
    if json_out:
        d = {"model": report.model, "precision": report.precision, "data": report.data, "passed": report.passed,
             "parity": report.parity.to_dict() if report.parity else None,
             "gate": report.gate.to_dict() if report.gate else None, "metrics": report.metrics,
             "notes": report.notes}
        atomic_write_text(json_out, json.dumps(d, indent=2, default=float) + "\n")
    if not report.passed:
        raise typer.Exit(code=EXIT_REJECTED)


def inspect_cmd(
    model: Path = typer.Argument(..., help="model.onnx written by `inspection export`."),
    sources: list[str] = typer.Argument(..., help="Image files, folders (recursive), globs or .txt path lists."),
    out: Path = typer.Option(..., "--out", help="results.csv or results.jsonl (one row per image)."),
    device: Device = typer.Option(Device.auto, "--device", help="ONNX Runtime execution provider."),
    require_gpu: bool = typer.Option(False, "--require-gpu", help="Fail if no GPU provider loads."),
    batch_size: int = typer.Option(32, "--batch-size"),
    workers: int | None = typer.Option(None, "--workers", help="Reader/decode threads (default: min(8, CPUs); "
                                       "torch engine: 4 reader processes with nvJPEG, min(16, CPUs) threads without)."),
    resume: bool = typer.Option(False, "--resume", help="Skip images already in --out."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --out."),
    fail_on: list[str] | None = typer.Option(
        None, "--fail-on", help="Exit 1 when rows are ng, review or error (repeatable or comma-separated)."),
    report: Path | None = typer.Option(None, "--report", help="Self-contained HTML report."),
    top_k: int = typer.Option(3, "--top-k"),
    quiet: bool = typer.Option(False, "--quiet", help="No progress line."),
    engine: str = typer.Option("onnx", "--engine",
                               help="onnx: ONNX Runtime on model.onnx; torch: a checkpoint (model.pt) on a GPU "
                                    "server with nvJPEG decode, fp16 and channels_last."),
    precision: str = typer.Option("fp16", "--precision", help="torch engine on CUDA: fp16, bf16 or fp32."),
    compile_model: bool = typer.Option(False, "--compile", help="torch engine: torch.compile the network."),
    streams: int | None = typer.Option(None, "--streams", help="torch engine: batches in flight, each on its own "
                                       "CUDA stream (default 1; see the README's benchmark table)."),
    readers: str = typer.Option("auto", "--readers", help="torch engine: read files in threads or processes; auto: "
                                "processes with nvJPEG on CUDA (they sidestep the GIL), threads otherwise."),
    cpu_decode_share: float = typer.Option(0.0, "--cpu-decode-share", min=0.0, max=1.0,
                                           help="torch engine with nvJPEG: share of the JPEGs the readers decode "
                                                "on the CPU, to offload the GPU decoder's one host thread."),
) -> None:
    """Inspect images with an exported model: OK / NG / REVIEW per image, streamed to CSV/JSONL."""
    from inspection.edge.cli import inspect_command

    factory = None
    if engine == "torch":
        if device.value == "tensorrt":
            raise typer.BadParameter("--device tensorrt needs --engine onnx")

        def factory():
            from inspection.models.torch_inspector import TorchInspector

            return TorchInspector(model, device=device.value, precision=precision, compile=compile_model,
                                  require_gpu=require_gpu, streams=streams, readers=readers,
                                  cpu_decode_share=cpu_decode_share)
    elif engine != "onnx":
        raise typer.BadParameter(f"--engine must be onnx or torch, got {engine!r}")
    elif readers != "auto" or cpu_decode_share:
        raise typer.BadParameter("--readers and --cpu-decode-share need --engine torch")
    code = inspect_command(str(model), sources, str(out), device=device.value, require_gpu=require_gpu,
                           batch_size=batch_size, workers=workers, resume=resume, overwrite=overwrite,
                           fail_on=fail_on or [], report=str(report) if report else None, top_k=top_k, quiet=quiet,
                           make_inspector=factory)
    if code:
        raise typer.Exit(code=code)


def register(app: typer.Typer) -> None:
    """Add `export`, `verify` and `inspect` to the main app."""
    app.command("export")(export_cmd)
    app.command("verify")(verify_cmd)
    app.command("inspect")(inspect_cmd)
