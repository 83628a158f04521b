"""Slice analysis on real NEU images with planted slices: is the planted slice found first, and nothing else?

    .venv/bin/python scripts/bench_slices.py          # 2-core CPU: tiny_cnn 32 px (bench_drift's model)

The model and split are bench_drift.py's (tiny_cnn on 100 images per class). The 1,200 other images get random
`meta_camera` (4 values) and `meta_lot` (5 values). Scenarios, each over several random metadata draws:
`blurred_camera` (cam2's images blurred, σ = 2, before the model sees them), `mislabelled_lot` (40% of lot L3's
labels swapped for another class; the model sees the true images), and `null` (nothing planted). Recorded: the
rank of the planted slice, whether it is flagged, whether its accuracy interval excludes the rest's accuracy, the
number of other single slices flagged, and — with the model's penultimate features clustered — the best overlap
of a flagged cluster with the planted slice. Writes benchmarks/results/slices_neu_<size>px_<device>.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from bench_drift import NEU, train  # noqa: E402

from inspection.core.image import read_image  # noqa: E402
from inspection.core.preprocess import PreprocessSpec, normalize, resize_image  # noqa: E402
from inspection.data.manifest import Manifest  # noqa: E402
from inspection.evaluation.machine import device_tag, machine_info  # noqa: E402
from inspection.evaluation.slices import SliceConfig, find_slices  # noqa: E402
from inspection.evaluation.slices_table import add_clusters, build_table  # noqa: E402


@torch.inference_mode()
def predict(net, grays: list[np.ndarray], spec: PreprocessSpec) -> tuple[np.ndarray, np.ndarray]:
    """(class index, penultimate features) per image."""
    x = torch.from_numpy(normalize(np.stack([resize_image(g[:, :, None], spec) for g in grays]), spec))
    feats = net.head[:2](net.features(x))  # pooled + flattened: the input of the classifier's last layer
    return net.head[2:](feats).argmax(1).numpy(), feats.numpy()


def scenario(name: str, grays, labels, classes, net, spec, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    n = len(grays)
    cam = rng.choice(["cam1", "cam2", "cam3", "cam4"], n)
    lot = rng.choice([f"L{i}" for i in range(5)], n)
    given = np.array(labels)
    imgs = grays
    planted = None
    if name == "blurred_camera":
        imgs = [cv2.GaussianBlur(g, (0, 0), 2) if c == "cam2" else g for g, c in zip(grays, cam)]
        planted = "meta_camera=cam2"
    elif name == "mislabelled_lot":
        flip = (lot == "L3") & (rng.random(n) < 0.4)
        given[flip] = [rng.choice([c for c in classes if c != g]) for g in given[flip]]
        planted = "meta_lot=L3"
    pred, feats = predict(net, imgs, spec)
    rows = pd.DataFrame({"path": [f"img/{i}.jpg" for i in range(n)], "label": given, "split": "test",
                         "sha256": "x", "meta_camera": cam, "meta_lot": lot})
    m = Manifest("neu", list(classes), rows, Path("/neu"))
    preds = pd.DataFrame({"path": rows["path"], "predicted": [classes[k] for k in pred], "error": ""})
    table = build_table(preds, m, "bench")
    add_clusters(table, feats, k=8, seed=seed)
    found = find_slices(table, SliceConfig(n_boot=500))
    singles = found[found["kind"] == "single"]
    out = {"accuracy": float(table.rows["correct"].mean()), "n_slices": len(found),
           "flagged": found.loc[found["flagged"], "slice"].tolist()[:10]}
    if planted:
        hit = found[found["slice"] == planted].iloc[0]
        mask = (rows[planted.split("=")[0]] == planted.split("=")[1]).to_numpy()
        clusters = [s for s in singles.loc[singles["flagged"], "slice"] if s.startswith("cluster=")]
        overlap = max((((table.rows["cluster"] == c.split("=")[1]).to_numpy() & mask).sum()
                       / ((table.rows["cluster"] == c.split("=")[1]).to_numpy() | mask).sum() for c in clusters),
                      default=0.0)
        out.update(rank=int(hit["rank"]), planted_flagged=bool(hit["flagged"]),
                   ci_excludes_rest=bool(hit["accuracy_hi"] < hit["rest_accuracy"]),
                   planted_accuracy=float(hit["accuracy"]), rest_accuracy=float(hit["rest_accuracy"]),
                   other_singles_flagged=int((singles["flagged"] & ~singles["slice"].isin([planted])
                                              & ~singles["slice"].str.startswith(("cluster=", "class="))).sum()),
                   best_flagged_cluster_jaccard=float(overlap))
    else:
        out["meta_singles_flagged"] = int((singles["flagged"] & singles["slice"].str.startswith("meta_")).sum())
        out["meta_any_flagged"] = bool((found["flagged"] & found["slice"].str.contains("meta_")
                                        & ~found["slice"].str.contains("cluster=|class=")).any())
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--draws", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    t0 = time.time()
    files = sorted(NEU.glob("*.jpg"))
    if not files:
        sys.exit(f"{NEU}: NEU images not found")
    lab = np.array([f.stem.rsplit("_", 1)[0] for f in files])
    classes = sorted(set(lab))
    grays = [read_image(f, 1)[:, :, 0] for f in files]
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(files))
    tr = np.concatenate([order[lab[order] == c][:100] for c in classes])
    ev = np.setdiff1d(order, tr)
    spec = PreprocessSpec(args.size, args.size, 1, mean=(0.45,), std=(0.22,))
    x_tr = np.stack([resize_image(grays[i][:, :, None], spec) for i in tr])
    net = train(x_tr, np.array([classes.index(c) for c in lab[tr]]), len(classes), spec, args.steps, args.seed)
    out = {"machine": machine_info(), "config": vars(args), "n_train": len(tr), "n_eval": len(ev), "scenarios": {}}
    for name in ("blurred_camera", "mislabelled_lot", "null"):
        res = [scenario(name, [grays[i] for i in ev], lab[ev].tolist(), classes, net, spec, 100 + d)
               for d in range(args.draws)]
        out["scenarios"][name] = res
        keys = [k for k in ("rank", "planted_flagged", "ci_excludes_rest", "other_singles_flagged",
                            "best_flagged_cluster_jaccard", "meta_singles_flagged", "meta_any_flagged") if k in res[0]]
        print(f"{name:16s} " + ", ".join(f"{k} {[r[k] for r in res]}" for k in keys), flush=True)
    out["seconds"] = round(time.time() - t0, 1)
    dest = REPO / "benchmarks" / "results" / f"slices_neu_{args.size}px_{device_tag(out['machine'])}.json"
    dest.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {dest} in {out['seconds']} s")


if __name__ == "__main__":
    main()
