"""`data.prepare`: synthesise or import a dataset on first use, and re-make it when its inputs change.

A dataset this code made carries a stamp (core.stamp) of what it was made from: the importer or generator, the
source folder and a fingerprint of its file listing, the seed and the OK classes. A later run reuses the folder
only when its own inputs give the same stamp; otherwise the dataset is made again (the README's folder route run
for a second image tree must not train on the first one). A dataset someone else made (`inspection data import`,
a DVC stage) has no stamp: it is reused when its recorded source is the one asked for, and refused otherwise.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from inspection.core.errors import ConfigError, ManifestError
from inspection.core.stamp import STAMP, differences, read_stamp, stamp_key, write_stamp

log = logging.getLogger(__name__)


def source_fingerprint(src: Path) -> str:
    """Hash of every file's relative path, size and mtime under `src` (cheap; changes when images do)."""
    entries = []
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames.sort()
        for f in sorted(filenames):
            p = Path(dirpath) / f
            try:
                st = p.stat()
            except OSError:
                continue
            entries.append([p.relative_to(src).as_posix(), st.st_size, st.st_mtime_ns])
    return stamp_key({"files": entries})


def _inputs(prep: DictConfig) -> dict:
    """The stamp parts: everything that shapes the prepared dataset."""
    if prep.kind == "synth":
        return {"kind": "synth", "synth": str(prep.synth), "n_per_class": int(prep.n_per_class),
                "size": int(prep.size), "seed": int(prep.seed), "fractions": _fractions(prep)}
    src = Path(prep.src)
    if not src.exists():
        raise ManifestError(f"{src}: source for the dataset not found (set data.prepare.src=...)")
    labels = prep.get("labels_csv")
    return {"kind": "import", "importer": str(prep.importer), "src": str(src.resolve()),
            "source_files": source_fingerprint(src), "seed": int(prep.seed),
            "ok_classes": sorted(str(c) for c in (prep.get("ok_classes") or [])),
            "binary": bool(prep.get("binary", False)),
            "labels_csv": str(Path(labels).resolve()) if labels else "",
            "labels_csv_files": source_fingerprint(Path(labels).parent) if labels and Path(labels).is_file() else ""}


def _fractions(prep: DictConfig) -> list[float]:
    """A synthetic set's train/val/test shares (`data.prepare.fractions`, default 0.6/0.2/0.2)."""
    f = [float(x) for x in (prep.get("fractions") or (0.6, 0.2, 0.2))]
    if len(f) != 3 or min(f) < 0 or abs(sum(f) - 1) > 1e-6 or f[0] == 0 or f[2] == 0:
        raise ConfigError(f"data.prepare.fractions must be three shares (train, val, test) summing to 1 with "
                          f"train and test > 0, got {f}")
    return f


def _check_ok_classes(manifest: Path, prep: DictConfig) -> None:
    """`data.prepare.ok_classes` must name classes of the data actually used."""
    from inspection.data.manifest import load_manifest

    wanted = [str(c) for c in (prep.get("ok_classes") or [])]
    if not wanted:
        return
    m = load_manifest(manifest)
    unknown = sorted(set(wanted) - set(m.classes))
    if unknown:
        raise ConfigError(f"data.prepare.ok_classes: {unknown} are not classes of {manifest} (its classes: "
                          f"{m.classes})")
    if sorted(wanted) != sorted(m.ok_classes):
        raise ConfigError(f"data.prepare.ok_classes={wanted}, but {manifest} was made with OK classes "
                          f"{m.ok_classes}: re-import it (inspection data import … --ok-class) or remove "
                          f"{manifest.parent}")


def _reusable(manifest: Path, prep: DictConfig, parts: dict) -> bool:
    """Reuse an existing dataset? True: as it is; False: make it again. Raises when it is not ours to replace."""
    out = manifest.parent
    stamp = read_stamp(out)
    if stamp is not None:
        if stamp["key"] == stamp_key(parts):
            return True
        print(f"[data] {out}: made from other inputs ({', '.join(differences(out, parts))} differ) — "
              "making it again", flush=True)
        return False
    if parts["kind"] == "import":
        try:
            meta = json.loads(manifest.with_name("dataset.json").read_text())
            recorded = (meta.get("info") or {}).get("source") or meta.get("source") or ""
        except (OSError, ValueError, AttributeError):
            recorded = ""
        # An importer may record the image folder inside the tree it was given (NEU: <src>/IMAGES).
        if recorded and not Path(recorded).resolve().is_relative_to(Path(parts["src"])):
            raise ManifestError(f"{manifest}: holds a dataset imported from {recorded}, not from "
                                f"data.prepare.src={parts['src']}; point data.manifest at a new folder "
                                f"(e.g. data.manifest=data/<name>/manifest.csv) or remove {out}")
        _check_ok_classes(manifest, prep)
    return True


def _clear(out: Path) -> None:
    """Remove what an earlier prepare wrote (its stamp proves it made the folder)."""
    for name in ("images", "masks"):
        if (out / name).is_dir():
            shutil.rmtree(out / name)
    for name in ("manifest.csv", "dataset.json", STAMP):
        (out / name).unlink(missing_ok=True)


def prepare_dataset(data: DictConfig) -> Path:
    """Return the manifest path, making the dataset first when it is missing or was made from other inputs."""
    manifest = Path(data.manifest)
    prep = data.get("prepare")
    explicit = prep is not None and not (prep.get("kind") == "import" and OmegaConf.is_missing(prep, "src"))
    if manifest.is_file() and not explicit:
        return manifest  # a manifest named by the user, no recipe to check it against
    if prep is None:
        raise ManifestError(f"{manifest}: manifest not found and data.prepare is not set")
    if prep.kind not in ("synth", "import"):
        raise ConfigError(f"data.prepare.kind: unknown {prep.kind!r} (synth, import)")
    if prep.kind == "import" and OmegaConf.is_missing(prep, "src"):
        raise ManifestError(f"{manifest}: manifest not found; set data.prepare.src=/path/to/images to import it")
    if manifest.is_file() and prep.kind == "import" and not Path(prep.src).exists():
        log.info("%s: source %s is not here; using the dataset as it is", manifest, prep.src)
        _check_ok_classes(manifest, prep)
        return manifest
    parts = _inputs(prep)
    out = manifest.parent
    if manifest.is_file() and _reusable(manifest, prep, parts):
        return manifest
    # Made beside the old one and swapped in only when complete: a failed import (a wrong OK class, an unreadable
    # image) leaves the previous dataset as it was.
    tmp = out.with_name(f".{out.name}.preparing")
    if tmp.exists():
        shutil.rmtree(tmp)
    _make(prep, tmp)
    write_stamp(tmp, parts)
    out.mkdir(parents=True, exist_ok=True)
    _clear(out)
    for entry in tmp.iterdir():
        os.replace(entry, out / entry.name)
    tmp.rmdir()
    return manifest


def _make(prep: DictConfig, out: Path) -> None:
    if prep.kind == "synth":
        from inspection.data.synth import generate_dataset

        log.info("generating synthetic %s dataset in %s", prep.synth, out)
        generate_dataset(prep.synth, out, n_per_class=int(prep.n_per_class), size=int(prep.size), seed=int(prep.seed),
                         fractions=tuple(_fractions(prep)))
        return
    from inspection.data import importers

    src = Path(prep.src)
    print(f"[data] importing {prep.importer} images from {src} into {out}", flush=True)
    if prep.importer == "neu":
        importers.import_neu(src, out, seed=int(prep.seed))
    elif prep.importer == "mvtec":
        importers.import_mvtec(src, out, seed=int(prep.seed), binary=bool(prep.get("binary", False)))
    elif prep.importer == "folder":
        importers.import_folder(src, out, seed=int(prep.seed), ok_classes=list(prep.get("ok_classes") or []),
                                labels_csv=Path(prep.labels_csv) if prep.get("labels_csv") else None)
    else:
        raise ConfigError(f"data.prepare.importer: unknown importer {prep.importer!r} (neu, mvtec, folder)")
