"""Craft every bad-input kind the decoder must handle (no PIL: bytes are built by hand or with OpenCV)."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import cv2
import numpy as np


def _seg(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def cmyk_jpeg(cmyk: tuple[int, int, int, int], w: int = 16, h: int = 16) -> bytes:
    """A flat-colour 4-component (Adobe CMYK) baseline JPEG, entropy-coded by hand (DC only, all AC = EOB).

    OpenCV cannot write CMYK; a constant 8x8 block has a single DCT coefficient, DC = 8 * (v - 128) with an
    all-ones quantisation table, so a tiny Huffman table (12 DC categories of 4 bits, EOB = '0') suffices.
    """
    dqt = _seg(0xDB, b"\x00" + b"\x01" * 64)
    sof = _seg(0xC0, struct.pack(">BHHB", 8, h, w, 4) + b"".join(bytes([i + 1, 0x11, 0]) for i in range(4)))
    dc = _seg(0xC4, b"\x00" + bytes([0, 0, 0, 12] + [0] * 12) + bytes(range(12)))
    ac = _seg(0xC4, b"\x10" + bytes([1] + [0] * 15) + b"\x00")
    sos = _seg(0xDA, bytes([4]) + b"".join(bytes([i + 1, 0x00]) for i in range(4)) + b"\x00\x3f\x00")
    adobe = _seg(0xEE, b"Adobe" + struct.pack(">HHHB", 100, 0, 0, 0))  # transform 0: CMYK, not YCCK
    bits: list[str] = []
    prev = [0] * 4
    for _ in range((w // 8) * (h // 8)):
        for c in range(4):
            dcv = 8 * (cmyk[c] - 128)
            diff, prev[c] = dcv - prev[c], dcv
            s = abs(diff).bit_length()
            bits.append(format(s, "04b"))
            if s:
                bits.append(format(diff if diff >= 0 else diff + (1 << s) - 1, f"0{s}b"))
            bits.append("0")  # EOB: every AC coefficient is zero
    stream = "".join(bits)
    stream += "1" * (-len(stream) % 8)
    data = bytearray()
    for i in range(0, len(stream), 8):
        data.append(int(stream[i : i + 8], 2))
        if data[-1] == 0xFF:
            data.append(0)  # byte stuffing
    return b"\xff\xd8" + adobe + dqt + sof + dc + ac + sos + bytes(data) + b"\xff\xd9"


def png_header_bomb(width: int = 100_000, height: int = 100_000) -> bytes:
    """A PNG whose IHDR claims a huge image (a few hundred bytes on disk)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))  # noqa: E731
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def jpeg_bytes(img: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".jpg", img)
    assert ok
    return buf.tobytes()


def png_bytes(img: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", img)
    assert ok
    return buf.tobytes()


def gradient(h: int = 40, w: int = 48, channels: int = 3) -> np.ndarray:
    """A smooth BGR (or gray) test image: decodes to known values after JPEG round-trips, roughly."""
    y, x = np.mgrid[0:h, 0:w]
    base = ((x * 255) // max(1, w - 1)).astype(np.uint8)
    if channels == 1:
        return base
    return np.dstack([base, ((y * 255) // max(1, h - 1)).astype(np.uint8), np.full_like(base, 128)])


def write_bad_images(folder: Path) -> dict[str, str]:
    """Write one file per bad-input kind; returns {file name: expected error substring or '' if it must decode}."""
    folder.mkdir(parents=True, exist_ok=True)
    good_jpg = jpeg_bytes(gradient())
    files = {
        "truncated.jpg": (good_jpg[: len(good_jpg) // 2], "truncated JPEG"),
        "zero.png": (b"", "empty file"),
        "notes.jpg": (b"this is a text file, not an image\n", "not an image"),
        "png_named.jpg": (png_bytes(gradient()), ""),
        "cmyk.jpg": (cmyk_jpeg((255, 0, 255, 255)), ""),
        "deep16.png": (png_bytes(gradient(channels=1).astype(np.uint16) * 257), ""),
        "rgba.png": (png_bytes(np.dstack([gradient(), np.full((40, 48), 200, np.uint8)])), ""),
        "gray.png": (png_bytes(gradient(channels=1)), ""),
        "bomb.png": (png_header_bomb(), "too large"),
    }
    for name, (data, _) in files.items():
        (folder / name).write_bytes(data)
    return {name: err for name, (_, err) in files.items()}
