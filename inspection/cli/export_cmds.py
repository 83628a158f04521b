"""`inspection export | verify`: ship a checkpoint as ONNX and re-check any exported model."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path

import typer

from inspection.cli.choices import Device, Precision
from inspection.core.errors import user_errors


class TritonKind(str, Enum):
    gpu = "gpu"
    cpu = "cpu"


EXIT_REJECTED = 1  # the command ran, but a gate rejected the model (export) or the model failed a check (verify)


@user_errors
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
    triton: Path | None = typer.Option(None, "--triton", help="Also write a Triton model repository here: "
                                       "<repo>/<name>/config.pbtxt + 1/model.onnx (only for an accepted export)."),
    triton_name: str | None = typer.Option(None, "--triton-name", help="Model name in the repository "
                                           "(default: the --out folder's name)."),
    triton_max_batch: int = typer.Option(32, "--triton-max-batch", min=1, help="Triton max_batch_size."),
    triton_kind: TritonKind = typer.Option(TritonKind.gpu, "--triton-kind", help="Triton instance group kind."),
    override_gate: str = typer.Option(
        "", "--override-gate", metavar="REASON", help="Ship a fp16/int8 model the accuracy gate rejects; the "
        "reason and the failed checks are recorded in the model card."),
) -> None:
    """Export to ONNX (uint8 pixels in, probabilities out) and gate it: parity for fp32, accuracy for fp16/int8."""
    from inspection.export.gated_export import export_model
    from inspection.export.triton import check_name, write_triton_repo

    name = check_name(triton_name or out.resolve().name) if triton else None  # a bad name fails before exporting
    report = export_model(checkpoint, out, precision.value, data, parity_limit=parity_images,
                          calibration_limit=calibration_images, device=device.value,
                          override_gate=override_gate)
    typer.echo(report.to_text())
    if not report.accepted:
        raise typer.Exit(code=EXIT_REJECTED)
    if triton and name and report.exported:
        folder = write_triton_repo(report.exported.onnx_path, triton, name, triton_max_batch, kind=triton_kind.value)
        typer.echo(f"triton: {folder}/config.pbtxt + 1/model.onnx (tritonserver --model-repository {triton})")


@user_errors
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
    from inspection.core.files import atomic_write_text
    from inspection.export.verify import verify_model

    report = verify_model(model, data, checkpoint, split, limit, device.value)
    typer.echo(report.to_text())
    if json_out:
        d = {"model": report.model, "precision": report.precision, "data": report.data, "passed": report.passed,
             "parity": report.parity.to_dict() if report.parity else None,
             "gate": report.gate.to_dict() if report.gate else None, "metrics": report.metrics,
             "notes": report.notes, "warnings": report.warnings}
        atomic_write_text(json_out, json.dumps(d, indent=2, default=float) + "\n")
    if not report.passed:
        raise typer.Exit(code=EXIT_REJECTED)


def register(app: typer.Typer) -> None:
    """Add `export` and `verify` to the main app."""
    app.command("export")(export_cmd)
    app.command("verify")(verify_cmd)
