"""Image decoding with clear errors: every bad file becomes an ImageDecodeError naming the file and the problem."""

from __future__ import annotations

import os
import stat

import cv2
import numpy as np

from inspection.core.errors import ImageDecodeError
from inspection.core.listing import special_file_kind

# Decompression-bomb guard: refuse images whose header claims more pixels than this (≈ 16k x 16k).
MAX_PIXELS = 16384 * 16384
# No image file is read past this size (a 16k x 16k 8-bit RGB image uncompressed is 805 MB).
MAX_FILE_BYTES = 1 << 30
_MAGIC = {
    b"\xff\xd8\xff": "jpeg",
    b"\x89PNG\r\n\x1a\n": "png",
    b"BM": "bmp",
    b"II*\x00": "tiff",
    b"MM\x00*": "tiff",
    b"RIFF": "webp",
}


def sniff_format(data: bytes) -> str | None:
    """Image format from the file's first bytes, or None when it is not an image we know."""
    for magic, fmt in _MAGIC.items():
        if data.startswith(magic):
            return fmt
    return None


def _u(data: bytes, at: int, n: int, order: str) -> int:
    return int.from_bytes(data[at : at + n], order)  # type: ignore[arg-type]


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    i = 2
    while i + 1 < len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte before a marker
            i += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # standalone markers: no length
            i += 2
            continue
        if i + 9 > len(data):
            return None
        if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
            return _u(data, i + 7, 2, "big"), _u(data, i + 5, 2, "big")
        i += 2 + _u(data, i + 2, 2, "big")
    return None


def _tiff_size(data: bytes) -> tuple[int, int] | None:
    """ImageWidth/ImageLength of the first IFD (the page OpenCV decodes), whichever integer type holds them."""
    order = "little" if data[:2] == b"II" else "big"
    ifd = _u(data, 4, 4, order)
    if ifd + 2 > len(data):
        return None
    n = _u(data, ifd, 2, order)
    found: dict[int, int] = {}
    for k in range(n):
        e = ifd + 2 + 12 * k
        if e + 12 > len(data):
            break
        tag, typ = _u(data, e, 2, order), _u(data, e + 2, 2, order)
        if tag in (256, 257):
            width = {1: 1, 3: 2, 4: 4, 6: 1, 8: 2, 9: 4, 16: 8}.get(typ)  # BYTE SHORT LONG (S)... LONG8
            if width is None or width > 4:
                return None
            found[tag] = _u(data, e + 8, width, order)
    return (found[256], found[257]) if len(found) == 2 else None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    if data[8:12] != b"WEBP" or len(data) < 30:
        return None
    chunk = data[12:16]
    if chunk == b"VP8X":
        return _u(data, 24, 3, "little") + 1, _u(data, 27, 3, "little") + 1
    if chunk == b"VP8 ":
        return _u(data, 26, 2, "little") & 0x3FFF, _u(data, 28, 2, "little") & 0x3FFF
    if chunk == b"VP8L":
        bits = _u(data, 21, 4, "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    return None


def _bmp_size(data: bytes) -> tuple[int, int] | None:
    if len(data) < 26:
        return None
    if _u(data, 14, 4, "little") == 12:  # OS/2 BITMAPCOREHEADER: 16-bit sizes
        return _u(data, 18, 2, "little"), _u(data, 20, 2, "little")
    w = int.from_bytes(data[18:22], "little", signed=True)
    h = int.from_bytes(data[22:26], "little", signed=True)  # negative: a top-down bitmap
    return abs(w), abs(h)


def _header_size(data: bytes, fmt: str) -> tuple[int, int] | None:
    """Width, height read from the header without decoding, for the bomb guard; None if the header is unreadable."""
    if fmt == "png":
        return (_u(data, 16, 4, "big"), _u(data, 20, 4, "big")) if len(data) >= 24 else None
    readers = {"jpeg": _jpeg_size, "tiff": _tiff_size, "webp": _webp_size, "bmp": _bmp_size}
    return readers[fmt](data)


def _jpeg_is_truncated(data: bytes) -> bool:
    # A complete JPEG ends with the EOI marker (possibly followed by padding); OpenCV decodes a cut file silently.
    return b"\xff\xd9" not in data[-1024:]


def check_encoded(data: bytes, path: str = "<bytes>", max_pixels: int | None = None) -> str:
    """Cheap checks before any decoder sees the bytes (empty, unknown, bomb, truncated); returns the format.

    `max_pixels`: a tighter limit than MAX_PIXELS (None: MAX_PIXELS, read at call time)."""
    max_pixels = MAX_PIXELS if max_pixels is None else max_pixels
    if len(data) == 0:
        raise ImageDecodeError(path, "empty file (0 bytes)")
    fmt = sniff_format(data)
    if fmt is None:
        raise ImageDecodeError(path, "not an image (unknown file signature)")
    if fmt == "jpeg" and _jpeg_is_truncated(data):
        raise ImageDecodeError(path, "truncated JPEG (no end-of-image marker)")
    size = _header_size(data, fmt)
    if size is None:  # every format the decoder is given has its size checked: no size, no decode
        raise ImageDecodeError(path, f"corrupt {fmt} header (image size not found)")
    if size[0] * size[1] > max_pixels:
        raise ImageDecodeError(path, f"image too large ({size[0]}x{size[1]} pixels > {max_pixels}); refusing to decode")
    return fmt


def decode_image(data: bytes, path: str = "<bytes>", channels: int = 3, max_pixels: int | None = None) -> np.ndarray:
    """Decode encoded bytes to uint8 HxWxC (RGB for 3 channels, gray for 1). Raises ImageDecodeError.

    `max_pixels` is checked on the header before decoding (every format the decoder accepts) and again on the decoded size."""
    max_pixels = MAX_PIXELS if max_pixels is None else max_pixels
    fmt = check_encoded(data, path, max_pixels)
    buf = np.frombuffer(data, np.uint8)
    img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ImageDecodeError(path, f"corrupt or unsupported {fmt} data")
    if img.size == 0:
        raise ImageDecodeError(path, "image has no pixels")
    if img.shape[0] * img.shape[1] > max_pixels:  # a header that lied about its size
        raise ImageDecodeError(path, f"image too large ({img.shape[1]}x{img.shape[0]} pixels > {max_pixels})")
    img = _to_uint8(img, path)
    img = _to_channels(img, channels, path)
    return img


def _to_uint8(img: np.ndarray, path: str) -> np.ndarray:
    if img.dtype == np.uint8:
        return img
    if img.dtype == np.uint16:
        # 16-bit sensors: keep the full dynamic range by scaling, not truncating.
        return (img.astype(np.float32) * (255.0 / 65535.0) + 0.5).astype(np.uint8)
    if img.dtype in (np.float32, np.float64):
        return np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8)
    raise ImageDecodeError(path, f"unsupported pixel type {img.dtype}")


def _to_channels(img: np.ndarray, channels: int, path: str) -> np.ndarray:
    if img.ndim == 2:
        gray = img
        if channels == 1:
            return gray[:, :, None]
        return cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB)
    n = img.shape[2]
    if n == 4:  # OpenCV gives BGRA; alpha is dropped (composited on black would invent pixels)
        img = img[:, :, :3]
    elif n != 3:
        raise ImageDecodeError(path, f"unsupported channel count {n}")
    rgb = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    if channels == 1:
        return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)[:, :, None]
    return rgb


def read_encoded(path: str | os.PathLike) -> bytes:
    """A regular file's bytes (at most MAX_FILE_BYTES); a missing, unreadable, special or oversized path raises
    ImageDecodeError naming it. Never blocks: a FIFO is opened non-blocking and refused, not read.

    os.open/os.read in one read where the size is known: fewer syscalls and objects than Path.read_bytes, which
    matters when batch engines read thousands of small files (2x on NEU files)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise ImageDecodeError(_shown(path), "file not found") from None
    except OSError as e:
        raise ImageDecodeError(_shown(path), f"cannot read: {e.strerror or e}") from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise ImageDecodeError(_shown(path), "is a directory, not an image")
        if not stat.S_ISREG(st.st_mode):
            raise ImageDecodeError(_shown(path), f"not a regular file ({special_file_kind(st.st_mode)}); not read")
        if st.st_size > MAX_FILE_BYTES:
            raise ImageDecodeError(_shown(path), f"file too large ({st.st_size} bytes > {MAX_FILE_BYTES})")
        size = st.st_size
        data = os.read(fd, size) if size else b""
        if len(data) < size or not size:  # a short read, or a file growing while read: read on, bounded
            parts, total = [data], len(data)
            while total <= MAX_FILE_BYTES and (part := os.read(fd, 1 << 20)):
                parts.append(part)
                total += len(part)
            if total > MAX_FILE_BYTES:
                raise ImageDecodeError(_shown(path), f"file too large (> {MAX_FILE_BYTES} bytes)")
            data = b"".join(parts)
        return data
    except OSError as e:
        raise ImageDecodeError(_shown(path), f"cannot read: {e.strerror or e}") from None
    finally:
        os.close(fd)


def _shown(path: str | os.PathLike) -> str:
    return os.fsdecode(path) if isinstance(path, bytes) else str(path)


def read_image(path: str | os.PathLike, channels: int = 3) -> np.ndarray:
    """Read and decode an image file; any problem raises ImageDecodeError naming the file."""
    return decode_image(read_encoded(path), str(path), channels)
