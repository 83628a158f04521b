"""The demo's simulated campaign, by design (docs/compare.md): l1's unwritten rule on faint look-alikes, the demo
split, the pipeline and `compare=demo` describing the same campaign, and compare reading label sets made earlier."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from inspection.curation.simulate import LabelingConfig, simulate_campaign
from inspection.data.synth import generate_dataset

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def campaign(tmp_path_factory):
    root = tmp_path_factory.mktemp("camp")
    gold = generate_dataset("steel", root / "gold", n_per_class=60, size=32, seed=4)
    cfg = LabelingConfig(pair_noise=[0.0, 0.1, 0.1], other_noise=0.0, bias="all", bias_rate=0.65,
                         bias_max_severity=0.55, bad_acquisition_rate=0.0, seed=3)
    return simulate_campaign(gold, cfg, root / "c"), root


def test_the_rule_fires_only_on_faint_images_of_the_first_class_of_each_pair(campaign):
    v1, root = campaign
    tv = v1.rows[v1.rows["split"] != "test"]
    sev = tv["meta_severity"].astype(float)
    wrong = tv[tv["label"] != tv["meta_gold"]]
    # l1 has no random slips here: every wrong v1 label is the rule, in its direction, on a faint image
    assert len(wrong) > 0
    assert set(zip(wrong["meta_gold"], wrong["label"])) <= {("crazing", "rolled-in_scale"),
                                                           ("inclusion", "pitted_surface")}
    assert (wrong["meta_severity"].astype(float) <= 0.55).all()
    faint = tv[tv["meta_gold"].isin(["crazing", "inclusion"]) & (sev <= 0.55)]
    rate = (faint["label"] != faint["meta_gold"]).mean()
    assert 0.45 < rate < 0.85, rate  # 0.65 drawn per image
    stats = json.loads((root / "c" / "simulation.json").read_text())
    assert stats["config"]["bias"] == [["crazing", "rolled-in_scale"], ["inclusion", "pitted_surface"]]
    # the other labelers follow the written rule: their answers on the same faint images are mostly right
    hidden = pd.read_csv(root / "c" / "hidden_labels.csv").set_index("path").loc[faint["path"]]
    assert (hidden["labeler_l2"].to_numpy() == faint["meta_gold"].to_numpy()).mean() > 0.8


def test_a_bias_naming_unknown_classes_or_malformed_is_refused(tmp_path):
    gold = generate_dataset("steel", tmp_path / "g", n_per_class=6, size=32, seed=0)
    with pytest.raises(ValueError, match="outside"):
        simulate_campaign(gold, LabelingConfig(bias=["crazing", "rust"]), tmp_path / "a")
    with pytest.raises(ValueError, match="bias must be"):
        simulate_campaign(gold, LabelingConfig(bias="some"), tmp_path / "b")
    with pytest.raises(ValueError, match="bias_max_severity"):
        LabelingConfig(bias_max_severity=1.5)


def test_without_a_severity_column_the_rule_applies_to_every_image(tmp_path):
    gold = generate_dataset("steel", tmp_path / "g", n_per_class=30, size=32, seed=1)
    gold = gold.with_rows(gold.rows.drop(columns=["meta_severity"]))
    v1 = simulate_campaign(gold, LabelingConfig(pair_noise=[0.0], other_noise=0.0, bias=["patches", "scratches"],
                                                bias_rate=1.0, bias_max_severity=0.1,
                                                bad_acquisition_rate=0.0), tmp_path / "c")
    tv = v1.rows[(v1.rows["split"] != "test") & (v1.rows["meta_gold"] == "patches")]
    assert (tv["label"] == "scratches").all()


def _yaml(path: str) -> dict:
    return yaml.safe_load((REPO / path).read_text())


def test_the_pipeline_runs_the_campaign_compare_demo_describes():
    """`make demo` (conf/pipeline.yaml) and `inspection compare compare=demo` / scripts/bench_demo.py: one design."""
    pipe, demo = _yaml("conf/pipeline.yaml"), _yaml("conf/compare/demo.yaml")
    assert pipe["labeling"] == demo["labeling"]
    audit = pipe["curation"]["audit"]
    assert audit["queue"] == {"budget": demo["relabel_budget"], **demo["audit"]["queue"]}
    assert {k: v for k, v in audit.items() if k != "queue"} == {k: v for k, v in demo["audit"].items() if k != "queue"}
    assert pipe["trainer"]["max_epochs"] == 15 and "trainer.max_epochs=15" in demo["recipe"]
    data = _yaml("conf/data/synth_steel.yaml")
    assert f"data.image_size={data['image_size']}" in demo["recipe"]


def test_demo_split_fractions(tmp_path):
    m = generate_dataset("steel", tmp_path / "d", n_per_class=16, size=32, seed=0, fractions=(0.375, 0.125, 0.5))
    counts = m.rows.groupby(["label", "split"]).size().unstack()
    assert (counts["train"] == 6).all() and (counts["val"] == 2).all() and (counts["test"] == 8).all()


def test_prepare_refuses_bad_fractions(tmp_path, monkeypatch):
    from omegaconf import OmegaConf

    from inspection.cli.prepare_data import prepare_dataset
    from inspection.core.errors import ConfigError

    data = OmegaConf.create({"name": "s", "manifest": str(tmp_path / "s/manifest.csv"),
                             "prepare": {"kind": "synth", "synth": "steel", "n_per_class": 4, "size": 32, "seed": 0,
                                         "fractions": [0.5, 0.5, 0.2]}})
    with pytest.raises(ConfigError, match="fractions"):
        prepare_dataset(data)


def test_load_data_centric_reads_an_earlier_loop(tmp_path):
    from inspection.curation.campaign import load_data_centric

    (tmp_path / "v1").mkdir()
    for name in ("manifest_gold.csv", "manifest_v1.csv"):
        (tmp_path / "v1" / name).write_text("path,label,split\n")
    (tmp_path / "audit").mkdir()
    (tmp_path / "audit" / "audit.json").write_text(json.dumps({"queued": 30, "train_val_images": 100,
                                                               "score": {"queue": {"precision": 0.7}}}))
    (tmp_path / "relabel").mkdir()
    (tmp_path / "relabel" / "relabel_summary.json").write_text(json.dumps({"queued": 30}))
    (tmp_path / "v2").mkdir()
    (tmp_path / "v2" / "changelog.json").write_text(json.dumps({"summary": {"version": "v2", "relabelled": 4},
                                                                 "changes": []}))
    with pytest.raises(FileNotFoundError, match="manifest_v2.csv"):
        load_data_centric(tmp_path / "v1", tmp_path / "audit", tmp_path / "relabel", tmp_path / "v2")
    (tmp_path / "v2" / "manifest_v2.csv").write_text("path,label,split\n")
    dc = load_data_centric(tmp_path / "v1", tmp_path / "audit", tmp_path / "relabel", tmp_path / "v2")
    assert dc.v2_csv == tmp_path / "v2" / "manifest_v2.csv" and dc.summary["relabel_budget_share"] == 0.3
    assert dc.summary["curation"]["relabelled"] == 4 and dc.summary["audit_vs_gold"]["queue"]["precision"] == 0.7
    shutil.rmtree(tmp_path / "audit")
    with pytest.raises(FileNotFoundError, match="audit.json"):
        load_data_centric(tmp_path / "v1", tmp_path / "audit", tmp_path / "relabel", tmp_path / "v2")


def test_fast_dvclive_sync_test_matches_dvclives_own():
    """Our frame walk answers as dvclive.lightning._should_sync does (which reads every frame's source)."""
    from dvclive.lightning import _should_sync

    from inspection.cli.lineage import _called_from_sync_point

    def update_train_epoch_metrics():  # a name Lightning logs from, where DVCLive writes its files out
        return _called_from_sync_point(), _should_sync()

    def some_callback():
        return _called_from_sync_point(), _should_sync()

    assert update_train_epoch_metrics() == (True, True)
    assert some_callback() == (False, False)
