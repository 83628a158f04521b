"""Where a model came from: the git commit, the DVC hash of its data, and experiment loggers that work for fresh repos.

`run_lineage(manifest)` is what `inspection train` stores in the checkpoint (→ the exported model card):

- `git_commit`: HEAD, with `-dirty` when tracked files differ from it. Files DVC itself rewrites while it runs a
  pipeline (`dvc.lock`, `.gitignore`) do not count, or every model trained by `dvc repro` would read "dirty".
  A repository without commits yet records "" (and `git_state` says why).
- `dvc`: for the DVC-tracked outputs that hold the manifest, its `dataset.json` and its images, the DVC hash
  (`md5`, `<hash>.dir` for a folder) computed now, by DVC's own code, plus the hash DVC recorded (dvc.lock or a
  `.dvc` file) and whether the two agree. Untracked data gets the hash DVC *would* record, so a later
  `dvc add` can be matched. Hashing is exact, not trusted: `dvc repro -s train@x` with stale upstream outputs
  still records the data the model really saw.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

log = logging.getLogger(__name__)

# Files `dvc repro` / `dvc exp run` rewrite on their own; a change to them says nothing about the code.
DVC_WRITTEN = ("dvc.lock", ".gitignore")


@dataclass(frozen=True)
class GitState:
    """HEAD of the repository around `cwd` ('' without one), and whether tracked files differ from it."""

    in_repo: bool
    commit: str
    dirty: bool

    @property
    def has_commits(self) -> bool:
        return bool(self.commit)

    def describe(self) -> str:
        """The commit as lineage records it: sha, sha-dirty, or '' (no repository / no commit yet)."""
        return self.commit + ("-dirty" if self.dirty and self.commit else "")


def _git(args: list[str], cwd: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)


def git_state(cwd: str | Path = ".") -> GitState:
    """Inspect git without failing: no git, no repository and no commits are all ordinary answers."""
    try:
        inside = _git(["rev-parse", "--is-inside-work-tree"], cwd)
    except OSError:  # git not installed
        return GitState(False, "", False)
    if inside.returncode != 0 or inside.stdout.strip() != "true":
        return GitState(False, "", False)
    head = _git(["rev-parse", "--verify", "--quiet", "HEAD"], cwd)
    if head.returncode != 0:  # `git init` done, nothing committed yet
        return GitState(True, "", False)
    status = _git(["status", "--porcelain", "--untracked-files=no"], cwd).stdout.splitlines()
    changed = [line[3:].split(" -> ")[-1].strip('"') for line in status if line.strip()]
    dirty = any(Path(p).name not in DVC_WRITTEN for p in changed)
    return GitState(True, head.stdout.strip(), dirty)


def git_commit(cwd: str | Path = ".") -> str:
    """Current commit (with '-dirty' if tracked files changed, DVC's own bookkeeping aside), or ''."""
    return git_state(cwd).describe()


def find_dvc_root(start: str | Path) -> Path | None:
    """The nearest folder at or above `start` that holds a `.dvc/` directory."""
    p = Path(start).resolve()
    for d in [p, *p.parents] if p.is_dir() else p.parents:
        if (d / ".dvc").is_dir():
            return d
    return None


def recorded_outputs(root: Path, near: list[Path]) -> dict[Path, tuple[str, str]]:
    """DVC-tracked outputs recorded in dvc.lock files and `.dvc` files that could hold `near` paths.

    Returns {absolute output path: (md5, where it is recorded)}. Looks at dvc.lock beside the root and in every
    folder between the root and each path, and at `<ancestor>.dvc` for each ancestor (what `dvc add` writes).
    """
    found: dict[Path, tuple[str, str]] = {}
    dirs: set[Path] = set()
    for p in near:
        for d in [p, *p.parents]:
            if d == root.parent or root not in [d, *d.parents]:
                break
            dirs.add(d)
    for d in sorted(dirs):
        lock = d / "dvc.lock"
        if lock.is_file():
            data = yaml.safe_load(lock.read_text()) or {}
            for stage, entry in (data.get("stages") or {}).items():
                for out in entry.get("outs") or []:
                    if "md5" in out:
                        found[(d / out["path"]).resolve()] = (out["md5"], f"{lock.relative_to(root)}:{stage}")
        dvc_file = d.with_name(d.name + ".dvc")
        if d != root and dvc_file.is_file():
            data = yaml.safe_load(dvc_file.read_text()) or {}
            for out in data.get("outs") or []:
                if "md5" in out:
                    found[(dvc_file.parent / out["path"]).resolve()] = (out["md5"], str(dvc_file.relative_to(root)))
    return found


def dvc_hash(path: str | Path, root: Path | None = None) -> str | None:
    """The md5 DVC records for a file or folder (`<hash>.dir`), computed by DVC's own code; None without DVC."""
    try:
        from dvc_data.hashfile.build import build
        from dvc_data.hashfile.db import HashFileDB
        from dvc_objects.fs.local import LocalFileSystem
    except ImportError:
        return None
    import tempfile

    fs = LocalFileSystem()
    ignore = None
    if root is not None:
        try:
            from dvc.ignore import DvcIgnoreFilter

            ignore = DvcIgnoreFilter(fs, str(root))  # .dvcignore, as `dvc add` / `dvc repro` apply it
        except Exception:  # an older or newer DVC with another signature: hash without it
            ignore = None
    with tempfile.TemporaryDirectory() as tmp:
        _, _, obj = build(HashFileDB(fs, tmp), str(Path(path).resolve()), fs, "md5", dry_run=True, ignore=ignore)
    return obj.hash_info.value


def _data_paths(manifest: Path) -> list[Path]:
    """The manifest, its dataset.json and its image root: everything a training run reads."""
    paths = [manifest.resolve(), manifest.with_name("dataset.json").resolve()]
    try:
        import json

        meta = json.loads(manifest.with_name("dataset.json").read_text())
        root = Path(meta.get("image_root", "."))
        paths.append((root if root.is_absolute() else manifest.parent / root).resolve())
    except (OSError, ValueError):
        pass
    return paths


def dvc_data_lineage(manifest: str | Path) -> dict:
    """DVC hashes of the data behind a manifest: {'outs': [{path, md5, recorded_md5, recorded_in, in_sync}]}.

    Empty when the manifest is not inside a DVC project or DVC is not installed.
    """
    manifest = Path(manifest)
    root = find_dvc_root(manifest.resolve().parent)
    if root is None:
        return {}
    paths = _data_paths(manifest)
    recorded = recorded_outputs(root, paths)
    outs: list[Path] = []
    for p in paths:
        owner = next((o for o in sorted(recorded, key=lambda o: -len(o.parts)) if o == p or o in p.parents), None)
        if owner is None:
            owner = manifest.resolve().parent  # untracked: the dataset folder, as `dvc add` would hash it
        if owner not in outs:
            outs.append(owner)
    result = []
    for out in outs:
        if not out.exists():
            continue
        md5 = dvc_hash(out, root)
        if md5 is None:
            return {}
        rec_md5, where = recorded.get(out, (None, None))
        entry = {"path": os.path.relpath(out, root), "md5": md5, "recorded_md5": rec_md5, "recorded_in": where,
                 "in_sync": rec_md5 == md5 if rec_md5 else None}
        if rec_md5 and rec_md5 != md5:
            log.warning("%s changed since DVC recorded it in %s (%s → %s): run `dvc repro` or `dvc add` to record "
                        "the data this model is trained on", entry["path"], where, rec_md5, md5)
        result.append(entry)
    return {"outs": result} if result else {}


def run_lineage(manifest: str | Path, cwd: str | Path = ".") -> dict:
    """Lineage for a training run: {'git_commit': ..., 'dvc': {...}} (dvc omitted outside a DVC project)."""
    lineage: dict = {"git_commit": git_commit(cwd)}
    dvc = dvc_data_lineage(manifest)
    if dvc:
        lineage["dvc"] = dvc
    return lineage


def _no_commits_yet(cwd: str | Path = ".") -> bool:
    state = git_state(cwd)
    return state.in_repo and not state.has_commits


def missing_pipeline_outputs() -> list[str]:
    """The dvc.yaml outputs (of the DVC project around the working directory) that are not on disk."""
    try:
        from dvc.repo import Repo

        with Repo() as repo:
            return [str(o) for o in repo.index.outs if not o.exists]
    except Exception:  # no DVC project, or one DVC cannot read: DVCLive says so itself
        return []


# Where Lightning logs metrics that DVCLive writes out at once (dvclive.lightning._should_sync's list).
_SYNC_CALLERS = frozenset({"update_train_step_metrics", "update_train_epoch_metrics", "log_eval_end_metrics"})


def _called_from_sync_point() -> bool:
    """dvclive.lightning._should_sync without inspect.stack(), which reads every frame's source lines: 0.2 s a
    call, 30 calls in a 15-epoch run. Walking the frames by code name gives the same answer in microseconds."""
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name in _SYNC_CALLERS:
            return True
        frame = frame.f_back
    return False


def _fast_dvclive_class():
    from dvclive.lightning import DVCLiveLogger
    from pytorch_lightning.utilities import rank_zero_only

    class FastSyncDVCLiveLogger(DVCLiveLogger):
        """Lightning's DVCLiveLogger with a cheap test of when to write the files out (same behaviour)."""

        @rank_zero_only
        def log_metrics(self, metrics, step=None, sync=False) -> None:
            super(DVCLiveLogger, self).log_metrics(metrics, step, sync or _called_from_sync_point())

    return FastSyncDVCLiveLogger


def dvclive_logger(dir: str = "dvclive", **kwargs):  # noqa: A002 - DVCLive's own argument name
    """Lightning's DVCLiveLogger, also in a git repository that has no commit yet.

    DVCLive asks git for HEAD when it starts and raises `SCMError: Empty git repo` before the first commit, so a
    fresh `git init && dvc repro` would crash. There, metrics, params and plots are still written to `dir`;
    saving the run as a DVC experiment (and caching artifacts) waits for the first commit, as DVCLive does
    without git at all.
    """
    DVCLiveLogger = _fast_dvclive_class()  # noqa: N806 - a class

    kwargs["dir"] = str(dir)
    if not _no_commits_yet():
        if kwargs.get("save_dvc_exp", True) and not os.environ.get("DVC_ROOT"):  # DVC_ROOT: inside dvc repro/exp
            missing = missing_pipeline_outputs()
            if missing:  # `dvc exp save` would fail at the end of the run with DVC's "output ... does not exist"
                log.warning("DVCLive logs to %s but saves no DVC experiment: DVC saves one only when every dvc.yaml "
                            "output exists (%d missing, e.g. %s); run `dvc repro` once", dir, len(missing), missing[0])
                kwargs["save_dvc_exp"] = False
        return DVCLiveLogger(**kwargs)
    from unittest import mock

    import dvclive.live
    from pytorch_lightning.utilities import rank_zero_only

    log.warning("git repository without commits: DVCLive logs to %s, but saves no experiment until the first "
                "`git commit`", dir)
    logger_kwargs = {k: kwargs.pop(k) for k in ("run_name", "prefix", "log_model") if k in kwargs}
    if getattr(rank_zero_only, "rank", 0) != 0:  # DDP workers never touch the experiment
        return DVCLiveLogger(**logger_kwargs, **kwargs)
    # DVCLive's view of the repository is `get_dvc_repo()`; without one it skips every git call (its no-git path).
    with mock.patch.object(dvclive.live, "get_dvc_repo", return_value=None):
        live = dvclive.live.Live(**{**kwargs, "save_dvc_exp": False})
    return DVCLiveLogger(experiment=live, **logger_kwargs)


def mlflow_logger(tracking_uri: str, experiment_name: str = "inspection", run_name: str | None = None,
                  **kwargs):
    """Lightning's MLFlowLogger with a clear error when MLflow is missing or the store would be refused."""
    import importlib.util

    scheme = tracking_uri.split(":", 1)[0] if ":" in tracking_uri else "file"
    if scheme == "file" and os.environ.get("MLFLOW_ALLOW_FILE_STORE", "").lower() != "true":
        raise RuntimeError(f"logger.mlflow.tracking_uri={tracking_uri!r}: MLflow ≥ 3.17 refuses file stores unless "
                           "MLFLOW_ALLOW_FILE_STORE=true; use a local database instead, e.g. sqlite:///mlflow.db")
    if importlib.util.find_spec("mlflow") is None:
        raise RuntimeError("logger=mlflow needs MLflow, which `inspection[train]` does not install: "
                           "`pip install mlflow` (a local `sqlite:` store needs no server), "
                           "or use logger=dvclive / logger=csv")
    from pytorch_lightning.loggers import MLFlowLogger

    return MLFlowLogger(experiment_name=experiment_name, run_name=run_name, tracking_uri=tracking_uri, **kwargs)
