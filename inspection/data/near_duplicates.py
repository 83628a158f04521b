"""Near-duplicate images: the one perceptual hash of the project (dHash), its flip/shift-tolerant form, clusters.

`dhash` is the difference hash the audit flags duplicates with (signs of horizontal gradients on a small grid).
Grouping splits needs more than that 64-bit form: on steel textures the 9x8 thumbnail is mostly the illumination
gradient, so distinct frames hash alike. `image_hashes` therefore hashes a 16x16 grid (256 bits) of the image with
its illumination removed, for the 8 flips/quarter turns and 9 one-pixel shifts of the query; the distance of two
images is the smallest over those 72 variants. Measured on NEU-DET and planted copies (docs/datasets.md):
brightness, gain, JPEG re-encoding, flips and 90° turns stay within a few bits, shifts up to ~2% of the side stay
within the default threshold, and distinct images lie far above it. Look-alike products (pills in one pose) are
compared again on a 32x32 grid (1024 bits) before they are grouped.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from inspection.core.errors import ImageDecodeError
from inspection.core.files import atomic_write_bytes
from inspection.core.image import read_image

GRID = 16  # cells per side of the grouping hash: 256 bits
FINE_GRID = 32  # the second look inside a look-alike cluster: 1024 bits, fine enough for a pill's own speckles
CELL = 4  # thumbnail pixels per cell (thumbnail: (grid + 1) cells wide for the gradients, plus the shift margin)
SHIFT = 1  # query shifts of ±SHIFT thumbnail pixels (1 px of 70 ≈ 1.5% of the side)
HIGHPASS_SIGMA = 6.0  # thumbnail pixels: what is blurred away (the illumination) is not part of the identity
VARIANTS = 8 * (2 * SHIFT + 1) ** 2
CACHE_NAME = "near-dup-hashes-v1.npz"  # FINE_GRID hashes: near-dup-hashes-g32-v1.npz
MIN_LOOKALIKE = 8  # a small set's cluster of up to this many is taken for copies whatever its share


@dataclass(frozen=True)
class NearDupConfig:
    """When two images count as near-duplicates (docs/datasets.md: near-duplicate grouping)."""

    max_distance: int = 24  # of 256 bits, min over flips/turns/1-px shifts (docs/datasets.md: measured on NEU)
    # A cluster holding more than this share of the images is a look-alike product (every good pill centred the
    # same way) rather than copies of one photo: it is compared again on the fine grid, and what is still one blob
    # there is reported but neither grouped nor counted as a leak.
    max_cluster_share: float = 0.25
    # Inside such a cluster, images are compared again on a 32 x 32 grid: copies stay within this many of 1024
    # bits (MVTec pill: JPEG, brightness, 1-2% shifts ≤ 120), distinct pills of one pose lie beyond ~180.
    fine_max_distance: int = 150


def dhash_bits(cells: np.ndarray) -> np.ndarray:
    """The difference hash of a (..., rows, cols + 1) grid of cell values: signs of horizontal gradients, packed
    into bytes along the last axis (big-endian bit order, so 64 bits read as one ">u8" number)."""
    bits = cells[..., :, 1:] > cells[..., :, :-1]
    return np.packbits(bits.reshape(*bits.shape[:-2], -1), axis=-1)


def dhash(gray: np.ndarray) -> int:
    """64-bit difference hash: signs of horizontal gradients on a 9x8 thumbnail (robust to blur and gain)."""
    small = cv2.resize(gray, (9, 8), interpolation=cv2.INTER_AREA).astype(np.int16)
    return int(dhash_bits(small).view(">u8")[0])


def hamming_pairs(hashes: np.ndarray, max_dist: int, block: int = 2048) -> list[tuple[int, int, int]]:
    """(i, j, distance) for i < j with Hamming distance ≤ max_dist (64-bit hashes), in blocks to bound memory."""
    h = hashes.astype(np.uint64)
    out = []
    for start in range(0, len(h), block):
        d = np.bitwise_count(h[start : start + block, None] ^ h[None, :])
        ii, jj = np.nonzero(d <= max_dist)
        ii = ii + start
        keep = ii < jj
        out += [(int(i), int(j), int(d[i - start, j])) for i, j in zip(ii[keep], jj[keep])]
    return out


def _dihedral(img: np.ndarray) -> list[np.ndarray]:
    """The 8 flips and quarter turns of a square image."""
    out = []
    for k in range(4):
        r = np.rot90(img, k)
        out += [r, r[:, ::-1]]
    return out


def gray_hashes(gray: np.ndarray, grid: int = GRID) -> tuple[np.ndarray, np.ndarray]:
    """(query VARIANTS x grid²/8 bytes: 8 orientations x 9 shifts, reference: as is) of a grayscale uint8 image."""
    thumb = (grid + 1) * CELL + 2 * SHIFT
    t = cv2.resize(gray, (thumb, thumb), interpolation=cv2.INTER_AREA).astype(np.float32)
    t -= cv2.GaussianBlur(t, (0, 0), HIGHPASS_SIGMA)
    n = 2 * SHIFT + 1
    query = []
    for o in _dihedral(t):
        # box[y, x] = mean of the CELL x CELL block whose top-left corner is (y, x): every shift's cells are a
        # strided slice of it
        box = cv2.boxFilter(np.ascontiguousarray(o), -1, (CELL, CELL), anchor=(0, 0), borderType=cv2.BORDER_REPLICATE)
        cells = np.stack([box[dy : dy + grid * CELL : CELL, dx : dx + (grid + 1) * CELL : CELL]
                          for dy in range(n) for dx in range(n)])
        query.append(dhash_bits(cells))
    box = cv2.boxFilter(t, -1, (CELL, CELL), anchor=(0, 0), borderType=cv2.BORDER_REPLICATE)
    ref = dhash_bits(box[SHIFT : SHIFT + grid * CELL : CELL, SHIFT : SHIFT + (grid + 1) * CELL : CELL])
    return np.concatenate(query), ref


def hash_distance(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> int:
    """Distance of two images from their gray_hashes: the smallest over either image's query variants."""
    return int(min(np.bitwise_count(a[0] ^ b[1]).sum(-1).min(), np.bitwise_count(b[0] ^ a[1]).sum(-1).min()))


def _hash_file(path: Path, grid: int) -> tuple[np.ndarray, np.ndarray] | None:
    try:
        return gray_hashes(read_image(path, channels=1)[:, :, 0], grid)
    except ImageDecodeError:
        return None


def image_hashes(paths: Sequence[Path], sha256: Sequence[str], cache_dir: str | os.PathLike | None = None,
                 grid: int = GRID) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(query N x VARIANTS x bytes, reference N x bytes, readable N) for files, cached by content hash in cache_dir."""
    cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    name = CACHE_NAME if grid == GRID else CACHE_NAME.replace("-v1", f"-g{grid}-v1")
    f = Path(cache_dir) / name if cache_dir else None
    if f is not None and f.is_file():
        try:
            with np.load(f) as z:
                cache = {s: (q, r) for s, q, r in zip(z["sha256"].tolist(), z["query"], z["ref"])}
        except (OSError, ValueError, KeyError):
            cache = {}  # a broken cache is rebuilt, never trusted
    todo = sorted({s for s in sha256 if s not in cache})
    wanted = set(todo)
    first = {s: p for p, s in zip(paths, sha256) if s in wanted}
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:  # cv2 releases the GIL
        new = dict(zip(todo, pool.map(lambda p: _hash_file(p, grid), [first[s] for s in todo])))
    cache.update({s: h for s, h in new.items() if h is not None})
    if f is not None and any(h is not None for h in new.values()):
        keys = sorted(cache)
        f.parent.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        np.savez(buf, sha256=np.array(keys), query=np.stack([cache[k][0] for k in keys]),
                 ref=np.stack([cache[k][1] for k in keys]))
        atomic_write_bytes(f, buf.getvalue())
    empty = (np.zeros((VARIANTS, grid * grid // 8), np.uint8), np.zeros(grid * grid // 8, np.uint8))
    got = [cache.get(s, empty) for s in sha256]
    readable = np.array([s in cache for s in sha256], bool)
    return np.stack([g[0] for g in got]), np.stack([g[1] for g in got]), readable


def near_pairs(query: np.ndarray, ref: np.ndarray, max_distance: int, block: int = 64) -> np.ndarray:
    """Pairs (k x 2 array of i < j) whose smallest distance over the query variants of either image is within
    max_distance. Hamming distances of 0/1 vectors as matrix products (|q| + |r| - 2 q·r): BLAS does in a second
    what popcounts over every pair x variant take ten for; no n x n matrix is kept."""
    n = len(ref)
    r = np.unpackbits(ref, axis=-1).astype(np.float32)
    rn = r.sum(-1)
    found = [np.empty((0, 2), np.int64)]
    for s in range(0, n, block):
        q = np.unpackbits(query[s : s + block], axis=-1).astype(np.float32)  # b x V x bits
        b, v, bits = q.shape
        dist = q.sum(-1).reshape(-1, 1) + rn[None, :] - 2.0 * (q.reshape(-1, bits) @ r.T)
        ii, jj = np.nonzero(dist.reshape(b, v, n).min(axis=1) <= max_distance + 0.5)
        ii += s
        keep = ii != jj
        found.append(np.sort(np.stack([ii[keep], jj[keep]], axis=1), axis=1))
    return np.unique(np.concatenate(found), axis=0)


def cluster_labels(n: int, pairs: np.ndarray | Sequence[tuple[int, int]]) -> np.ndarray:
    """Connected components (union-find by label propagation): each item's label is the smallest index of its
    component, so the result depends on neither pair order nor direction."""
    label = np.arange(n)
    p = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    while len(p):
        m = np.minimum(label[p[:, 0]], label[p[:, 1]])
        new = label.copy()
        np.minimum.at(new, p[:, 0], m)
        np.minimum.at(new, p[:, 1], m)
        new = new[new]  # pointer jumping: follow labels to their roots
        if np.array_equal(new, label):
            break
        label = new
    return label


@dataclass
class Clusters:
    """Near-duplicate clusters of a list of images: `label[i]` is a representative index of i's cluster."""

    label: np.ndarray
    pairs: np.ndarray  # k x 2 near-duplicate links (byte-identical ones aside)
    lookalike: int = 0  # images in look-alike clusters, left ungrouped (NearDupConfig.max_cluster_share)

    def groups(self) -> list[list[int]]:
        """Indices per grouped cluster with ≥ 2 members, in order of their first member."""
        out: dict[int, list[int]] = {}
        for i, lab in enumerate(self.label.tolist()):
            out.setdefault(lab, []).append(i)
        return [g for g in out.values() if len(g) > 1]


def _oversize(label: np.ndarray, cfg: NearDupConfig) -> np.ndarray:
    """Members of clusters too large to be copies of one photo (NearDupConfig.max_cluster_share)."""
    sizes = np.bincount(label, minlength=len(label))
    return np.isin(label, np.nonzero(sizes > max(MIN_LOOKALIKE, cfg.max_cluster_share * len(label)))[0])


def find_clusters(paths: Sequence[Path], sha256: Sequence[str], cfg: NearDupConfig | None = None,
                  cache_dir: str | os.PathLike | None = None) -> Clusters:
    """Byte-identical files and near-duplicates linked (union-find); an oversize cluster is compared again on the
    fine grid, and what is still one blob falls back to byte-identical grouping (counted in `lookalike`)."""
    cfg = cfg or NearDupConfig()
    n = len(sha256)
    query, ref, readable = image_hashes(paths, sha256, cache_dir)
    ok = np.nonzero(readable)[0]
    pairs = ok[near_pairs(query[ok], ref[ok], cfg.max_distance)].reshape(-1, 2)
    first: dict[str, int] = {}
    exact = np.array([(first.setdefault(s, i), i) for i, s in enumerate(sha256)], np.int64).reshape(-1, 2)
    label = cluster_labels(n, np.concatenate([pairs, exact]))
    big = _oversize(label, cfg)
    if big.any():  # a look-alike product: look again, finer, and keep only what is a copy at that scale
        idx = np.nonzero(big)[0]
        fq, fr, fok = image_hashes([paths[i] for i in idx], [sha256[i] for i in idx], cache_dir, FINE_GRID)
        sub = np.nonzero(fok)[0]
        fine = idx[sub[near_pairs(fq[sub], fr[sub], cfg.fine_max_distance)]].reshape(-1, 2)
        pairs = np.concatenate([pairs[~big[pairs[:, 0]]], fine])
        label = cluster_labels(n, np.concatenate([pairs, exact]))
        big = _oversize(label, cfg)
        if big.any():  # still one blob: keep only what is byte-identical inside it
            pairs = pairs[~big[pairs[:, 0]]]
            label = cluster_labels(n, np.concatenate([pairs, exact]))
    return Clusters(label, pairs, int(big.sum()))
