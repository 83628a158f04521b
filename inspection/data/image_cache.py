"""Decode + resize a manifest's images once (threads), optionally kept on disk, so epochs never re-decode."""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from inspection.core.errors import ImageDecodeError, ManifestError, listing
from inspection.core.preprocess import PreprocessSpec, load_model_input


def load_resized(paths: list[Path], spec: PreprocessSpec, workers: int | None = None) -> np.ndarray:
    """uint8 array N x H x W x C of images resized by the shared core resize (OpenCV releases the GIL)."""
    out = np.empty((len(paths), spec.height, spec.width, spec.channels), np.uint8)

    def one(i: int) -> str | None:
        try:
            out[i] = load_model_input(paths[i], spec)
        except ImageDecodeError as e:
            return str(e)
        return None

    with ThreadPoolExecutor(max_workers=workers or min(8, os.cpu_count() or 1)) as pool:
        errors = [e for e in pool.map(one, range(len(paths))) if e]
    if errors:  # all of them at once: one fix-and-rerun, not one per bad file
        raise ManifestError(f"{len(errors)} image(s) cannot be decoded (fix them, or drop their rows from the "
                            "manifest):" + listing(errors))
    return out


def cached_resized(paths: list[Path], hashes: list[str], spec: PreprocessSpec, cache_dir: str | None) -> np.ndarray:
    """load_resized with an on-disk .npy keyed by content hashes + spec (reused across runs and seeds)."""
    if not cache_dir:
        return load_resized(paths, spec)
    key = hashlib.sha256(json.dumps([hashes, spec.to_dict()], sort_keys=True).encode()).hexdigest()[:20]
    f = Path(cache_dir) / f"images-{key}.npy"
    if f.is_file():
        arr = np.load(f, mmap_mode=None)
        if arr.shape == (len(paths), spec.height, spec.width, spec.channels):
            return arr
    arr = load_resized(paths, spec)
    f.parent.mkdir(parents=True, exist_ok=True)
    tmp = f.with_name(f".{f.name}.{os.getpid()}.tmp.npy")
    np.save(tmp, arr)
    os.replace(tmp, f)
    return arr
