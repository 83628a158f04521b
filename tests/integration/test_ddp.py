"""DDP on CPU (2 processes, gloo) through `inspection train`, alone and inside a Hydra multirun sweep."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from inspection.data.manifest import load_manifest

DDP = ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", "trainer.precision=32-true",
       "trainer.channels_last=false", "trainer.max_epochs=1", "data.image_size=32", "data.prepare.size=32",
       "data.prepare.n_per_class=12", "data.augment_on=gpu"]  # batched on-device augmentation path under DDP


def _train(args: list[str], root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "INSPECTION_ROOT": str(root)}
    return subprocess.run([sys.executable, "-m", "inspection.cli.main", "train", *args], cwd=root, env=env,
                          capture_output=True, text=True, timeout=600)


def test_ddp_multirun_keeps_one_folder_per_job_and_runs_every_test_step(tmp_path):
    r = _train(["-m", "seed=0,1", *DDP], tmp_path)
    assert r.returncode == 0, r.stderr[-4000:]
    sweeps = list((tmp_path / "outputs/train/multiruns").iterdir())
    assert len(sweeps) == 1, f"DDP workers created extra sweep folders: {sweeps}"
    (manifest,) = (tmp_path / "data").glob("*/manifest.csv")
    jobs = sorted(p.name for p in sweeps[0].iterdir() if p.is_dir())
    assert jobs == ["0", "1"]
    for job in jobs:
        d = sweeps[0] / job
        assert (d / "model.pt").is_file()
        # the worker process logged into the same job folder, not a new one
        assert (d / "train_ddp_process_1.log").is_file()
        metrics = json.loads((d / "eval_test/metrics.json").read_text())
        # the whole test split (the demo split's half: 6 classes x 6 images), scored once, not once per process
        assert metrics["n"] == len(load_manifest(manifest).split("test")) == 36 and metrics["split"] == "test"
    assert not (tmp_path / "outputs/train/runs").exists()
