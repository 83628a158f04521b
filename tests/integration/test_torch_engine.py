"""The torch inspection engine (GPU servers): same rows, errors and verdicts as the ONNX edge runner.

CPU-runnable tests cover the engine's code paths here; `gpu` tests check nvJPEG decode and fp16 on CUDA.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from bad_images import write_bad_images
from edge_helpers import make_dataset, train_on_manifest

from inspection.data.manifest import load_manifest
from inspection.edge.runner import Progress, run_inspection
from inspection.engines.torch_engine import TorchInspector

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture(scope="module")
def model_and_images(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("torch_engine")
    csv_path = make_dataset(tmp / "data", "steel", n_per_class=8, size=32)
    m = load_manifest(csv_path)
    ckpt = train_on_manifest(m, csv_path, tmp / "model.pt", size=32, steps=30)
    folder = tmp / "images"
    folder.mkdir()
    for p in m.rows["path"][:24]:
        src = m.abspath(p)
        (folder / src.name).write_bytes(src.read_bytes())
    return ckpt, folder


def _rows(path: Path) -> dict[str, dict]:
    with open(path, newline="") as f:
        return {Path(r["path"]).name: r for r in csv.DictReader(f)}


def _with_bad_files(folder: Path, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A copy of the good images plus one file per bad-input kind; returns it and {name: expected error}."""
    bad = write_bad_images(tmp_path / "bad")
    src = tmp_path / "mixed"
    shutil.copytree(folder, src)
    for name in bad:
        shutil.copy(tmp_path / "bad" / name, src / name)
    return src, bad


def test_cpu_engine_matches_onnx_runner_rows(model_and_images, tmp_path):
    from inspection.edge.inspector import OnnxInspector
    from inspection.export import export_model

    ckpt, folder = model_and_images
    src, bad = _with_bad_files(folder, tmp_path)
    export_model(ckpt, tmp_path / "onnx")
    onnx = OnnxInspector(next((tmp_path / "onnx").glob("*.onnx")), device="cpu")
    eng = TorchInspector(ckpt, device="cpu")
    s1 = run_inspection(eng, [str(src)], tmp_path / "torch.csv", batch_size=8, progress=Progress(enabled=False))
    s2 = run_inspection(onnx, [str(src)], tmp_path / "ort.csv", batch_size=8, progress=Progress(enabled=False))
    a, b = _rows(tmp_path / "torch.csv"), _rows(tmp_path / "ort.csv")
    assert a.keys() == b.keys() and s1.n_new == s2.n_new == 24 + len(bad)
    for name, expected in bad.items():
        if expected:
            assert expected in a[name]["error"], (name, a[name]["error"])
    for name in a:
        assert a[name]["verdict"] == b[name]["verdict"], name
        if a[name]["confidence"]:
            assert abs(float(a[name]["confidence"]) - float(b[name]["confidence"])) < 1e-4


def test_concurrent_batches_and_reader_processes_keep_input_order_and_results(model_and_images, tmp_path):
    """Several batches in flight (device worker threads), or files read by reader processes, must give the same
    rows, in the same order, as one batch at a time read by threads, bad files' errors included."""
    ckpt, folder = model_and_images
    src, bad = _with_bad_files(folder, tmp_path)
    files = sorted(str(p) for p in Path(src).iterdir()) * 3
    (tmp_path / "list.txt").write_text("\n".join(files) + "\n")
    outs = {}
    for streams, readers in ((1, "threads"), (3, "threads"), (2, "processes")):
        eng = TorchInspector(ckpt, device="cpu", streams=streams, readers=readers)
        assert eng.streams == streams
        out = tmp_path / f"s{streams}{readers}.csv"
        s = run_inspection(eng, [str(tmp_path / "list.txt")], out, batch_size=5, workers=2,
                           progress=Progress(enabled=False))
        assert s.n_new == len(files) and s.errors == 3 * sum(1 for e in bad.values() if e)
        with open(out, newline="") as f:
            outs[streams, readers] = [(r["path"], r["verdict"], r["confidence"], r["error"])
                                      for r in csv.DictReader(f)]
    base = outs[1, "threads"]
    assert [row[0] for row in base] == files
    assert outs[3, "threads"] == base  # input order, batches finishing out of order or not
    assert outs[2, "processes"] == base


@pytest.mark.slow
@pytest.mark.skipif(not (shutil.which("g++") or shutil.which("c++")), reason="torch.compile on the CPU needs a C++ compiler")
def test_compiled_engine_gives_the_eager_verdicts(model_and_images, tmp_path):
    """torch.compile with a named mode (reduce-overhead: CUDA graphs on a GPU) changes speed, not results."""
    ckpt, folder = model_and_images
    eager = TorchInspector(ckpt, device="cpu", readers="threads")
    compiled = TorchInspector(ckpt, device="cpu", readers="threads", compile="reduce-overhead")
    assert "compiled reduce-overhead" in compiled.describe() and "compiled" not in eager.describe()
    for eng, name in ((eager, "eager.csv"), (compiled, "compiled.csv")):
        run_inspection(eng, [str(folder)], tmp_path / name, batch_size=16, progress=Progress(enabled=False))
    a, b = _rows(tmp_path / "eager.csv"), _rows(tmp_path / "compiled.csv")
    assert a.keys() == b.keys() and len(a) == 24
    for k in a:
        assert a[k]["verdict"] == b[k]["verdict"] and a[k]["predicted"] == b[k]["predicted"]
        assert abs(float(a[k]["confidence"]) - float(b[k]["confidence"])) < 1e-4


def test_unknown_readers_is_refused(model_and_images):
    from inspection.core.errors import InspectionError

    with pytest.raises(InspectionError, match="readers must be one of"):
        TorchInspector(model_and_images[0], device="cpu", readers="fibers")


def test_cuda_request_without_gpu_is_loud(model_and_images, capsys, caplog):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    from inspection.core.errors import InspectionError

    ckpt, _ = model_and_images
    with pytest.raises(InspectionError, match="CUDA is not available"):
        TorchInspector(ckpt, device="cuda", require_gpu=True)
    with caplog.at_level("WARNING", logger="inspection"):
        eng = TorchInspector(ckpt, device="cuda")
    # a logged warning (stderr), not a print: stdout stays for results
    assert any("running on CPU" in r.getMessage() for r in caplog.records) and eng.device.type == "cpu"
    assert capsys.readouterr().out == "" and eng.runs_on().startswith("torch cpu")


@pytest.mark.gpu
@cuda
def test_gpu_nvjpeg_engine_agrees_with_cpu_decode(neu_dir, tmp_path):
    """NEU JPEGs decoded by nvJPEG on the GPU vs OpenCV on the CPU vs half each (reader processes decoding a
    share, two streams), same fp32 model: verdicts agree."""
    from inspection.core.postprocess import Thresholds
    from inspection.core.preprocess import PreprocessSpec
    from inspection.models.checkpoint import save_checkpoint
    from inspection.models.factory import create_backbone

    spec = PreprocessSpec(200, 200, 1, (0.5,), (0.25,))
    torch.manual_seed(0)
    net = create_backbone("resnet18", 6, 1).eval()
    ckpt = save_checkpoint(tmp_path / "m.pt", net, "resnet18", [f"c{i}" for i in range(6)], spec, Thresholds())
    files = sorted(str(p) for p in (neu_dir / "IMAGES").iterdir())[::15]
    gpu = TorchInspector(ckpt, device="cuda", precision="fp32", gpu_decode=True)
    cpu_decode = TorchInspector(ckpt, device="cuda", precision="fp32", gpu_decode=False)
    hybrid = TorchInspector(ckpt, device="cuda", precision="fp32", gpu_decode=True, readers="processes",
                            cpu_decode_share=0.5, streams=2)
    ra = [r for b in gpu.iter_results(files, 64) for r in b]
    rb = [r for b in cpu_decode.iter_results(files, 64) for r in b]
    rc = [r for b in hybrid.iter_results(files, 64, workers=3) for r in b]
    hybrid.close()
    assert [r.path for r in rc] == files
    pa, pb, pc = (np.stack([r.probs for r in rs]) for rs in (ra, rb, rc))
    for other in (pb, pc):
        assert (pa.argmax(1) == other.argmax(1)).mean() >= 0.99
        assert np.abs(pa - other).max() < 0.02  # decoder IDCT rounding only


@pytest.mark.gpu
@cuda
def test_gpu_engine_reports_bad_files_in_a_jpeg_batch(model_and_images, tmp_path):
    """A truncated/corrupt JPEG inside an nvJPEG batch: that file gets its ERROR row, the rest are classified."""
    ckpt, folder = model_and_images
    src, bad = _with_bad_files(folder, tmp_path)
    for engine, name in ((TorchInspector(ckpt, device="cuda", precision="fp32"), "gpu.csv"),
                         (TorchInspector(ckpt, device="cpu"), "cpu.csv")):
        run_inspection(engine, [str(src)], tmp_path / name, batch_size=8, progress=Progress(enabled=False))
    g, c = _rows(tmp_path / "gpu.csv"), _rows(tmp_path / "cpu.csv")
    assert g.keys() == c.keys()
    for name, expected in bad.items():
        if expected:
            assert expected in g[name]["error"], (name, g[name]["error"])
    assert sum(g[n]["verdict"] == c[n]["verdict"] for n in g) >= len(g) - 1  # cmyk: decoders may differ


@pytest.mark.gpu
@cuda
def test_gpu_training_few_hundred_steps(neu_dir, tmp_path):
    from inspection.core.preprocess import PreprocessSpec
    from inspection.data.datamodule import DataConfig
    from inspection.data.importers import import_neu
    from inspection.training.fit import ModelConfig, OptimConfig, TrainerConfig, fit_classifier

    import_neu(neu_dir, tmp_path / "neu", copy=False)
    data = DataConfig(str(tmp_path / "neu/manifest.csv"), PreprocessSpec(200, 200, 1, (0.5,), (0.25,)),
                      batch_size=64, augment_on="gpu")
    res = fit_classifier(data, ModelConfig("resnet18"), OptimConfig(), TrainerConfig(
        max_epochs=12, accelerator="gpu", precision="bf16-mixed", channels_last=True, enable_progress_bar=False),
        tmp_path / "run", evaluate_splits=("test",))
    assert res.test_metrics["accuracy"] > 0.8


def test_inspect_cli_torch_engine(model_and_images, tmp_path):
    from typer.testing import CliRunner

    from inspection.cli.main import _register_optional, app

    ckpt, folder = model_and_images
    _register_optional()
    r = CliRunner().invoke(app, ["inspect", str(ckpt), str(folder), "--out", str(tmp_path / "r.jsonl"),
                                 "--engine", "torch", "--device", "cpu", "--quiet"])
    assert r.exit_code == 0, r.output
    assert len((tmp_path / "r.jsonl").read_text().splitlines()) == 24
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    r = CliRunner().invoke(app, ["inspect", str(tmp_path / "junk.pt"), str(folder), "--out",
                                 str(tmp_path / "x.csv"), "--engine", "torch", "--device", "cpu"])
    assert r.exit_code == 2


def test_reader_processes_from_an_unguarded_script_fail_clearly(model_and_images, tmp_path):
    """Spawned readers re-import the caller's script; without a __main__ guard they die at start. The user must
    get a clear error naming the fix, not a hang or a bare BrokenProcessPool."""
    import subprocess
    import sys

    ckpt, folder = model_and_images
    script = tmp_path / "unguarded.py"
    script.write_text(
        "from inspection.engines.torch_engine import TorchInspector\n"
        f"eng = TorchInspector({str(ckpt)!r}, device='cpu', readers='processes')\n"
        f"files = sorted(str(p) for p in __import__('pathlib').Path({str(folder)!r}).iterdir())\n"
        "print(sum(len(b) for b in eng.iter_results(files, 8, workers=2)))\n")
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                       cwd=Path(__file__).resolve().parents[2])
    assert r.returncode != 0
    assert "a reader process failed" in r.stderr and "__main__" in r.stderr, r.stderr[-2000:]


def test_both_engines_implement_the_inspector_protocol(model_and_images, tmp_path):
    from inspection.edge.engine import Inspector
    from inspection.edge.inspector import OnnxInspector
    from inspection.export import export_model

    ckpt, folder = model_and_images
    export_model(ckpt, tmp_path / "onnx")
    engines = [TorchInspector(ckpt, device="cpu"), OnnxInspector(tmp_path / "onnx" / "model.onnx", device="cpu")]
    files = sorted(str(p) for p in folder.iterdir())
    for eng in engines:
        assert isinstance(eng, Inspector), type(eng).__name__
        assert eng.card.class_names and len(eng.model_hash) == 12 and eng.runs_on() in eng.describe()
        assert [r.path for b in eng.iter_results(files, 5) for r in b] == files
        eng.close()
    assert engines[0].card.class_names == engines[1].card.class_names
    assert engines[0].card.thresholds == engines[1].card.thresholds


def test_each_engine_batches_at_its_own_default(model_and_images):
    """The trap this fixes: the CLI's --batch-size default (32) used to override the torch engine's 256."""
    from inspection.engines.torch_engine import DEFAULT_BATCH_SIZE

    ckpt, folder = model_and_images
    files = sorted(str(p) for p in folder.iterdir()) * 12  # 288 paths > 256
    sizes = [len(b) for b in TorchInspector(ckpt, device="cpu").iter_results(files)]
    assert DEFAULT_BATCH_SIZE == 256 and sizes == [256, 32]


def test_inspect_cli_leaves_the_batch_size_to_the_engine_and_checks_engine_options(model_and_images, tmp_path,
                                                                                  monkeypatch):
    from typer.testing import CliRunner

    from inspection.cli import inspect_cmd
    from inspection.cli.main import _register_optional, app

    ckpt, folder = model_and_images
    _register_optional()
    seen = []
    real = TorchInspector.iter_results

    def spy(self, paths, batch_size=None, workers=None, prefetch=2):
        seen.append(batch_size)
        return real(self, paths, batch_size, workers, prefetch)

    monkeypatch.setattr(TorchInspector, "iter_results", spy)
    base = ["inspect", str(ckpt), str(folder), "--device", "cpu", "--quiet", "--engine", "torch"]
    r = CliRunner().invoke(app, [*base, "--out", str(tmp_path / "a.csv")])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(app, [*base, "--out", str(tmp_path / "b.csv"), "--batch-size", "7"])
    assert r.exit_code == 0, r.output
    assert seen == [None, 7]
    # engine options are checked at the boundary, before any model is loaded
    r = CliRunner().invoke(app, [*base, "--out", str(tmp_path / "c.csv"), "--precision", "fp17"])
    assert r.exit_code == 2 and "fp17" in r.output
    onnx = ["inspect", str(ckpt), str(folder), "--out", str(tmp_path / "d.csv")]
    for extra in (["--precision", "bf16"], ["--streams", "2"], ["--compile"], ["--readers", "threads"]):
        r = CliRunner().invoke(app, [*onnx, *extra])
        assert r.exit_code == 2 and "need --engine torch" in r.output, (extra, r.output)
    r = CliRunner().invoke(app, [*base, "--out", str(tmp_path / "e.csv"), "--device", "tensorrt"])
    assert r.exit_code == 2 and "needs --engine onnx" in r.output
    assert set(inspect_cmd.ENGINES) == {"onnx", "torch", "ray"}
    assert not (tmp_path / "c.csv").exists() and not (tmp_path / "d.csv").exists()

