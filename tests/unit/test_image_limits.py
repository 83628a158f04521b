"""The decoder's limits hold for every format it accepts (issue 15): the pixel count is read from the header of
PNG, JPEG, BMP, TIFF (either byte order, SHORT or LONG sizes) and WebP before any decode; reads never block."""

from __future__ import annotations

import os
import struct
import time
import zlib

import cv2
import numpy as np
import pytest

from inspection.core import image
from inspection.core.errors import ImageDecodeError
from inspection.core.image import check_encoded, decode_image, read_encoded


def tiff_bomb(width: int, height: int, big_endian: bool = False, size_type: int = 4) -> bytes:
    """A valid deflate TIFF of zeros, one row per strip, every strip pointing at the same few compressed bytes:
    a 17000² image in ~140 KB, written by hand (no library writes one without the pixels in memory)."""
    o = ">" if big_endian else "<"
    row = zlib.compress(bytes(width), 9)
    tags = [(256, size_type, 1, width), (257, size_type, 1, height), (258, 3, 1, 8), (259, 3, 1, 8),
            (262, 3, 1, 1), (273, 4, height, None), (277, 3, 1, 1), (278, 4, 1, 1), (279, 4, height, None)]
    ifd_size = 2 + 12 * len(tags) + 4
    offsets_at = 8 + ifd_size
    counts_at = offsets_at + 4 * height
    data_at = counts_at + 4 * height
    out = bytearray((b"MM\x00*" if big_endian else b"II*\x00") + struct.pack(o + "I", 8))
    out += struct.pack(o + "H", len(tags))
    for tag, typ, count, value in tags:
        if tag == 273:
            value = offsets_at
        elif tag == 279:
            value = counts_at
        if typ == 3 and count == 1:
            out += struct.pack(o + "HHIHH", tag, typ, count, value, 0)
        else:
            out += struct.pack(o + "HHII", tag, typ, count, value)
    out += struct.pack(o + "I", 0)
    out += struct.pack(o + f"{height}I", *([data_at] * height))
    out += struct.pack(o + f"{height}I", *([len(row)] * height))
    return bytes(out + row)


def _encode(ext: str, shape=(40, 60, 3), params=()) -> bytes:
    ok, buf = cv2.imencode(ext, np.random.default_rng(0).integers(0, 255, shape, dtype=np.uint8), list(params))
    assert ok
    return buf.tobytes()


FORMATS = {
    "png": lambda: _encode(".png"),
    "jpeg": lambda: _encode(".jpg"),
    "progressive jpeg": lambda: _encode(".jpg", params=(cv2.IMWRITE_JPEG_PROGRESSIVE, 1)),
    "bmp": lambda: _encode(".bmp"),
    "tiff": lambda: _encode(".tif"),
    "deflate tiff": lambda: _encode(".tif", params=(cv2.IMWRITE_TIFF_COMPRESSION, 8)),
    "gray tiff": lambda: _encode(".tif", shape=(40, 60)),
    "lossy webp": lambda: _encode(".webp"),
    "lossless webp": lambda: _encode(".webp", params=(cv2.IMWRITE_WEBP_QUALITY, 101)),
    "hand-written tiff": lambda: tiff_bomb(60, 40),
    "big-endian tiff, SHORT sizes": lambda: tiff_bomb(60, 40, big_endian=True, size_type=3),
}


@pytest.mark.parametrize("name", FORMATS)
def test_every_format_is_size_checked_before_decoding(name, monkeypatch):
    """Each format decodes under the limit and is refused above it, from its header alone."""
    data = FORMATS[name]()
    assert decode_image(data, name).shape[:2] == (40, 60)
    monkeypatch.setattr(image, "MAX_PIXELS", 40 * 60 - 1)
    monkeypatch.setattr(cv2, "imdecode", lambda *a: pytest.fail("decoded a refused image"))
    with pytest.raises(ImageDecodeError, match=r"too large \(60x40 pixels"):
        decode_image(data, name)


def test_real_tiff_bombs_are_refused_fast():
    """A 17000² (289 MP > 268 MP) and a 30000² deflate TIFF used to decode (6.5 GB RSS for the latter)."""
    for side in (17000, 30000):
        bomb = tiff_bomb(side, side)
        assert len(bomb) < 300_000
        t0 = time.perf_counter()
        with pytest.raises(ImageDecodeError, match=f"too large \\({side}x{side} pixels"):
            check_encoded(bomb, "bomb.tif")
        assert time.perf_counter() - t0 < 0.5


def test_headers_without_a_size_are_refused():
    png = _encode(".png")
    for name, data in {"tiff": b"II*\x00" + b"\xff" * 8, "webp": b"RIFF\x10\x00\x00\x00WEBPJUNK" + bytes(20),
                       "bmp": b"BM" + bytes(10), "jpeg": b"\xff\xd8\xff\xe0\x00\x10" + bytes(14) + b"\xff\xd9",
                       "png": png[:20]}.items():
        with pytest.raises(ImageDecodeError, match="header"):
            check_encoded(data, name)


@pytest.mark.timeout(30)  # the old reader blocked in open() forever
def test_reads_are_regular_files_only_and_bounded(tmp_path, monkeypatch):
    fifo = tmp_path / "x.jpg"
    os.mkfifo(fifo)
    t0 = time.perf_counter()
    with pytest.raises(ImageDecodeError, match="not a regular file"):
        read_encoded(fifo)  # used to block in open() until someone wrote into the FIFO
    assert time.perf_counter() - t0 < 1
    with pytest.raises(ImageDecodeError, match="character device"):
        read_encoded("/dev/zero")  # used to read without bound
    big = tmp_path / "big.png"
    big.write_bytes(_encode(".png"))
    monkeypatch.setattr(image, "MAX_FILE_BYTES", 100)
    with pytest.raises(ImageDecodeError, match="file too large"):
        read_encoded(big)
