"""MVTec pill OK/NG: the project's normal configurations beside the bare PyTorch anchor, on the anchor's folds, in
one job (the anchor: ../shared/anchors/pill_supervised_anchor.py).

    .venv/bin/python scripts/bench_pill.py --size 96 --epochs 20 --folds 0          # 2-core CPU, reduced
    .venv/bin/python scripts/bench_pill.py --size 256 --epochs 60 --folds 0,1,2,3,4  # GPU, the full benchmark

Arms: `anchor` (the script itself, same SIZE/EPOCHS), `classifier` (experiment=pill_resnet18) and `segdec`
(experiment=pill_segdec: defect map + decision, masks, synthetic defects). Each project arm trains through
`run_train`, the function behind `inspection train`, on a manifest whose test split is the anchor's fold k and
whose validation split is the next anchor fold (the project selects its best epoch there, so it trains on 3/5 of
the images where the anchor trains on 4/5). Scores: image AUROC on fold k's test images, escape at ≤ 5% overkill,
and for segdec the pixel AUROC on the defective test images that have masks. Writes
benchmarks/results/accuracy_pill_<size>px_<device>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from inspection.cli.compose import compose_train  # noqa: E402
from inspection.cli.hydra_entry import run_train  # noqa: E402
from inspection.data.importers import import_mvtec  # noqa: E402
from inspection.data.manifest import load_manifest, write_manifest  # noqa: E402
from inspection.evaluation.machine import device_tag, machine_info  # noqa: E402
from inspection.evaluation.metrics import auroc  # noqa: E402
from inspection.evaluation.predict import predict_files  # noqa: E402
from inspection.models.checkpoint import load_checkpoint  # noqa: E402
from inspection.training.crossval import escape_at_overkill  # noqa: E402

SHARED = REPO.parent / "shared"
ARMS = {"classifier": ["experiment=pill_resnet18"], "segdec": ["experiment=pill_segdec"]}


def anchor_folds(paths: list[str], kinds: list[str], k: int = 5) -> np.ndarray:
    """The anchor's fold per image: a seeded permutation within each defect type (its exact rule and order)."""
    order = np.argsort(paths)  # the anchor sorts full paths: test/ before train/
    kind = np.asarray(kinds)[order]
    rng, fold = np.random.default_rng(0), np.zeros(len(paths), int)
    for t in np.unique(kind):
        ids = rng.permutation(np.where(kind == t)[0])
        fold[ids] = np.arange(len(ids)) % k
    out = np.empty(len(paths), int)
    out[order] = fold
    return out


def run_anchor(size: int, epochs: int, out: Path, folds: list[int]) -> dict:
    """Run the anchor unchanged; stop it once the last wanted fold has printed its AUROC (its folds run in order),
    so a CPU run of fold 0 does not wait for the other four. All five folds: its own OOF summary too."""
    env = {**os.environ, "SIZE": str(size), "EPOCHS": str(epochs), "OUT": str(out),
           "PILL_ROOT": str(SHARED / "data" / "mvtec-pill")}
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, str(SHARED / "anchors" / "pill_supervised_anchor.py")], env=env,
                            stdout=subprocess.PIPE, text=True)
    res: dict = {}
    for line in proc.stdout:
        print("  anchor:", line.rstrip(), flush=True)
        hit = re.match(r"fold (\d+): AUROC ([0-9.]+)", line)
        if hit:
            res[f"fold{hit[1]}"] = {"auroc": float(hit[2]), "seconds_since_start": round(time.perf_counter() - t0, 1)}
            if int(hit[1]) == max(folds) and len(folds) < 5:
                proc.terminate()
                break
    proc.wait()
    if (out / "pill_anchor.json").is_file():
        res["all_folds"] = json.loads((out / "pill_anchor.json").read_text())
    res["wall_seconds"] = round(time.perf_counter() - t0, 1)
    return res


def pixel_auroc(records, rows, root: Path) -> float | None:
    """Pixel AUROC of the defect maps over the defective test images with masks (maps resized to the mask)."""
    scores, truth = [], []
    for rec, rel in zip(records, rows["meta_mask"], strict=True):
        if not rel or "defect_map" not in rec.meta:
            continue
        mask = cv2.imread(str(root / rel), cv2.IMREAD_GRAYSCALE) > 0
        m = cv2.resize(np.asarray(rec.meta["defect_map"], np.float32), mask.shape[::-1], interpolation=cv2.INTER_LINEAR)
        scores.append(m.ravel())
        truth.append(mask.ravel())
    return auroc(np.concatenate(truth), np.concatenate(scores)) if scores else None


def run_arm(name: str, manifest_csv: Path, size: int, epochs: int, work: Path) -> dict:
    cfg = compose_train([*ARMS[name], f"data.manifest={manifest_csv}", f"data.image_size={size}",
                         f"trainer.max_epochs={epochs}", "trainer.enable_progress_bar=false", "evaluate_splits=[]",
                         *(["trainer=gpu"] if _cuda() else [])])
    t0 = time.perf_counter()
    summary = run_train(cfg, out_dir=work / name, quiet=True)
    model = load_checkpoint(summary["checkpoint"])
    m = load_manifest(manifest_csv)
    test = m.split("test")
    recs = predict_files(model, [m.abspath(p) for p in test["path"]], list(test["label"]),
                         device="cuda" if _cuda() else "cpu")
    ok = list(m.ok_classes)
    p_ng = np.array([1 - sum(r.probs[model.class_names.index(c)] for c in ok) for r in recs])
    defective = ~test["label"].isin(ok).to_numpy()
    res = {"image_auroc": auroc(defective, p_ng), "at_5pct_overkill": escape_at_overkill(recs, model.class_names, ok),
           "fit_seconds": summary["fit_seconds"], "wall_seconds": round(time.perf_counter() - t0, 1)}
    if name == "segdec":
        res["pixel_auroc_masked_defects"] = pixel_auroc(recs, test, manifest_csv.parent)
    return res


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=96)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--folds", default="0", help="comma-separated anchor folds to run the project arms on")
    ap.add_argument("--arms", default="classifier,segdec")
    ap.add_argument("--no-anchor", action="store_true")
    a = ap.parse_args()
    info = machine_info()
    folds = [int(f) for f in a.folds.split(",")]
    result = {"size": a.size, "epochs": a.epochs, "folds": folds, "machine": info, "arms": {}}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if not a.no_anchor:
            result["anchor"] = run_anchor(a.size, a.epochs, work / "anchor", folds)
            write(result, a.size, info)
        m = import_mvtec(SHARED / "data" / "mvtec-pill", work / "pill", copy=True, binary=True)
        kinds = [Path(p).parent.name for p in m.rows["path"]]
        fold = anchor_folds([str(m.abspath(p)) for p in m.rows["path"]], kinds)
        for k in folds:
            rows = m.rows.assign(split=np.where(fold == k, "test", np.where(fold == (k + 1) % 5, "val", "train")))
            csv = write_manifest(m.with_rows(rows), work / "pill" / f"fold{k}" / "manifest.csv")
            for mask_dir in (work / "pill" / "masks",):  # masks live beside the import: link them per fold
                (csv.parent / "masks").symlink_to(mask_dir, target_is_directory=True)
            for arm in a.arms.split(","):
                r = run_arm(arm, csv, a.size, a.epochs, work / f"fold{k}")
                result["arms"].setdefault(arm, {})[f"fold{k}"] = r
                print(arm, f"fold{k}", json.dumps(r), flush=True)
                write(result, a.size, info)  # after every arm: a long CPU run keeps what it finished
    result["note"] = ("same test folds; the anchor trains on the other 4/5 and keeps its last epoch, the project "
                      "arms train on 3/5 and select on the next fold (their normal configuration)")
    for arm, by_fold in result["arms"].items():  # side by side with the anchor on the same folds
        ratios = [by_fold[f]["image_auroc"] / result["anchor"][f]["auroc"] for f in by_fold if f in result.get("anchor", {})]
        if ratios:
            result["arms"][arm]["auroc_ratio_to_anchor"] = round(float(np.mean(ratios)), 3)
    print(f"wrote {write(result, a.size, info)}")


def write(result: dict, size: int, info: dict) -> Path:
    out = REPO / "benchmarks" / "results" / f"accuracy_pill_{size}px_{device_tag(info)}.json"
    out.write_text(json.dumps(result, indent=2, default=float) + "\n")
    return out


if __name__ == "__main__":
    main()
