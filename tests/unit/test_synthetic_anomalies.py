"""Synthetic anomalies from OK images: deterministic, exact masks, on the object, from other OK images."""

from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest

from inspection.core.errors import ConfigError
from inspection.data.synthetic_anomalies import (
    AnomalyConfig,
    AnomalySynthesizer,
    object_mask,
    synthesize_anomaly,
)

SIZE = 128
KEYS = range(12)


def _pill(seed: int, shift: tuple[int, int] = (0, 0), noise: float = 6.0) -> np.ndarray:
    """A light textured ellipse with red speckles and an imprint on a dark tray, 128x128x3 (BGR)."""
    rng = np.random.default_rng(seed)
    img = 18 + rng.normal(0, 2, (SIZE, SIZE, 3)).astype(np.float32)
    body = np.zeros((SIZE, SIZE), np.uint8)
    centre = (SIZE // 2 + shift[0], SIZE // 2 + shift[1])
    cv2.ellipse(body, centre, (44, 30), 0, 0, 360, 1, -1)
    grain = cv2.GaussianBlur(rng.normal(0, noise, (SIZE, SIZE)).astype(np.float32), (0, 0), 1.2) * 2
    pill = np.array([200, 205, 212], np.float32) + grain[:, :, None]
    for x, y in rng.normal(centre, (25, 15), (30, 2)).astype(int):
        cv2.circle(pill, (int(x), int(y)), int(rng.integers(1, 3)), (60, 60, 150), -1)
    cv2.line(pill, (centre[0] - 15, centre[1] - 10), (centre[0] - 15, centre[1] + 10), (150, 150, 155), 2)
    cv2.line(pill, (centre[0] + 5, centre[1] - 10), (centre[0] + 15, centre[1] - 10), (150, 150, 155), 2)
    img = np.where(body[:, :, None] > 0, pill, img)
    return np.clip(img, 0, 255).astype(np.uint8)


def _steel(seed: int) -> np.ndarray:
    """A 2-D grey texture that fills the frame (blotches at a few scales plus grain), 128x128."""
    rng = np.random.default_rng(seed)
    tex = np.zeros((SIZE, SIZE), np.float32)
    for cell, amp in ((32, 1.0), (8, 0.6), (2, 0.4)):
        grid = rng.standard_normal((SIZE // cell + 1, SIZE // cell + 1)).astype(np.float32)
        tex += amp * cv2.resize(grid, (SIZE, SIZE), interpolation=cv2.INTER_CUBIC)
    return np.clip(128 + 22 * tex / tex.std(), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def pills() -> list[np.ndarray]:
    return [_pill(i, shift=(3 * i - 6, 2 - i), noise=4.0 + i) for i in range(5)]


def _check_mask(target: np.ndarray, image: np.ndarray, mask: np.ndarray, cfg: AnomalyConfig) -> None:
    """The invariants every result keeps: shape, dtype, exact mask, genuinely changed, sane area."""
    assert image.shape == target.shape and image.dtype == np.uint8
    assert mask.shape == target.shape[:2] and mask.dtype == np.uint8
    assert set(np.unique(mask)) <= {0, 1}
    diff = np.abs(image.astype(int) - target.astype(int))
    diff = diff if diff.ndim == 2 else diff.max(axis=2)
    assert not ((diff > 0) & (mask == 0)).any(), "a pixel outside the mask changed"
    assert mask.sum() > 0
    assert (diff[mask > 0] > cfg.min_change / 2).mean() >= 0.9
    frame = mask.size
    assert 0.1 * cfg.min_area * frame <= mask.sum() <= 1.5 * cfg.max_area * frame


def test_same_seed_and_key_give_identical_output(pills: list[np.ndarray]) -> None:
    a = AnomalySynthesizer(pills, seed=5)(pills[0], key=3)
    b = AnomalySynthesizer(pills, seed=5)(pills[0], key=3)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    c = AnomalySynthesizer(pills, seed=5)(pills[0], key=4)
    d = AnomalySynthesizer(pills, seed=6)(pills[0], key=3)
    assert not np.array_equal(a[1], c[1]) and not np.array_equal(a[1], d[1])


@pytest.mark.parametrize("blend", ["poisson", "paste"])
def test_mask_is_exactly_the_changed_pixels(pills: list[np.ndarray], blend: str) -> None:
    cfg = AnomalyConfig(blend=blend)
    syn = AnomalySynthesizer(pills, seed=1, cfg=cfg)
    for key in KEYS:
        target = pills[key % len(pills)]
        image, mask = syn(target, key)
        _check_mask(target, image, mask, cfg)


@pytest.mark.parametrize("blend", ["poisson", "paste"])
def test_defects_lie_on_the_object(pills: list[np.ndarray], blend: str) -> None:
    syn = AnomalySynthesizer(pills, seed=2, cfg=AnomalyConfig(blend=blend))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7))
    for key in KEYS:
        target = pills[key % len(pills)]
        _, mask = syn(target, key)
        allowed = cv2.dilate(object_mask(target), kernel)
        assert not (mask & (1 - allowed)).any(), f"key {key}: defect on the background"


def test_object_mask_finds_the_pill_and_the_whole_frame_for_texture() -> None:
    pill = _pill(0, shift=(5, -3))
    truth = np.zeros((SIZE, SIZE), np.uint8)
    cv2.ellipse(truth, (SIZE // 2 + 5, SIZE // 2 - 3), (44, 30), 0, 0, 360, 1, -1)
    found = object_mask(pill)
    assert found.dtype == np.uint8 and found.shape == (SIZE, SIZE)
    iou = (found & truth).sum() / (found | truth).sum()
    assert iou > 0.9
    assert object_mask(_steel(0)).all()
    assert object_mask(np.full((40, 50, 3), 90, np.uint8)).all()
    big = cv2.resize(pill, (320, 320), interpolation=cv2.INTER_LINEAR)  # found at ≤ 128 px, scaled back
    assert object_mask(big).shape == (320, 320)


@pytest.mark.parametrize("blend", ["poisson", "paste"])
@pytest.mark.parametrize("layout", ["hwc3", "hwc1", "hw"])
def test_grey_and_colour_shapes_are_kept(blend: str, layout: str) -> None:
    greys = [_steel(i) for i in range(3)]
    shaped = {"hwc3": [np.repeat(g[:, :, None], 3, 2) for g in greys], "hwc1": [g[:, :, None] for g in greys]}
    images = shaped.get(layout, greys)
    cfg = AnomalyConfig(blend=blend)
    syn = AnomalySynthesizer(images, seed=3, cfg=cfg)
    for key in range(4):
        image, mask = syn(images[key % 3], key)
        _check_mask(images[key % 3], image, mask, cfg)


def test_texture_defects_may_go_anywhere_in_the_frame() -> None:
    greys = [_steel(i) for i in range(3)]
    syn = AnomalySynthesizer(greys, seed=4)
    hits = np.zeros((SIZE, SIZE), np.uint8)
    for key in range(30):
        hits |= syn(greys[key % 3], key)[1]
    quadrants = [hits[:64, :64], hits[:64, 64:], hits[64:, :64], hits[64:, 64:]]
    assert all(q.any() for q in quadrants)
    assert not hits[:2].any() and not hits[-2:].any() and not hits[:, :2].any() and not hits[:, -2:].any()


def _colours(n: int) -> list[np.ndarray]:
    """n flat images of clearly distinct colours."""
    palette = [(30, 60, 200), (200, 40, 40), (40, 190, 60), (220, 220, 30), (120, 20, 160)]
    return [np.full((SIZE, SIZE, 3), palette[i], np.uint8) for i in range(n)]


def _pasted_colour(image: np.ndarray, mask: np.ndarray) -> tuple[int, ...]:
    """The most common colour inside the mask: the patch's interior, where the feathered edge is opaque."""
    values, counts = np.unique(image[mask > 0], axis=0, return_counts=True)
    return tuple(int(v) for v in values[int(np.argmax(counts))])


def test_the_patch_comes_from_another_given_image() -> None:
    flats = _colours(4)
    cfg = AnomalyConfig(blend="paste", min_area=0.01, max_area=0.03)
    syn = AnomalySynthesizer(flats, seed=7, cfg=cfg)
    given = {tuple(int(v) for v in f[0, 0]) for f in flats}
    for key in range(16):
        target = flats[key % 4] if key % 2 else flats[key % 4].copy()  # the same array, or equal pixels
        image, mask = syn(target, key)
        colour = _pasted_colour(image, mask)
        assert colour in given and colour != tuple(int(v) for v in target[0, 0]), f"key {key}"


def test_only_the_given_images_are_sources(pills: list[np.ndarray]) -> None:
    flats = _colours(3)
    given = {tuple(int(v) for v in f[0, 0]) for f in flats}
    cfg = AnomalyConfig(blend="paste", min_area=0.01, max_area=0.03, inside_object=False)
    syn = AnomalySynthesizer(flats, seed=8, cfg=cfg)
    for key in range(6):
        image, mask = syn(pills[key % len(pills)], key)
        assert _pasted_colour(image, mask) in given


def test_a_change_that_blending_hides_falls_back_to_a_visible_paste() -> None:
    # Poisson-blending flat grey into the same flat grey changes nothing: every draw fails, the fallback runs.
    flat = np.full((SIZE, SIZE), 128, np.uint8)
    cfg = AnomalyConfig(blend="poisson")
    for key in range(3):
        image, mask = synthesize_anomaly(flat, flat, np.random.default_rng(key), cfg)
        _check_mask(flat, image, mask, cfg)


def test_a_single_ok_image_and_a_source_of_another_size_still_work(pills: list[np.ndarray]) -> None:
    image, mask = AnomalySynthesizer([pills[0]], seed=0)(pills[0], key=1)
    _check_mask(pills[0], image, mask, AnomalyConfig())
    small = cv2.resize(pills[1], (64, 80))
    image, mask = synthesize_anomaly(pills[0], small, np.random.default_rng(0))
    _check_mask(pills[0], image, mask, AnomalyConfig())


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("min_area", 0.0),
        ("max_area", 0.001),  # below the default min_area
        ("max_aspect", 0.5),
        ("blend", "alpha"),
        ("min_change", -1.0),
    ],
)
def test_config_errors_name_the_field(field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=field):
        AnomalyConfig(**{field: value})


def test_synthesizer_refuses_no_images_and_negative_keys(pills: list[np.ndarray]) -> None:
    with pytest.raises(ConfigError, match="OK image"):
        AnomalySynthesizer([], seed=0)
    with pytest.raises(ValueError, match="key"):
        AnomalySynthesizer(pills, seed=0)(pills[0], key=-1)


def test_bad_inputs_are_named(pills: list[np.ndarray]) -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="target"):
        synthesize_anomaly(pills[0].astype(np.float32), pills[1], rng)
    with pytest.raises(ValueError, match="source"):
        synthesize_anomaly(pills[0], np.zeros((SIZE, SIZE, 4), np.uint8), rng)


def test_the_module_stays_free_of_torch() -> None:
    # It runs inside DataLoader workers and may be reused on the edge side: numpy + cv2 only.
    heavy = "{'torch', 'albumentations'}"
    code = f"import sys, inspection.data.synthetic_anomalies; print(sorted({heavy} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
