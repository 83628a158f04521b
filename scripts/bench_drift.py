"""Drift detection on NEU steel with simulated line changes: detection power, false alarms, CBPE error.

    .venv/bin/python scripts/bench_drift.py                      # 2-core CPU: tiny_cnn 32 px, 300 steps
    .venv/bin/python scripts/bench_drift.py --size 64 --steps 600

A tiny_cnn is trained on 100 images per class (its own loop: the benchmark is about drift, not training). The
other NEU images are split into a reference (the validation predictions `inspection drift` would get) and a pool of
current images. Changes applied to the pool's pixels: brightness −30%, Gaussian blur σ = 2, a 90° camera turn, a
class-mix shift (half of the chunk from one class), and a defect type held out of training (a second model trained
without `crazing`; the current chunks contain it at its usual share). For each change and chunk size (200, and
600, three quarters of the pool: NEU has 1,800 images) `run_drift` is called on random chunks; power = share of chunks flagged; false alarms = share of
unchanged chunks flagged. Writes benchmarks/results/drift_neu_<size>px_<device>.json.
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

from inspection.core.image import read_image  # noqa: E402
from inspection.core.preprocess import PreprocessSpec, normalize, resize_image  # noqa: E402
from inspection.evaluation.drift import DriftConfig, run_drift  # noqa: E402
from inspection.evaluation.drift_inputs import image_stats  # noqa: E402
from inspection.evaluation.machine import device_tag, machine_info  # noqa: E402
from inspection.models.factory import create_backbone  # noqa: E402

NEU = REPO.parent / "shared" / "data" / "neu-det" / "IMAGES"
CHANGES = {
    "none": lambda g: g,
    "brightness_-30%": lambda g: (g.astype(np.float32) * 0.7).astype(np.uint8),
    "blur_sigma2": lambda g: cv2.GaussianBlur(g, (0, 0), 2),
    "rotate_90": lambda g: np.ascontiguousarray(np.rot90(g)),
}


def train(x: np.ndarray, y: np.ndarray, n_classes: int, spec: PreprocessSpec, steps: int, seed: int):
    """tiny_cnn trained with Adam on (x, y); cached under outputs/bench_cache/ (bench_slices.py reuses it)."""
    torch.manual_seed(seed)
    net = create_backbone("tiny_cnn", n_classes, 1)
    key = f"tiny_{spec.height}px_{steps}steps_seed{seed}_{n_classes}cls_{len(y)}_{int(y.sum())}.pt"
    cache = REPO / "outputs" / "bench_cache" / key
    if cache.is_file():
        net.load_state_dict(torch.load(cache, weights_only=True))
        return net.eval()
    xt, yt = torch.from_numpy(normalize(x, spec)), torch.from_numpy(y)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    rng = np.random.default_rng(seed)
    net.train()
    for _ in range(steps):
        idx = torch.from_numpy(rng.choice(len(yt), 64, replace=False))
        loss = torch.nn.functional.cross_entropy(net(xt[idx]), yt[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    cache.parent.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), cache)
    return net.eval()


@torch.inference_mode()
def rows(net, grays: list[np.ndarray], labels: list[str], classes: list[str], spec: PreprocessSpec) -> pd.DataFrame:
    """What an inspect run (+ labels) would hold: predicted, confidence, image statistics."""
    x = np.stack([resize_image(g[:, :, None], spec) for g in grays])
    probs = torch.softmax(net(torch.from_numpy(normalize(x, spec))), 1).numpy()
    stats = np.array([image_stats(g) for g in grays])
    return pd.DataFrame({"path": [f"img{i}" for i in range(len(grays))], "label": labels,
                         "predicted": [classes[k] for k in probs.argmax(1)], "confidence": probs.max(1),
                         "img_mean": stats[:, 0], "img_contrast": stats[:, 1], "img_sharpness": stats[:, 2]})


def power(ref: pd.DataFrame, pool: pd.DataFrame, size: int, trials: int, rng, weights=None) -> dict:
    """Share of random chunks flagged, what flagged them, and the CBPE error against the true accuracy."""
    flagged, errors, truth, reasons = 0, [], [], {}
    for _ in range(trials):
        idx = rng.choice(len(pool), size, replace=size > len(pool) or weights is not None, p=weights)
        rep = run_drift(ref, pool.iloc[idx].reset_index(drop=True), DriftConfig())
        c = rep["chunks"][0]
        flagged += c["drift"]
        errors.append(c["performance"]["estimate_error"])
        truth.append(c["performance"]["true_accuracy"])
        for r in c["reasons"]:
            reasons[r] = reasons.get(r, 0) + 1
    return {"chunk": size, "trials": trials, "flagged_share": flagged / trials,
            "cbpe_abs_error_mean": float(np.mean(np.abs(errors))), "cbpe_error_mean": float(np.mean(errors)),
            "true_accuracy_mean": float(np.mean(truth)), "reasons": reasons}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--trials", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)  # a shared 2-core box: OpenMP spin-waits make tiny models far slower under load
    t0 = time.time()
    files = sorted(NEU.glob("*.jpg"))
    if not files:
        sys.exit(f"{NEU}: NEU images not found")
    labels = [f.stem.rsplit("_", 1)[0] for f in files]
    classes = sorted(set(labels))
    grays = [read_image(f, 1)[:, :, 0] for f in files]
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(files))
    lab = np.array(labels)
    tr = np.concatenate([order[lab[order] == c][:100] for c in classes])
    rest = np.setdiff1d(order, tr)
    rest = rest[rng.permutation(len(rest))]
    ref_i, pool_i = rest[:400], rest[400:]
    spec = PreprocessSpec(args.size, args.size, 1, mean=(0.45,), std=(0.22,))
    x_tr = np.stack([resize_image(grays[i][:, :, None], spec) for i in tr])
    y_tr = np.array([classes.index(lab[i]) for i in tr])
    net = train(x_tr, y_tr, len(classes), spec, args.steps, args.seed)
    print(f"trained in {time.time() - t0:.0f} s", flush=True)
    ref = rows(net, [grays[i] for i in ref_i], lab[ref_i].tolist(), classes, spec)
    out = {"machine": machine_info(), "config": vars(args), "n_train": len(tr), "n_reference": len(ref),
           "n_pool": len(pool_i), "reference_accuracy": float((ref["label"] == ref["predicted"]).mean()),
           "changes": {}}
    pools = {}
    for name, f in CHANGES.items():
        pools[name] = rows(net, [f(grays[i]) for i in pool_i], lab[pool_i].tolist(), classes, spec)
    shift_w = np.where(pools["none"]["label"] == classes[0], 0.5 / (pools["none"]["label"] == classes[0]).sum(),
                       0.5 / (pools["none"]["label"] != classes[0]).sum())
    held = classes[0]
    keep = np.array([c != held for c in lab[tr]])
    c5 = classes[1:]
    net5 = train(x_tr[keep], np.array([c5.index(c) for c in lab[tr][keep]]), len(c5), spec, args.steps, args.seed)
    ref5_i = np.array([i for i in ref_i if lab[i] != held])
    ref5 = rows(net5, [grays[i] for i in ref5_i], lab[ref5_i].tolist(), c5, spec)
    pool5 = rows(net5, [grays[i] for i in pool_i], lab[pool_i].tolist(), c5, spec)
    cases = [(name, ref, pools[name], None) for name in CHANGES]
    cases += [(f"class_mix_{held}_50%", ref, pools["none"], shift_w / shift_w.sum()),
              (f"new_defect_type_{held}", ref5, pool5, None)]
    for name, r, pool, w in cases:
        res = []
        for size, trials in ((200, args.trials), (600, max(10, args.trials // 2))):
            res.append(power(r, pool, size, trials, np.random.default_rng(args.seed + size), w))
        out["changes"][name] = res
        print(f"{name:28s} " + "  ".join(f"n={x['chunk']}: flagged {x['flagged_share']:.0%}, "
                                          f"|CBPE err| {x['cbpe_abs_error_mean']:.3f}" for x in res), flush=True)
    out["seconds"] = round(time.time() - t0, 1)
    dest = REPO / "benchmarks" / "results" / f"drift_neu_{args.size}px_{device_tag(out['machine'])}.json"
    dest.write_text(json.dumps(out, indent=2) + "\n")
    print(f"reference accuracy {out['reference_accuracy']:.3f}; wrote {dest} in {out['seconds']} s")


if __name__ == "__main__":
    main()
