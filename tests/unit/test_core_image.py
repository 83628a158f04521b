"""Every bad-input kind becomes a clear ImageDecodeError naming the file, or decodes to sane uint8 RGB/gray."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from bad_images import cmyk_jpeg, gradient, jpeg_bytes, png_bytes, png_header_bomb

from inspection.core.errors import ImageDecodeError
from inspection.core.image import MAX_PIXELS, decode_image, read_image


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("truncated.jpg", jpeg_bytes(gradient())[:300], "truncated JPEG"),
        ("zero.jpg", b"", "empty file (0 bytes)"),
        ("notes.png", b"hello, I am text\n", "not an image"),
        ("bomb.png", png_header_bomb(100_000, 100_000), "too large (100000x100000"),
        ("broken.png", png_bytes(gradient())[:60], "corrupt or unsupported png"),
    ],
)
def test_bad_files_raise_with_path_and_reason(tmp_path: Path, name: str, data: bytes, reason: str) -> None:
    p = _write(tmp_path, name, data)
    with pytest.raises(ImageDecodeError) as e:
        read_image(p)
    assert e.value.path == str(p) and reason in e.value.reason
    assert str(e.value).startswith(f"{p}: ")


def test_bomb_is_refused_from_the_header_alone() -> None:
    # 100000^2 would be 30 GB of RGB: the guard must fire before any decoding.
    assert 100_000 * 100_000 > MAX_PIXELS
    with pytest.raises(ImageDecodeError, match="refusing to decode"):
        decode_image(png_header_bomb(), "bomb.png")


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(ImageDecodeError, match="file not found"):
        read_image(tmp_path / "nope.jpg")
    with pytest.raises(ImageDecodeError, match="is a directory"):
        read_image(tmp_path)


def test_png_bytes_named_jpg_decode_by_content(tmp_path: Path) -> None:
    p = _write(tmp_path, "really_a_png.jpg", png_bytes(gradient()))
    img = read_image(p)
    assert img.shape == (40, 48, 3) and img.dtype == np.uint8
    assert (img[..., 2] == gradient()[..., 0]).all()  # exact (PNG is lossless), BGR file → RGB array


def test_cmyk_jpeg_converts_to_rgb(tmp_path: Path) -> None:
    # Adobe CMYK is stored inverted: C=255, M=0, Y=255, K=255 means "full magenta ink only".
    img = read_image(_write(tmp_path, "cmyk.jpg", cmyk_jpeg((255, 0, 255, 255))))
    assert img.shape == (16, 16, 3) and img.dtype == np.uint8
    r, g, b = (int(v) for v in img[8, 8])
    assert r > 240 and g < 15 and b > 240


def test_16bit_png_scaled_not_truncated(tmp_path: Path) -> None:
    deep = np.array([[0, 257 * 128, 65535]], np.uint16)
    img = read_image(_write(tmp_path, "deep.png", png_bytes(deep)), channels=1)
    assert img.dtype == np.uint8 and img[0, :, 0].tolist() == [0, 128, 255]


def test_rgba_png_drops_alpha(tmp_path: Path) -> None:
    bgra = np.zeros((4, 4, 4), np.uint8)
    bgra[..., 0], bgra[..., 2], bgra[..., 3] = 10, 200, 0  # fully transparent: colour is kept, not composited
    img = read_image(_write(tmp_path, "rgba.png", png_bytes(bgra)))
    assert img.shape == (4, 4, 3) and img[0, 0].tolist() == [200, 0, 10]


def test_grayscale_to_rgb_and_gray(tmp_path: Path) -> None:
    p = _write(tmp_path, "gray.png", png_bytes(gradient(channels=1)))
    rgb, gray = read_image(p, 3), read_image(p, 1)
    assert rgb.shape == (40, 48, 3) and (rgb[..., 0] == rgb[..., 1]).all()
    assert gray.shape == (40, 48, 1) and (gray[..., 0] == gradient(channels=1)).all()


def test_rgb_to_gray_request(tmp_path: Path) -> None:
    img = read_image(_write(tmp_path, "c.png", png_bytes(gradient())), channels=1)
    assert img.shape == (40, 48, 1) and img.dtype == np.uint8
