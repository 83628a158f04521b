"""Device-resident batches: every image once per epoch, reproducible from the seed, no host round trip."""

import numpy as np
import pytest
import torch

from inspection.data.device_batches import DeviceBatches


def _data(n=10):
    imgs = np.arange(n, dtype=np.uint8).reshape(n, 1, 1, 1).repeat(4, 1).repeat(4, 2)
    return imgs, np.arange(n) % 3


def test_shuffled_epoch_covers_every_image_once_and_pairs_labels():
    imgs, ys = _data(10)
    b = DeviceBatches(imgs, ys, 4, shuffle=True, drop_last=False, device="cpu", seed=0)
    assert len(b) == 3
    seen = []
    for x, y in b:
        assert x.dtype == torch.uint8 and x.shape[1:] == (4, 4, 1)
        ids = x[:, 0, 0, 0].long()
        assert torch.equal(y, ids % 3)  # labels travel with their images
        seen += ids.tolist()
    assert sorted(seen) == list(range(10)) and seen != list(range(10))


def test_drop_last_and_sequential_order():
    imgs, ys = _data(10)
    dropped = DeviceBatches(imgs, ys, 4, shuffle=True, drop_last=True, device="cpu", seed=0)
    assert len(dropped) == 2 and sum(len(y) for _, y in dropped) == 8
    seq = DeviceBatches(imgs, ys, 4, shuffle=False, drop_last=False, device="cpu")
    assert [x[:, 0, 0, 0].tolist() for x, _ in seq] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_same_seed_same_batches_and_epochs_differ():
    imgs, ys = _data(32)
    a = DeviceBatches(imgs, ys, 8, True, True, "cpu", seed=3)
    b = DeviceBatches(imgs, ys, 8, True, True, "cpu", seed=3)
    ea1, ea2 = [y.tolist() for _, y in a], [y.tolist() for _, y in a]
    assert ea1 == [y.tolist() for _, y in b]
    first_ids = [x[:, 0, 0, 0].tolist() for x, _ in DeviceBatches(imgs, ys, 8, True, True, "cpu", seed=3)]
    assert first_ids != [x[:, 0, 0, 0].tolist() for x, _ in DeviceBatches(imgs, ys, 8, True, True, "cpu", seed=4)]
    assert ea1 != ea2 or len(ea1) == 0  # a new permutation each epoch


def test_bad_batch_size():
    with pytest.raises(ValueError, match="batch_size"):
        DeviceBatches(*_data(), 0, True, False, "cpu")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_batches_stay_on_the_gpu():
    imgs, ys = _data(16)
    x, y = next(iter(DeviceBatches(imgs, ys, 8, True, True, "cuda", seed=0)))
    assert x.is_cuda and y.is_cuda
