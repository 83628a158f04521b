"""Chunk reading for the batch engines: exact bytes, per-file errors, and the CPU-decode share."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from inspection.core.file_chunks import FileChunk, read_chunk
from inspection.core.image import read_encoded
from inspection.core.preprocess import PreprocessSpec, load_model_input

SPEC = PreprocessSpec(24, 24, 1, (0.5,), (0.25,))


@pytest.fixture()
def jpegs(tmp_path: Path) -> list[str]:
    rng = np.random.default_rng(0)
    paths = []
    for i in range(8):
        p = tmp_path / f"im{i}.jpg"
        p.write_bytes(cv2.imencode(".jpg", rng.integers(0, 255, (24 + i, 24, 1), np.uint8))[1].tobytes())
        paths.append(str(p))
    return paths


def test_read_encoded_returns_the_exact_bytes(tmp_path, jpegs):
    for p in jpegs:
        assert read_encoded(p) == Path(p).read_bytes()
    (tmp_path / "empty.bin").write_bytes(b"")
    assert read_encoded(str(tmp_path / "empty.bin")) == b""
    big = tmp_path / "big.bin"
    big.write_bytes(bytes(range(256)) * 20_000)  # 5 MB: more than one read's worth on some systems
    assert read_encoded(str(big)) == big.read_bytes()


def test_each_file_gets_bytes_pixels_or_its_error(tmp_path, jpegs):
    (tmp_path / "notes.jpg").write_bytes(b"plain text")
    cv2.imwrite(str(tmp_path / "gray.png"), np.full((30, 20), 128, np.uint8))
    paths = [jpegs[0], str(tmp_path / "notes.jpg"), str(tmp_path / "missing.jpg"), str(tmp_path / "gray.png")]
    c = read_chunk(paths, SPEC, keep_jpeg=True)
    assert c.paths == paths and len(c) == 4
    assert c.data[0] == Path(jpegs[0]).read_bytes() and c.pixels[0] is None and c.errors[0] is None
    assert "not an image" in c.errors[1] and c.data[1] is None and c.pixels[1] is None
    assert c.errors[2] == "file not found" and c.data[2] is None  # the edge runner's wording
    assert c.data[3] is None and c.pixels[3].shape == (24, 24, 1)  # non-JPEG: decoded + resized here


def test_cpu_share_decodes_that_part_of_the_jpegs_like_the_edge_runner(jpegs):
    c = read_chunk(jpegs, SPEC, keep_jpeg=True, cpu_share=0.25)
    decoded = [i for i, px in enumerate(c.pixels) if px is not None]
    assert decoded == [3, 7]  # spread evenly, a quarter of them
    for i in decoded:
        assert c.data[i] is None
        np.testing.assert_array_equal(c.pixels[i], load_model_input(jpegs[i], SPEC))
    assert all(d is not None for d in read_chunk(jpegs, SPEC, keep_jpeg=True).data)
    assert all(px is not None for px in read_chunk(jpegs, SPEC, keep_jpeg=False).pixels)


def test_concat_keeps_order(jpegs):
    a, b = read_chunk(jpegs[:3], SPEC, True), read_chunk(jpegs[3:], SPEC, True)
    assert FileChunk.concat([a, b]).paths == jpegs
