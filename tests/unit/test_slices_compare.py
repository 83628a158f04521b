"""Per-slice deltas between compare arms: a gain planted in one camera shows there, with an interval above 0."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from inspection.data.manifest import Manifest
from inspection.evaluation.slices_compare import write_slice_deltas


def test_gain_in_one_camera_is_located(tmp_path):
    rng = np.random.default_rng(0)
    n = 400
    labels = rng.choice(["a", "b", "c"], n)
    cam = rng.choice(["cam1", "cam2", "cam3"], n)
    rows = pd.DataFrame({"path": [f"t/{i}.png" for i in range(n)], "label": labels, "split": "test",
                         "sha256": "x", "meta_camera": cam})
    gold = Manifest("g", ["a", "b", "c"], rows, Path("/gold"))
    runs: dict[str, list[Path]] = {}
    for arm, err_cam2 in (("baseline", 0.5), ("data_centric", 0.1)):
        for seed in range(2):
            err = np.where(cam == "cam2", err_cam2, 0.1)
            wrong = rng.random(n) < err
            pred = np.where(wrong, np.where(labels == "a", "b", "a"), labels)
            run = tmp_path / arm / f"seed{seed}"
            (run / "eval_test").mkdir(parents=True)
            pd.DataFrame({"path": [f"/somewhere/v1/images/t/{i}.png" for i in range(n)], "label": labels,
                          "predicted": pred}).to_csv(run / "eval_test" / "predictions.csv", index=False)
            runs.setdefault(arm, []).append(run)
    md = write_slice_deltas(runs, gold, tmp_path)
    t = pd.read_csv(tmp_path / "slice_deltas.csv").set_index("slice")
    assert t.loc["meta_camera=cam2", "delta_lo"] > 0.2
    for other in ("meta_camera=cam1", "meta_camera=cam3"):
        assert t.loc[other, "delta_lo"] <= 0 and abs(t.loc[other, "delta"]) < 0.06  # no gain claimed there
    assert md.read_text().splitlines()[6].startswith("| meta_camera=cam2 |")  # biggest gain first
