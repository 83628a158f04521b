"""The one preprocessing definition: resize policy, normalisation, and its torch twin agree."""

import numpy as np
import pytest

from inspection.core.preprocess import PreprocessSpec, normalize, preprocess, resize_image


def test_stretch_resize_shape_and_dtype():
    spec = PreprocessSpec(32, 48, channels=3)
    img = np.random.default_rng(0).integers(0, 256, (100, 70, 3), dtype=np.uint8)
    out = resize_image(img, spec)
    assert out.shape == (32, 48, 3) and out.dtype == np.uint8


def test_letterbox_keeps_aspect_and_pads():
    spec = PreprocessSpec(40, 40, channels=1, resize="letterbox", pad_value=0)
    img = np.full((20, 40), 200, np.uint8)
    out = resize_image(img, spec)
    assert out.shape == (40, 40, 1)
    assert out[0, 0, 0] == 0 and out[20, 20, 0] == 200  # padded top row, image in the middle


def test_gray_to_rgb_and_rgb_to_gray():
    gray = np.arange(64, dtype=np.uint8).reshape(8, 8)
    rgb = resize_image(gray, PreprocessSpec(8, 8, channels=3))
    assert rgb.shape == (8, 8, 3) and (rgb[..., 0] == gray).all()
    back = resize_image(rgb, PreprocessSpec(8, 8, channels=1))
    assert back.shape == (8, 8, 1) and np.abs(back[..., 0].astype(int) - gray).max() <= 1


def test_normalize_values_and_layout():
    spec = PreprocessSpec(2, 2, channels=3, mean=(0.5, 0.5, 0.5), std=(0.25, 0.5, 1.0))
    img = np.full((2, 2, 3), 255, np.uint8)
    x = normalize(img, spec)
    assert x.shape == (3, 2, 2) and x.dtype == np.float32
    assert np.allclose(x[:, 0, 0], [2.0, 1.0, 0.5])


def test_preprocess_rejects_non_uint8():
    with pytest.raises(TypeError):
        preprocess(np.zeros((4, 4, 3), np.float32), PreprocessSpec(4, 4))


def test_spec_roundtrip_and_validation():
    spec = PreprocessSpec(64, 64, channels=1, mean=(0.5,), std=(0.25,))
    assert PreprocessSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(ValueError):
        PreprocessSpec(64, 64, channels=2)
    with pytest.raises(ValueError):
        PreprocessSpec.from_dict({**spec.to_dict(), "bogus": 1})


def test_torch_normalize_matches_numpy():
    torch = pytest.importorskip("torch")
    from inspection.models.normalize import Normalize

    spec = PreprocessSpec(16, 16, channels=3, mean=(0.4, 0.5, 0.6), std=(0.2, 0.3, 0.25))
    batch = np.random.default_rng(1).integers(0, 256, (4, 16, 16, 3), dtype=np.uint8)
    ref = normalize(batch, spec)
    got = Normalize(spec)(torch.from_numpy(batch)).numpy()
    assert np.abs(ref - got).max() < 1e-6
