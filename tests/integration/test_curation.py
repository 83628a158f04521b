"""The data-centric loop end to end: simulate → audit → relabel → curate on synthetic data, a slice of real NEU,
and a class-folder import with a real multi-labeler CSV; label-issue detection finds injected errors."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from inspection.cli.curation_cmds import register
from inspection.cli.typed import to_dataclass
from inspection.curation.audit import AuditConfig, AuditResult, run_audit
from inspection.curation.curate import CurationConfig, curate
from inspection.curation.label_issues import Recipe, find_label_issues, out_of_fold_probs, trainval_rows
from inspection.curation.relabel import read_label_studio, read_labels_csv, relabel, simulated_labels
from inspection.curation.simulate import (
    GOLD_MANIFEST,
    HIDDEN_LABELS,
    V1_MANIFEST,
    LabelingConfig,
    simulate_campaign,
)
from inspection.data.importers import import_folder, import_mvtec, import_neu
from inspection.data.manifest import Manifest, load_manifest, write_manifest
from inspection.data.synth import generate_dataset

# Tiny and fast: 32 px, a ~100k-parameter CNN, 3 folds; one torch thread (fastest on a busy 2-core machine).
RECIPE = Recipe(image_size=32, max_epochs=15, batch_size=16, lr=6e-3, torch_threads=1)
KEY = ["path", "label", "split", "sha256"]


def _test_split(m: Manifest) -> pd.DataFrame:
    return m.rows.loc[m.rows["split"] == "test", KEY].sort_values("path").reset_index(drop=True)


def test_label_issues_find_injected_errors(tmp_path, capsys):
    gold = generate_dataset("steel", tmp_path / "gold", n_per_class=50, size=32, seed=1)
    rows = gold.rows.copy()
    rng = np.random.default_rng(0)
    tv = np.nonzero((rows["split"] != "test").to_numpy())[0]
    flipped = rng.choice(tv, int(0.15 * len(tv)), replace=False)
    for i in flipped:
        rows.loc[i, "label"] = rng.choice([c for c in gold.classes if c != rows.loc[i, "label"]])
    noisy = gold.with_rows(rows)
    probs = out_of_fold_probs(noisy, RECIPE, k=3, seed=0, work_dir=tmp_path / "oof")
    assert probs.shape == (len(tv), 6) and np.allclose(probs.sum(1), 1, atol=1e-4)
    assert "fold 3/3" in capsys.readouterr().out
    issues = find_label_issues(noisy, probs)
    truth, flagged = set(rows.loc[flipped, "path"]), set(issues.loc[issues["is_issue"], "path"])
    precision, recall = len(truth & flagged) / len(flagged), len(truth & flagged) / len(truth)
    assert precision >= 2 * 0.15 and recall >= 0.5, (precision, recall)  # base rate: 15%
    # The lowest self-confidence ranks first and is mostly wrong labels.
    top = issues.sort_values("rank").head(len(truth))["path"]
    assert len(set(top) & truth) / len(truth) >= 0.4
    again = out_of_fold_probs(noisy, RECIPE, k=3, seed=0, work_dir=tmp_path / "oof")
    assert np.array_equal(again, probs) and "cached" in capsys.readouterr().out


@pytest.fixture(scope="module")
def synth_audit(tmp_path_factory) -> AuditResult:
    root = tmp_path_factory.mktemp("loop")
    gold = generate_dataset("steel", root / "gold", n_per_class=50, size=32, seed=1)
    simulate_campaign(gold, LabelingConfig(seed=0), root / "campaign")
    return run_audit(root / "campaign" / V1_MANIFEST, root / "audit", AuditConfig(k=3, recipe=RECIPE), progress=False)


def test_simulated_campaign_shape(synth_audit):
    camp = synth_audit.manifest.image_root.parent
    gold, v1 = load_manifest(camp / GOLD_MANIFEST), synth_audit.manifest
    assert _test_split(gold).equals(_test_split(v1))
    rows = v1.rows
    bad = rows[rows["meta_bad_acquisition"] != ""]
    assert len(bad) == round(0.05 * (gold.rows["split"] != "test").sum())
    assert set(bad["split"]) <= {"train", "val"} and bad["path"].str.startswith("_bad_acquisitions/").all()
    assert (bad["meta_gold"] == gold.rows.set_index("path").loc[bad["meta_source"], "label"].to_numpy()).all()
    tv = rows[rows["split"] != "test"]
    assert (tv["labeler_l1"] == tv["label"]).all()  # v1 = labeler l1
    visible = (tv[["labeler_l2", "labeler_l3"]] != "").any(axis=1)
    assert 0 < visible.sum() <= 0.1 * len(tv) + 1  # the others only on the small overlap set
    hidden = pd.read_csv(camp / HIDDEN_LABELS, dtype=str, keep_default_na=False)
    assert len(hidden) == len(tv) and (hidden[["labeler_l2", "labeler_l3"]] != "").all().all()
    stats = json.loads((camp / "simulation.json").read_text())
    assert 0.15 < stats["v1_noise_rate"] < 0.5 and stats["labeler_noise_rates"]["l1"] > stats["labeler_noise_rates"]["l2"]
    assert (tv["meta_noisy"] == np.where(tv["label"] != tv["meta_gold"], "1", "0")).all()


def test_audit_outputs_and_score(synth_audit):
    out, s = synth_audit.out_dir, synth_audit.score
    for f in ("audit.json", "audit.md", "review_queue.csv", "review_queue.png", "defect_book.md", "label_issues.csv",
              "quality.csv", "agreement.json", "oof_probs.npy"):
        assert (out / f).is_file(), f
    assert "Rule: ____" in (out / "defect_book.md").read_text()
    assert len(synth_audit.queue) <= round(0.2 * s["n_train_val"])
    assert s["queue"]["precision"] >= 1.5 * s["base_rate"], s
    assert s["quality_flags"]["recall"] >= 0.8, s
    assert synth_audit.agreement is not None and -1 <= synth_audit.agreement.fleiss_kappa <= 1
    assert json.loads((out / "audit.json").read_text())["score"]["n_wrong"] == s["n_wrong"]


def test_relabel_and_curate_reduce_noise(synth_audit, tmp_path):
    m, camp = synth_audit.manifest, synth_audit.manifest.image_root.parent
    rel = relabel(m, synth_audit.queue, simulated_labels(camp / HIDDEN_LABELS, m), tmp_path / "relabel")
    c = rel.consensus
    assert set(c["path"]) == set(synth_audit.queue["path"])  # extra labels for queued items only
    assert set(c["status"]) <= {"agreed", "ambiguous", "rejected"}
    assert (c.loc[c["status"] == "ambiguous", "consensus"] == "").all()  # ties are reported, never resolved
    assert (tmp_path / "relabel" / "consensus.csv").is_file() and rel.summary["queued"] == len(c)
    res = curate(m, c, CurationConfig(), tmp_path / "v2", quality=synth_audit.quality)
    v2 = load_manifest(res.manifest_csv)
    assert _test_split(v2).equals(_test_split(m))
    s = res.summary
    assert s["noise_after"] < s["noise_before"] and s["removed"] > 0 and s["relabelled"] > 0
    assert s["bad_acquisitions_left"] <= 0.5 * (m.rows["meta_bad_acquisition"] != "").sum()
    log = json.loads((tmp_path / "v2" / "changelog.json").read_text())
    assert len(log["changes"]) == s["relabelled"] + s["removed"]
    assert "relabelled" in (tmp_path / "v2" / "changelog.md").read_text()


def test_cli_loop(synth_audit, tmp_path):
    app = typer.Typer()
    register(app)
    run = CliRunner().invoke
    gold = synth_audit.manifest.image_root.parent / GOLD_MANIFEST
    r = run(app, ["simulate-labels", str(gold), "--out", str(tmp_path / "c"), "--seed", "0",
                  "bad_acquisition_rate=0.1", "overlap_rate=0.2"])
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "c/simulation.json").read_text())["config"]["bad_acquisition_rate"] == 0.1
    v1 = tmp_path / "c" / V1_MANIFEST
    n_tv = len(trainval_rows(load_manifest(v1)))
    np.save(tmp_path / "p.npy", np.full((n_tv, 6), 1 / 6))
    r = run(app, ["audit", str(v1), "--out", str(tmp_path / "a"), "--probs", str(tmp_path / "p.npy"),
                  "--budget", "0.1", "audit.quality.near_dup_hamming=0"])
    assert r.exit_code == 0, r.output
    r = run(app, ["relabel", str(v1), "--queue", str(tmp_path / "a/review_queue.csv"), "--labels",
                  str(tmp_path / "c" / HIDDEN_LABELS), "--out", str(tmp_path / "r")])
    assert r.exit_code == 0, r.output
    r = run(app, ["curate", str(v1), "--consensus", str(tmp_path / "r/consensus.csv"), "--quality",
                  str(tmp_path / "a/quality.csv"), "--out", str(tmp_path / "c"), "--priority", "crazing,patches"])
    assert r.exit_code == 0, r.output
    assert _test_split(load_manifest(tmp_path / "c/manifest_v2.csv")).equals(_test_split(load_manifest(v1)))
    bad = run(app, ["audit", str(v1), "--out", str(tmp_path / "x"), "audit.nope=1"])
    assert bad.exit_code == 2 and "nope" in bad.output
    bad = run(app, ["audit", str(v1), "--out", str(tmp_path / "x"), "audit.k=many"])
    assert bad.exit_code == 2 and "audit.k" in bad.output
    bad = run(app, ["relabel", str(tmp_path / "missing.csv"), "--queue", "q.csv", "--labels", "l.csv", "--out", "o"])
    assert bad.exit_code == 2 and "manifest not found" in bad.output


def test_default_configs_build_the_dataclasses():
    from inspection.cli.compose import compose_group as _compose

    lab = to_dataclass(LabelingConfig, _compose("labeling", ["n_labelers=4", "pair_noise=[0.1]"]))
    assert lab.n_labelers == 4 and lab.labeler_names() == ["l1", "l2", "l3", "l4"]
    cur = _compose("curation", ["audit.k=3"])
    audit = to_dataclass(AuditConfig, cur["audit"])
    assert audit.k == 3 and isinstance(audit.recipe, Recipe) and audit.recipe == Recipe()
    assert to_dataclass(CurationConfig, cur["curate"]) == CurationConfig()
    assert cur["relabel"]["method"] == "auto"


def test_real_neu_slice(neu_dir, tmp_path):
    """Simulated labelling on real NEU images (a 40-per-class slice), audited and curated; test split untouched."""
    full = import_neu(neu_dir, tmp_path / "neu", copy=False)
    rows = full.rows
    keep = rows.sort_values("path").groupby("label").head(40)
    multi = rows[rows["meta_multi_defect"] == "1"].head(12)  # make sure ambiguous images are in the slice
    gold = full.with_rows(pd.concat([keep, multi]).drop_duplicates("path").sort_values("path"))
    write_manifest(gold, tmp_path / "slice" / "manifest.csv")
    prio = ["crazing", "scratches", "pitted_surface", "patches", "inclusion", "rolled-in_scale"]
    simulate_campaign(gold, LabelingConfig(seed=0), tmp_path / "camp")
    v1 = load_manifest(tmp_path / "camp" / V1_MANIFEST)
    tv = v1.rows[v1.rows["split"] != "test"]
    amb = tv[tv["meta_multi_defect"] == "1"]
    assert len(amb) and (amb["labeler_l1"] == amb["meta_box_classes"].str.split("|").str[0]).all()  # "first"
    a = run_audit(tmp_path / "camp" / V1_MANIFEST, tmp_path / "audit", AuditConfig(k=3, recipe=RECIPE),
                  progress=False)
    assert a.score["queue"]["precision"] > a.score["base_rate"], a.score
    rel = relabel(a.manifest, a.queue, simulated_labels(tmp_path / "camp" / HIDDEN_LABELS, a.manifest),
                  tmp_path / "rel")
    res = curate(a.manifest, rel.consensus, CurationConfig(ambiguous_priority=prio), tmp_path / "camp",
                 quality=a.quality)
    v2 = load_manifest(res.manifest_csv)
    assert _test_split(v2).equals(_test_split(gold)) and _test_split(v1).equals(_test_split(gold))
    amb2 = v2.rows[(v2.rows["meta_multi_defect"] == "1") & (v2.rows["split"] != "test")]
    assert (amb2["label"] == amb2["meta_gold"]).all()  # NEU's file-name convention is the priority rule
    assert res.summary["noise_after"] < res.summary["noise_before"]


def test_cli_loop_on_real_pill_images(pill_dir, tmp_path):
    """simulate-labels → audit (real out-of-fold training) → relabel → curate through the CLI on MVTec pill:
    every defect image plus 60 good ones; the OK/NG task survives each step and the test split is untouched."""
    full = import_mvtec(pill_dir, tmp_path / "pill", copy=False)
    rows = full.rows
    part = pd.concat([rows[rows["label"] != "good"], rows[rows["label"] == "good"].sort_values("path").head(60)])
    gold = full.with_rows(part.sort_values("path"))
    write_manifest(gold, tmp_path / "slice" / "manifest.csv")
    app = typer.Typer()
    register(app)
    run = CliRunner().invoke
    r = run(app, ["simulate-labels", str(tmp_path / "slice/manifest.csv"), "--out", str(tmp_path / "c"),
                  "--seed", "0"])
    assert r.exit_code == 0, r.output
    v1 = tmp_path / "c" / V1_MANIFEST
    r = run(app, ["audit", str(v1), "--out", str(tmp_path / "a"), "audit.k=2", "audit.recipe.image_size=32",
                  "audit.recipe.max_epochs=2", "audit.recipe.torch_threads=1"])
    assert r.exit_code == 0, r.output
    queue = pd.read_csv(tmp_path / "a/review_queue.csv")
    assert 0 < len(queue) <= 0.2 * len(trainval_rows(load_manifest(v1))) + 1
    assert (tmp_path / "a/defect_book.md").is_file() and (tmp_path / "a/review_queue.png").is_file()
    r = run(app, ["relabel", str(v1), "--queue", str(tmp_path / "a/review_queue.csv"), "--labels",
                  str(tmp_path / "c" / HIDDEN_LABELS), "--out", str(tmp_path / "r")])
    assert r.exit_code == 0, r.output
    r = run(app, ["curate", str(v1), "--consensus", str(tmp_path / "r/consensus.csv"), "--quality",
                  str(tmp_path / "a/quality.csv"), "--out", str(tmp_path / "c")])
    assert r.exit_code == 0, r.output
    v2 = load_manifest(tmp_path / "c/manifest_v2.csv")
    assert v2.ok_classes == ["good"] and v2.task == "okng" and set(v2.classes) == set(full.classes)
    assert _test_split(v2).equals(_test_split(gold))
    assert (tmp_path / "c/changelog.md").is_file()


def _class_folders(root: Path) -> Path:
    src = root / "src"
    for label, imgs in {"good": 12, "crack": 12, "spot": 12}.items():
        (src / label).mkdir(parents=True)
        for i in range(imgs):
            img = np.full((32, 32), 120, np.uint8)
            rng = np.random.default_rng([i, len(label)])
            img = (img + rng.normal(0, 8, img.shape)).clip(0, 255).astype(np.uint8)
            if label == "crack":
                cv2.line(img, (2, 2 + i), (29, 20), 30, 2)
            if label == "spot":
                cv2.circle(img, (10 + i, 16), 4, 240, -1)
            cv2.imwrite(str(src / label / f"{label}_{i}.png"), img)
    return src


def test_folder_import_with_real_multilabeler_csv(tmp_path):
    src = _class_folders(tmp_path)
    lines = ["path,ann,bob,cat"]
    for label in ("good", "crack", "spot"):
        for i in range(12):
            other = "spot" if label == "crack" else "crack"
            bob = other if i % 4 == 0 else label  # bob disagrees on a quarter of the images
            cat = "" if i % 2 else label  # cat labelled every other image only (gaps)
            lines.append(f"{label}/{label}_{i}.png,{label},{bob},{cat}")
    (tmp_path / "labels.csv").write_text("\n".join(lines) + "\n")
    m = import_folder(src, tmp_path / "ds", labels_csv=tmp_path / "labels.csv", ok_classes=["good"])
    assert m.labeler_columns() == ["labeler_ann", "labeler_bob", "labeler_cat"]
    tv = trainval_rows(m)
    probs = np.full((len(tv), 3), 0.1)
    probs[np.arange(len(tv)), tv["label"].map(m.classes.index)] = 0.8
    a = run_audit(tmp_path / "ds" / "manifest.csv", tmp_path / "audit", AuditConfig(), probs=probs, progress=False)
    assert a.score is None and a.agreement is not None
    assert 0 < a.agreement.fleiss_kappa < 1 and a.agreement.per_labeler["bob"]["accuracy_vs_consensus"] < 1
    assert a.queue["reasons"].str.contains("disagreement").any()
    queued = a.queue["path"].tolist()
    # Extra labels: a filled CSV for some queued images, and a Label Studio export for the others.
    half = len(queued) // 2
    pd.DataFrame({"path": queued[:half], "dan": tv.set_index("path").loc[queued[:half], "label"].to_numpy()}) \
        .to_csv(tmp_path / "extra.csv", index=False)
    tasks = [{"data": {"image": f"/data/upload/1/1a2b3c4d-{Path(p).name}"},
              "annotations": [{"completed_by": 7, "result": [{"value": {"choices": ["crack"]}}]},
                              {"completed_by": {"email": "eve@plant.org"},
                               "result": [{"value": {"choices": ["reject"]}}]}]} for p in queued[half:]]
    (tmp_path / "ls.json").write_text(json.dumps(tasks))
    extra = pd.concat([read_labels_csv(tmp_path / "extra.csv", m), read_label_studio(tmp_path / "ls.json", m)])
    assert {"labeler_dan", "labeler_ls7", "labeler_eve"} <= set(extra.columns)
    rel = relabel(m, a.queue, extra.fillna(""), tmp_path / "rel")
    assert set(rel.consensus["path"]) == set(queued) and rel.summary["with_extra_labels"] == len(queued)
    res = curate(m, rel.consensus, CurationConfig(), tmp_path / "v2", quality=a.quality)
    assert _test_split(load_manifest(res.manifest_csv)).equals(_test_split(m))


def test_review_files_that_would_lose_labels_are_refused(tmp_path):
    """Rows that match no image, and exports with no labels at all, are errors; tool capitalisation is not."""
    from inspection.core.errors import ManifestError
    from inspection.curation.relabel import load_extra_labels

    m = import_folder(_class_folders(tmp_path), tmp_path / "ds")
    path = m.rows["path"].iloc[0]
    (tmp_path / "case.csv").write_text(f"path,dan\n{path.upper()},crack\n{path},crack\n")
    with pytest.raises(ManifestError, match=r"case\.csv: 1 path\(s\) match no manifest path"):
        load_extra_labels(tmp_path / "case.csv", m)
    (tmp_path / "empty.csv").write_text("path,dan\n")
    (tmp_path / "empty.json").write_text("[]")
    for name in ("empty.csv", "empty.json"):
        with pytest.raises(ManifestError, match="holds no labels"):
            load_extra_labels(tmp_path / name, m)
    tasks = [{"data": {"image": f"/data/{path}"}, "annotations": [{"completed_by": 3,
              "result": [{"value": {"choices": ["Crack"]}}]}]}]
    (tmp_path / "ls.json").write_text(json.dumps(tasks))
    assert load_extra_labels(tmp_path / "ls.json", m).loc[path, "labeler_ls3"] == "crack"


def test_confusable_pairs_from_a_confusion_matrix(tmp_path):
    from inspection.curation.simulate import confusable_pairs

    cm = np.array([[50, 9, 1, 0], [7, 50, 0, 2], [0, 1, 50, 3], [0, 0, 4, 50]])
    assert confusable_pairs(cm, ["a", "b", "c", "d"], 3) == [("a", "b"), ("c", "d")]  # disjoint, most confused
    gold = generate_dataset("steel", tmp_path / "g", n_per_class=6, size=32, seed=0)
    with pytest.raises(ValueError, match="pairs of classes"):
        simulate_campaign(gold, LabelingConfig(confusable_pairs=[["crazing", "nope"]]), tmp_path / "c")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        LabelingConfig(bias_rate=1.5)
