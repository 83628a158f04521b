"""A simulated labelling campaign on real images: K labelers with realistic confusions, and bad acquisitions.

The images and their gold labels are real (the dataset's own labels); only the labelling process is simulated,
so that an audit can be scored against gold. Writes into `out_dir`:
  manifest_gold.csv, manifest_v1.csv, dataset.json  (one shared image root: out_dir/images)
  hidden_labels.csv  every labeler's answer for every train/val image, read only by the relabel simulator
  simulation.json    the configuration, derived confusable pairs and noise statistics
The test split is copied unchanged (path, label, split, sha256): curation and training never see it noised.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from inspection.core.errors import ConfigError
from inspection.core.files import atomic_write_text, file_sha256
from inspection.core.image import read_image
from inspection.curation.consensus import REJECT
from inspection.data.manifest import LABELER_PREFIX, Manifest, write_manifest

V1_MANIFEST, GOLD_MANIFEST, HIDDEN_LABELS = "manifest_v1.csv", "manifest_gold.csv", "hidden_labels.csv"
BAD_DIR = "_bad_acquisitions"  # inside the image root: manifests may not point outside it
BAD_KINDS = ("blur", "underexposed", "overexposed", "cutoff")


@dataclass
class LabelingConfig:
    """How the simulated labelers behave (conf/labeling/default.yaml)."""

    n_labelers: int = 3
    names: list[str] | None = None  # default l1..lK → columns labeler_l1...
    pair_noise: list[float] = field(default_factory=lambda: [0.2, 0.1, 0.1])  # per labeler, cycled
    other_noise: float = 0.02  # any-class slips, per labeler
    confusable_pairs: list[list[str]] | None = None  # None: from the confusion matrix given, else from the data
    n_pairs: int = 3
    biased_labeler: int | None = 0  # index of the labeler who systematically calls bias[0] bias[1]
    bias: list | str | None = None  # [A, B], [[A, B], [C, D]], "all" (every confusable pair); None: the first
    bias_rate: float = 0.4
    # The private rule fires only on faint defects (manifest column meta_severity <= this): where a labeler is
    # unsure, she writes the look-alike. 1.0 (or no severity column): on every image of the class.
    bias_max_severity: float = 1.0
    ambiguous_rules: list[str] = field(default_factory=lambda: ["first", "last", "random"])  # per labeler
    overlap_rate: float = 0.1  # share of train/val images every labeler labelled in v1 (for agreement)
    bad_acquisition_rate: float = 0.05
    bad_kinds: list[str] = field(default_factory=lambda: list(BAD_KINDS))
    reject_bad_rate: float = 0.8  # asked again, a labeler calls a bad acquisition "unusable" this often
    v1_labeler: int = 0
    seed: int = 0

    def __post_init__(self) -> None:
        rates = {"other_noise": self.other_noise, "bias_rate": self.bias_rate,
                 "bias_max_severity": self.bias_max_severity, "overlap_rate": self.overlap_rate,
                 "bad_acquisition_rate": self.bad_acquisition_rate, "reject_bad_rate": self.reject_bad_rate}
        rates |= {f"pair_noise[{i}]": r for i, r in enumerate(self.pair_noise)}
        bad = {k: v for k, v in rates.items() if not 0 <= v <= 1}
        if bad or not self.pair_noise or not self.ambiguous_rules:
            raise ConfigError(f"rates must lie in [0, 1] and pair_noise/ambiguous_rules be non-empty: {bad}")
        if set(self.ambiguous_rules) - {"first", "last", "random"}:
            raise ConfigError(f"ambiguous_rules must be first/last/random, got {self.ambiguous_rules}")
        if set(self.bad_kinds) - set(BAD_KINDS) or not self.bad_kinds:
            raise ConfigError(f"bad_kinds must be a non-empty subset of {list(BAD_KINDS)}, got {self.bad_kinds}")

    def labeler_names(self) -> list[str]:
        """Names of the K labelers (validated)."""
        names = list(self.names) if self.names else [f"l{i + 1}" for i in range(self.n_labelers)]
        if len(names) != self.n_labelers or len(set(names)) != len(names):
            raise ConfigError(f"need {self.n_labelers} distinct labeler names, got {names}")
        return names


def confusable_pairs(confusion: np.ndarray, classes: list[str], n_pairs: int) -> list[tuple[str, str]]:
    """The n most-confused disjoint class pairs of a confusion matrix (rows: true, columns: predicted)."""
    cm = np.asarray(confusion, float)
    rates = cm / np.maximum(cm.sum(1, keepdims=True), 1)  # row-normalised: big classes do not dominate
    sym = rates + rates.T
    np.fill_diagonal(sym, -1)
    pairs, used = [], set()
    for flat in np.argsort(-sym, axis=None):
        i, j = np.unravel_index(flat, sym.shape)
        if len(pairs) == n_pairs or sym[i, j] <= 0:
            break
        if i < j and i not in used and j not in used:
            pairs.append((classes[i], classes[j]))
            used |= {i, j}
    return pairs


def _texture_features(img: np.ndarray) -> np.ndarray:
    g = cv2.resize(img[..., 0] if img.ndim == 3 else img, (64, 64), interpolation=cv2.INTER_AREA).astype(np.float32)
    gx, gy = cv2.Sobel(g, cv2.CV_32F, 1, 0), cv2.Sobel(g, cv2.CV_32F, 0, 1)
    hist = np.histogram(g, bins=8, range=(0, 256))[0] / g.size
    return np.array([g.mean(), g.std(), np.log(cv2.Laplacian(g, cv2.CV_32F).var() + 1), np.abs(gx).mean(),
                     np.abs(gy).mean(), *hist], np.float32)


def centroid_confusion(gold: Manifest) -> np.ndarray:
    """Confusion of a nearest-centroid classifier on simple texture features: which classes look alike."""
    rows = gold.rows[gold.rows["split"] != "test"]
    feats = np.stack([_texture_features(read_image(gold.abspath(p), 1)) for p in rows["path"]])
    feats = (feats - feats.mean(0)) / (feats.std(0) + 1e-6)
    y = rows["label"].map({c: i for i, c in enumerate(gold.classes)}).to_numpy()
    cents = np.stack([feats[y == k].mean(0) if (y == k).any() else np.full(feats.shape[1], np.inf)
                      for k in range(len(gold.classes))])
    pred = np.argmin(((feats[:, None] - cents[None]) ** 2).sum(-1), 1)
    cm = np.zeros((len(gold.classes),) * 2, np.int64)
    np.add.at(cm, (y, pred), 1)
    return cm


def degrade_image(img: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    """A bad acquisition of a real uint8 image: defocus blur, under/over-exposure, or a frame cut off."""
    h, w = img.shape[:2]
    f = img.astype(np.float32)
    if kind == "blur":
        sigma = max(1.2, rng.uniform(0.02, 0.035) * min(h, w))
        out = cv2.GaussianBlur(f, (0, 0), sigma)
    elif kind == "underexposed":  # the brightest pixels end at 20-40 grey levels, whatever the scene
        out = f * (rng.uniform(20, 40) / max(float(np.percentile(f, 99)), 1.0))
    elif kind == "overexposed":  # 40-70% of the pixels blown out to white
        out = f * (255.0 / max(float(np.percentile(f, 100 * (1 - rng.uniform(0.4, 0.7)))), 1.0))
    elif kind == "cutoff":
        out = f.copy()
        frac = rng.uniform(0.35, 0.55)
        side = int(rng.integers(4))
        bh, bw = int(round(frac * h)), int(round(frac * w))
        region = [(slice(0, bh), slice(None)), (slice(h - bh, h), slice(None)),
                  (slice(None), slice(0, bw)), (slice(None), slice(w - bw, w))][side]
        out[region] = 0.0
    else:
        raise ConfigError(f"unknown bad acquisition kind {kind!r}; valid: {list(BAD_KINDS)}")
    return np.clip(np.rint(out), 0, 255).astype(np.uint8).reshape(img.shape)


def _labeler_answer(k: int, gold: str, row: pd.Series, cfg: LabelingConfig, partner: dict[str, str],
                    bias: dict[str, str], classes: list[str], rng: np.random.Generator) -> str:
    """What labeler k writes for an image whose true class is `gold`."""
    boxes = [c for c in str(row.get("meta_box_classes", "")).split("|") if c in classes]
    if str(row.get("meta_multi_defect", "")) == "1" and len(boxes) > 1:
        # Genuinely ambiguous: each labeler follows a private rule; none of them is written down.
        rule = cfg.ambiguous_rules[k % len(cfg.ambiguous_rules)]
        if rule == "first":
            return sorted(boxes)[0]
        if rule == "last":
            return sorted(boxes)[-1]
        return str(rng.choice(sorted(boxes)))
    if k == cfg.biased_labeler and gold in bias and _severity(row) <= cfg.bias_max_severity \
            and rng.random() < cfg.bias_rate:
        return bias[gold]
    if gold in partner and rng.random() < cfg.pair_noise[k % len(cfg.pair_noise)]:
        return partner[gold]
    if rng.random() < cfg.other_noise:
        return str(rng.choice([c for c in classes if c != gold]))
    return gold


def _severity(row: pd.Series) -> float:
    """The image's defect strength where the manifest records one (synthetic sets), else 0 (the rule applies)."""
    try:
        return float(row.get("meta_severity", 0.0))
    except (TypeError, ValueError):
        return 0.0


def _bias_pairs(bias, pairs: list[list[str]], classes: list[str]) -> list[list[str]]:
    """The biased labeler's rule as [from, to] pairs: None → the first confusable pair, "all" → every one."""
    if bias is None:
        out = pairs[:1]
    elif bias == "all":
        out = pairs
    elif isinstance(bias, (list, tuple)) and len(bias) == 2 and all(isinstance(c, str) for c in bias):
        out = [list(bias)]
    elif isinstance(bias, (list, tuple)) and all(isinstance(p, (list, tuple)) and len(p) == 2 for p in bias):
        out = [list(p) for p in bias]
    else:
        raise ConfigError(f"bias must be [A, B], a list of [A, B] pairs, 'all' or null; got {bias!r}")
    bad = [c for p in out for c in p if c not in classes]
    if bad:
        raise ConfigError(f"bias {out} names classes outside {classes}: {bad}")
    return out


def _mirror_images(gold: Manifest, root: Path) -> None:
    """Gold images under the campaign's own image root, same relative paths (hard link, else copy)."""
    if gold.image_root.resolve() == root.resolve():
        return
    for rel in gold.rows["path"]:
        src, dst = gold.abspath(rel), root / rel
        if dst.is_file() and dst.stat().st_size == src.stat().st_size:
            continue  # resumed run
        dst.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(src, dst)
        except OSError:  # other file system, or a read-only source we do not own
            shutil.copyfile(src, dst)


def _resolve_pairs(gold: Manifest, cfg: LabelingConfig, confusion: np.ndarray | None) -> list[list[str]]:
    if confusion is not None:
        return [list(p) for p in confusable_pairs(confusion, gold.classes, cfg.n_pairs)]
    if cfg.confusable_pairs:
        bad = [c for p in cfg.confusable_pairs for c in p if c not in gold.classes]
        if bad or any(len(p) != 2 for p in cfg.confusable_pairs):
            raise ConfigError(f"confusable_pairs must be pairs of classes {gold.classes}; got {cfg.confusable_pairs}")
        return [list(p) for p in cfg.confusable_pairs]
    declared = gold.info.get("lookalike_pairs")  # a synthetic set names the classes it draws alike
    if declared and all(c in gold.classes for p in declared for c in p):
        return [list(p) for p in declared]
    return [list(p) for p in confusable_pairs(centroid_confusion(gold), gold.classes, cfg.n_pairs)]


def simulate_campaign(gold: Manifest, cfg: LabelingConfig, out_dir: str | Path,
                      confusion: np.ndarray | None = None) -> Manifest:
    """Simulate K labelers + bad acquisitions on a gold manifest → the v1 manifest (also written to out_dir)."""
    out = Path(out_dir)
    names = cfg.labeler_names()
    if not 0 <= cfg.v1_labeler < cfg.n_labelers:
        raise ConfigError(f"v1_labeler {cfg.v1_labeler} is not one of the {cfg.n_labelers} labelers")
    rng = np.random.default_rng(cfg.seed)
    pairs = _resolve_pairs(gold, cfg, confusion)
    partner = {a: b for a, b in pairs} | {b: a for a, b in pairs}
    bias_pairs = _bias_pairs(cfg.bias, pairs, list(gold.classes)) if cfg.biased_labeler is not None else []
    bias = {a: b for a, b in bias_pairs}
    cfg = LabelingConfig(**{**asdict(cfg), "bias": bias_pairs})
    root = out / "images"
    _mirror_images(gold, root)
    base = gold.rows.drop(columns=gold.labeler_columns()).copy()  # the campaign defines who labelled what
    base["meta_gold"], base["meta_bad_acquisition"], base["meta_source"] = base["label"], "", ""

    # Bad acquisitions: degraded copies of real train/val images, each with an arbitrary label.
    pool = base.index[base["split"] != "test"].to_numpy()
    n_bad = int(round(cfg.bad_acquisition_rate * len(pool)))
    bad_rows = []
    for i, src_i in enumerate(rng.choice(pool, size=min(n_bad, len(pool)), replace=False)):
        src = base.loc[src_i]
        kind = cfg.bad_kinds[int(rng.integers(len(cfg.bad_kinds)))]
        img = read_image(gold.abspath(src["path"]), channels=3)
        bad = degrade_image(img, kind, rng)
        rel = f"{BAD_DIR}/{kind}/{i:04d}_{Path(src['path']).stem}.png"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        gray = bool((img[..., 0] == img[..., 1]).all() and (img[..., 1] == img[..., 2]).all())
        cv2.imwrite(str(root / rel), bad[..., 0] if gray else cv2.cvtColor(bad, cv2.COLOR_RGB2BGR))
        # A new acquisition: the source's box annotations do not describe it (other metadata, e.g. line, does).
        boxes = {c: "" for c in base.columns if c.startswith("meta_box") or c == "meta_multi_defect"}
        bad_rows.append({**src.to_dict(), **boxes, "path": rel, "sha256": file_sha256(root / rel),
                         "meta_bad_acquisition": kind, "meta_source": src["path"]})
    rows = pd.concat([base, pd.DataFrame(bad_rows, columns=base.columns)], ignore_index=True)

    # Every labeler answers for every train/val image; v1 keeps one labeler's answers (+ a small overlap set).
    trainval = rows.index[rows["split"] != "test"]
    answers = pd.DataFrame("", index=rows.index, columns=[LABELER_PREFIX + n for n in names])
    for i in trainval:
        r = rows.loc[i]
        for k, n in enumerate(names):
            if r["meta_bad_acquisition"]:
                ask = k != cfg.v1_labeler and rng.random() < cfg.reject_bad_rate
                answers.at[i, LABELER_PREFIX + n] = REJECT if ask else str(rng.choice(gold.classes))
            else:
                answers.at[i, LABELER_PREFIX + n] = _labeler_answer(k, r["meta_gold"], r, cfg, partner, bias,
                                                                    gold.classes, rng)
    v1_col = LABELER_PREFIX + names[cfg.v1_labeler]
    rows.loc[trainval, "label"] = answers.loc[trainval, v1_col]
    visible = pd.DataFrame("", index=rows.index, columns=answers.columns)
    visible.loc[trainval, v1_col] = answers.loc[trainval, v1_col]
    clean_tv = trainval[rows.loc[trainval, "meta_bad_acquisition"] == ""]
    overlap = rng.choice(clean_tv, size=int(round(cfg.overlap_rate * len(clean_tv))), replace=False)
    visible.loc[overlap] = answers.loc[overlap]
    rows = pd.concat([rows, visible], axis=1)
    rows["meta_noisy"] = np.where(rows["label"] != rows["meta_gold"], "1", "0")
    rows["meta_overlap"] = np.where(rows.index.isin(overlap), "1", "0")

    info = {**gold.info, "campaign": "simulated labelling on real images"}
    gold_m = Manifest(gold.name, list(gold.classes), gold.rows.copy(), root, list(gold.ok_classes), info)
    v1 = Manifest(gold.name, list(gold.classes), rows, root, list(gold.ok_classes), info)
    write_manifest(gold_m, out / GOLD_MANIFEST)
    write_manifest(v1, out / V1_MANIFEST)
    hidden = pd.concat([rows.loc[trainval, ["path"]], answers.loc[trainval]], axis=1)
    atomic_write_text(out / HIDDEN_LABELS, hidden.to_csv(index=False))
    tv = rows.loc[trainval]
    stats = {
        "config": asdict(cfg), "confusable_pairs": pairs, "labelers": names, "v1_labeler": names[cfg.v1_labeler],
        "n_train_val": int(len(tv)), "n_bad_acquisitions": len(bad_rows), "n_overlap": int(len(overlap)),
        "v1_noise_rate": float((tv["label"] != tv["meta_gold"]).mean()),
        "labeler_noise_rates": {n: float((answers.loc[clean_tv, LABELER_PREFIX + n] != rows.loc[clean_tv, "meta_gold"])
                                         .mean()) for n in names},
    }
    atomic_write_text(out / "simulation.json", json.dumps(stats, indent=2) + "\n")
    return v1
