"""The DVC pipeline end to end, on a tiny configuration in throw-away copies of the repository (offline).

Two clean copies run `dvc repro` side by side: every metrics file must come out byte-identical. Then, in one of
them: a second `dvc repro` does nothing, a param change reruns only its stages (`dvc exp run -S`), `dvc push` /
`dvc pull` restore a deleted output from the local remote, and the exported model card names the DVC hashes
and the git commit its data and code came from. Fast checks of the helpers (params.yaml in sync with conf/,
override round trips, DVCLive before the first commit, the MLflow error) need no pipeline run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DVC = str(BIN / "dvc")
ARMS = ("baseline", "data_centric")  # the pipeline's arms: one per label set version

# Tiny: 10 images per class at 32 px, one epoch, a 2-fold audit, a one-seed compare.
TINY = """\
defaults:
  - pipeline
  - _self_
data:
  prepare: {n_per_class: 10, size: 32, fractions: [0.6, 0.2, 0.2]}
  image_size: 32
  batch_size: 16
trainer: {max_epochs: 1}
curation:
  audit: {k: 2, recipe: {image_size: 32, max_epochs: 1, batch_size: 16}}
compare:
  seeds: [0]
  recipe: [model=tiny_cnn, data.image_size=32, data.batch_size=16, trainer.max_epochs=1]
  model_centric:
    n_trials: 1
    recipe: [data.image_size=32, data.batch_size=16, trainer.max_epochs=1]
    space: {model: {type: categorical, choices: [tiny_cnn]}}
  audit: {k: 2, recipe: {image_size: 32, max_epochs: 1}}
pipeline:
  export: {parity_images: 16}
"""


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INSPECTION_", "DVC_"))}
    env.update(PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}", DVC_NO_ANALYTICS="1", OMP_NUM_THREADS="1",
               GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.com", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@example.com")
    return env


def run(cmd: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    p = subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({p.returncode}) in {cwd}:\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    return p


def project_files() -> list[str]:
    """What a clone would hold: tracked files plus new, not ignored ones (this work tree may be uncommitted)."""
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("needs git and a git checkout of the project")
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout
    return sorted(f for f in out.split("\0") if f and (REPO / f).is_file())


def make_copy(dest: Path, arms: tuple[str, ...] = ARMS) -> Path:
    """A fresh repository: project files, the tiny config as DVC's Hydra config, fewer arms, one commit."""
    for f in project_files():
        (dest / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / f, dest / f)
    (dest / "conf" / "pipeline_tiny.yaml").write_text(TINY)
    spec = yaml.safe_load((dest / "dvc.yaml").read_text())
    spec["vars"][0]["arms"] = {a: v for a, v in spec["vars"][0]["arms"].items() if a in arms}
    spec["artifacts"] = {k: v for k, v in spec["artifacts"].items() if any(v["path"].endswith(f"/{a}/model.onnx")
                                                                          for a in arms)}
    (dest / "dvc.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    run(["git", "init", "-q"], dest)
    run([DVC, "config", "hydra.config_name", "pipeline_tiny"], dest)
    run([sys.executable, "-m", "inspection.cli.main", "pipeline", "params"], dest)
    run(["git", "add", "-A"], dest)
    run(["git", "commit", "-qm", "tiny pipeline"], dest)
    return dest


def metrics_files(root: Path) -> dict[str, bytes]:
    """Every file dvc.yaml declares under metrics:, by path."""
    paths = json.loads(run([DVC, "metrics", "show", "--json"], root).stdout)
    files = sorted(next(iter(paths.values()))["data"].keys())
    return {f: (root / f).read_bytes() for f in files}


@pytest.fixture(scope="module")
def clean_runs(tmp_path_factory) -> dict:
    """`dvc repro` in two fresh copies at once (one torch thread each: the two share the CPU cores).

    The second copy leaves out compare: it writes no metrics, and it is the slowest stage.
    """
    copies = [make_copy(tmp_path_factory.mktemp(name) / "repo") for name in ("a", "b")]
    start = time.perf_counter()
    targets = [[], [f"verify@{arm}" for arm in ARMS]]
    procs = [subprocess.Popen([DVC, "repro", *t], cwd=c, env=_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for c, t in zip(copies, targets)]
    logs = [p.communicate()[0] for p in procs]
    for c, p, log in zip(copies, procs, logs):
        assert p.returncode == 0, f"dvc repro failed in {c}:\n{log[-4000:]}"
    return {"a": copies[0], "b": copies[1], "logs": logs, "seconds": time.perf_counter() - start}


@pytest.mark.slow
def test_repro_runs_every_stage(clean_runs):
    a, log = clean_runs["a"], clean_runs["logs"][0]
    for stage in ("prepare", "labels", "audit", "relabel", "curate", "compare",
                  *(f"{s}@{arm}" for s in ("train", "export", "verify") for arm in ARMS)):
        assert f"Running stage '{stage}'" in log, stage
    for f in ("labels/v1/manifest_v1.csv", "labels/v2/manifest_v2.csv", "labels/v2/changelog.md",
              "outputs/pipeline/compare/compare.png", "outputs/pipeline/train/baseline/eval_test/confusion.png",
              "outputs/pipeline/dvclive/baseline/plots/metrics/train/loss.tsv",
              "outputs/pipeline/export/data_centric/model.onnx"):
        assert (a / f).is_file(), f
    # The curation change log is committed beside the label set (git), the label sets themselves are DVC's.
    ignored = run(["git", "check-ignore", "labels/v2/manifest_v2.csv", "labels/v2/changelog.md"], a, check=False)
    assert ignored.stdout.split() == ["labels/v2/manifest_v2.csv"]
    shown = json.loads(run([DVC, "plots", "show", "--json"], a).stdout)
    assert not shown.get("errors"), shown["errors"]
    for plot in ("baseline/eval_test/confusion.png", "data_centric/eval_test/predictions.csv",
                 "train/baseline/training_curves.png", "dvclive/baseline/plots/metrics", "compare/compare.png"):
        assert any(plot in k for k in shown["data"]), (plot, list(shown["data"]))


@pytest.mark.slow
def test_two_clean_runs_give_identical_metrics(clean_runs):
    a, b = metrics_files(clean_runs["a"]), metrics_files(clean_runs["b"])
    assert len(a) == 3 * len(ARMS)  # dvclive + the gold test split's metrics + verify per arm
    assert a == b, [f for f in a if a[f] != b.get(f)]
    for f in ("labels/v2/manifest_v2.csv", "outputs/pipeline/train/data_centric/eval_test/predictions.csv"):
        assert (clean_runs["a"] / f).read_bytes() == (clean_runs["b"] / f).read_bytes(), f


@pytest.mark.slow
def test_model_card_names_dvc_hashes_and_commit(clean_runs):
    a = clean_runs["a"]
    lock = yaml.safe_load((a / "dvc.lock").read_text())["stages"]
    recorded = {o["path"]: o["md5"] for stage in lock.values() for o in stage.get("outs", [])}
    head = run(["git", "rev-parse", "HEAD"], a).stdout.strip()
    for arm, outs in (("baseline", {"labels/v1"}),
                      ("data_centric", {"labels/v2/manifest_v2.csv", "labels/v2/dataset.json", "labels/v1"})):
        card = json.loads((a / f"outputs/pipeline/export/{arm}/model.json").read_text())
        dvc = {o["path"]: o for o in card["lineage"]["dvc"]["outs"]}
        assert set(dvc) == outs, dvc
        for path, entry in dvc.items():
            assert entry["md5"] == entry["recorded_md5"] == recorded[path] and entry["in_sync"], entry
        assert card["lineage"]["git_commit"] == head  # dvc.lock / .gitignore rewrites do not make it "dirty"


@pytest.mark.slow
def test_second_repro_is_a_noop(clean_runs):
    a = clean_runs["a"]
    log = run([DVC, "repro"], a).stdout
    assert "Running stage" not in log and "up to date" in log, log
    assert "up to date" in run([DVC, "status"], a).stdout


@pytest.mark.slow
def test_push_pull_restores_a_deleted_output(clean_runs):
    a = clean_runs["a"]
    remote = a.parent / "inspection-dvc-remote"  # the default remote: a folder beside the repository
    run([DVC, "push"], a)
    assert remote.is_dir() and any(remote.rglob("*"))
    onnx = a / "outputs/pipeline/export/baseline/model.onnx"
    manifest = a / "labels/v2/manifest_v2.csv"
    before = onnx.read_bytes(), manifest.read_bytes()
    onnx.unlink()
    manifest.unlink()
    shutil.rmtree(a / ".dvc" / "cache")  # only the remote still has them
    assert "not in cache" in run([DVC, "status"], a).stdout
    run([DVC, "pull"], a)
    assert (onnx.read_bytes(), manifest.read_bytes()) == before
    assert "up to date" in run([DVC, "status"], a).stdout


@pytest.mark.slow
def test_param_change_reruns_only_dependent_stages(clean_runs):
    a = clean_runs["a"]
    run(["git", "add", "-A"], a)
    run(["git", "commit", "-qm", "repro"], a)
    log = run([DVC, "exp", "run", "-S", "pipeline.export.parity_images=8"], a).stdout
    ran = {line.split("'")[1] for line in log.splitlines() if line.startswith("Running stage")}
    assert ran == {f"{s}@{arm}" for s in ("export", "verify") for arm in ARMS}, ran
    # -S went through DVC's Hydra composition of conf/: params.yaml changed in that one key only.
    params = yaml.safe_load((a / "params.yaml").read_text())
    assert params["pipeline"]["export"]["parity_images"] == 8 and params["data"]["prepare"]["n_per_class"] == 10
    rows = json.loads(run([DVC, "exp", "show", "--json"], a).stdout)
    head = run(["git", "rev-parse", "HEAD"], a).stdout.strip()
    baseline = next(r for r in rows if r["rev"] == head)
    (exp,) = [rev["data"] for e in baseline["experiments"] for rev in e["revs"]]  # this one experiment
    assert exp["params"]["params.yaml"]["data"]["pipeline"]["export"]["parity_images"] == 8
    assert "outputs/pipeline/train/baseline/eval_test/metrics.json" in exp["metrics"]


def test_params_yaml_is_generated_from_conf():
    """The committed params.yaml is exactly what DVC's Hydra composition makes of conf/ (one source of truth)."""
    p = run([sys.executable, "-m", "inspection.cli.main", "pipeline", "params", "--check"], REPO, check=False)
    assert p.returncode == 0, p.stdout + p.stderr


def test_every_params_section_survives_the_override_round_trip():
    from inspection.cli.dvc_stages import build_overrides, hydra_value

    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["pipeline"]["arms"]["smoothed"] = {"optim": {"label_smoothing": 0.1}}  # an arm with changes (docs)
    overrides = build_overrides(params, ["data", "model", "trainer", "paths", "compare"],
                                [*[k for k in params if k not in ("data", "model", "trainer", "paths", "compare")],
                                 "pipeline.arms.smoothed:."], ["data.manifest=labels/v2/manifest_v2.csv"])
    assert "~data" in overrides and "++data.manifest='labels/v2/manifest_v2.csv'" in overrides
    assert "++optim.label_smoothing=0.1" in overrides  # the arm's change wins over the shared recipe
    assert hydra_value("it's a 'b' \\ c") == "'it\\'s a \\'b\\' \\\\ c'"
    assert hydra_value({"optim.lr": {"low": 1e-05}}) == "{optim.lr: {low: 1e-05}}"


def test_dvclive_logger_before_the_first_commit(tmp_path, monkeypatch):
    """DVCLive alone raises `SCMError: Empty git repo` here; the factory logs anyway."""
    from inspection.cli.lineage import dvclive_logger, git_state

    run(["git", "init", "-q"], tmp_path)
    monkeypatch.chdir(tmp_path)
    assert git_state().in_repo and not git_state().has_commits and git_state().describe() == ""
    logger = dvclive_logger(dir=str(tmp_path / "dvclive"), dvcyaml=False)
    logger.log_metrics({"val/acc": 0.5}, step=0)
    logger.finalize("success")
    assert json.loads((tmp_path / "dvclive" / "metrics.json").read_text())["val"]["acc"] == 0.5


def _dvc_project(root: Path, stage_out: str) -> None:
    run(["git", "init", "-q"], root)
    run([DVC, "init", "-q"], root)
    (root / "dvc.yaml").write_text(f"stages:\n  make:\n    cmd: mkdir -p {stage_out}\n    outs:\n      - {stage_out}\n")
    (root / ".gitignore").write_text(f"/{stage_out}\n/dvclive\n")
    run(["git", "add", "-A"], root)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init"], root)


def _one_run(root: Path) -> None:
    from inspection.cli.lineage import dvclive_logger

    logger = dvclive_logger(dir=str(root / "dvclive"), dvcyaml=False, save_dvc_exp=True)
    logger.log_metrics({"val/acc": 0.5}, step=0)
    logger.finalize("success")


def test_dvclive_outside_the_pipeline_saves_an_experiment(tmp_path, monkeypatch, caplog):
    """`inspection train logger=dvclive` after `dvc repro` → `dvc exp list` shows the run; before it (a dvc.yaml
    output missing) DVC cannot save one: the factory says so up front and still logs."""
    monkeypatch.delenv("DVC_ROOT", raising=False)
    _dvc_project(tmp_path, "made")
    monkeypatch.chdir(tmp_path)
    with caplog.at_level("WARNING", logger="inspection"):
        _one_run(tmp_path)
    assert "saves no DVC experiment" in caplog.text and "made" in caplog.text and "dvc repro" in caplog.text
    assert json.loads((tmp_path / "dvclive" / "metrics.json").read_text())["val"]["acc"] == 0.5
    assert run([DVC, "exp", "list", "--name-only"], tmp_path).stdout.strip() == ""
    caplog.clear()
    run([DVC, "repro", "-q"], tmp_path)
    _one_run(tmp_path)
    assert "saves no DVC experiment" not in caplog.text
    assert len(run([DVC, "exp", "list", "--name-only"], tmp_path).stdout.split()) == 1


def test_mlflow_logger_explains_what_is_missing(monkeypatch):
    import importlib.util

    from inspection.cli.lineage import mlflow_logger

    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    with pytest.raises(RuntimeError, match="MLFLOW_ALLOW_FILE_STORE"):
        mlflow_logger("file:./mlruns")
    if importlib.util.find_spec("mlflow") is None:
        with pytest.raises(RuntimeError, match="pip install mlflow"):
            mlflow_logger("sqlite:///mlflow.db")
