"""The CIFAR-10 folder reader: the official files (md5-checked), ToTensor's values, and the lab's train
augmentation (RandomCrop(32, padding=4) + RandomHorizontalFlip) done per batch by core.augment."""

import itertools
import pickle
import re
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import train_with_batchnorm
from torch.utils.data import DataLoader, DistributedSampler

from prunetui.core.draw import first_batches
from prunetui.errors import UserError
from prunetui.sources import load_data

CIFAR_FILES = [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]


def write_cifar(root: Path, per_batch: int = 4) -> None:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in CIFAR_FILES:
        # The real batches are Python 2 pickles whose str keys torchvision reads back as str.
        batch = {
            "data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
            "labels": list(range(per_batch)),
        }
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    (folder / "batches.meta").write_bytes(
        pickle.dumps({"label_names": [f"c{i}" for i in range(10)]}, protocol=2)
    )


@pytest.fixture
def cifar_md5_skipped(monkeypatch):
    """Our fakes cannot match the official md5s, which the loader keeps checking: skip them here only."""
    from torchvision.datasets import CIFAR10

    monkeypatch.setattr(CIFAR10, "train_list", [[name, None] for name, _ in CIFAR10.train_list])
    monkeypatch.setattr(CIFAR10, "test_list", [[name, None] for name, _ in CIFAR10.test_list])
    monkeypatch.setattr(CIFAR10, "meta", {**CIFAR10.meta, "md5": None})


def raw_cifar(root: Path, names: list[str]) -> tuple[torch.Tensor, list[int]]:
    """The images (N x 3 x 32 x 32 uint8) and labels of CIFAR batch files, read straight from the pickles."""
    batches = [pickle.loads((root / "cifar-10-batches-py" / name).read_bytes()) for name in names]
    images = np.concatenate([batch["data"] for batch in batches]).reshape(-1, 3, 32, 32)
    return torch.from_numpy(images), [label for batch in batches for label in batch["labels"]]


Window = tuple[int, int, int, bool]  # image index, top and left offset into the padded image, mirrored


def lab_windows(images: torch.Tensor) -> dict[bytes, Window]:
    """What the lab's RandomCrop(32, padding=4) + RandomHorizontalFlip can make of each image: every
    32x32 window of it zero-padded by 4, mirrored or not, keyed by its pixels."""
    windows = {}
    for index, image in enumerate(torch.nn.functional.pad(images, (4, 4, 4, 4))):
        for top, left, mirrored in itertools.product(range(9), range(9), (False, True)):
            window = image[:, top : top + 32, left : left + 32]
            pixels = window.flip(-1) if mirrored else window
            windows[pixels.contiguous().numpy().tobytes()] = (index, top, left, mirrored)
    return windows


@pytest.fixture
def cifar(tmp_path, cifar_md5_skipped) -> tuple[Path, Callable[[Iterable], list[Window]]]:
    """A fake CIFAR-10 folder of 20 train and 4 test images, and `windows_of(train batches)`: the window
    each image is, checking that its values are ToTensor's (pixel / 255 in float32, exactly), that it is
    one of the lab's windows of a train image and that its label is that image's."""
    write_cifar(tmp_path)
    originals, original_labels = raw_cifar(tmp_path, CIFAR_FILES[:5])
    windows = lab_windows(originals)

    def windows_of(batches: Iterable) -> list[Window]:
        found = []
        for images, labels in batches:
            assert images.dtype == torch.float32 and images.shape[1:] == (3, 32, 32)
            for image, label in zip(images, labels.tolist(), strict=True):
                pixels = (image * 255).round().to(torch.uint8)
                assert torch.equal(image, pixels.float() / 255)
                window = windows.get(pixels.numpy().tobytes())
                assert window is not None, "not a 32x32 window of a zero-padded original, mirrored or not"
                assert original_labels[window[0]] == label
                found.append(window)
        return found

    return tmp_path, windows_of


@pytest.mark.parametrize(("per_batch", "eval_batch_size"), [(4, 512), (7, 3)])
def test_cifar10_eval_images_are_the_raw_pixels_over_255(
    tmp_path, cifar_md5_skipped, per_batch, eval_batch_size
):
    write_cifar(tmp_path, per_batch)
    data = load_data(f"cifar10:{tmp_path}", eval_batch_size=eval_batch_size)
    assert (data.num_classes, data.input_shape) == (10, (3, 32, 32))
    assert (len(data.train.dataset), len(data.eval.dataset)) == (5 * per_batch, per_batch)
    images, labels = (torch.cat(parts) for parts in zip(*data.eval, strict=True))
    raw, raw_labels = raw_cifar(tmp_path, ["test_batch"])
    assert torch.equal(images, raw.float() / 255) and labels.tolist() == raw_labels
    from torchvision import datasets, transforms  # the lab's test pipeline, per image

    lab = datasets.CIFAR10(tmp_path, train=False, transform=transforms.ToTensor(), download=False)
    assert torch.equal(images, torch.stack([image for image, _ in lab]))


@pytest.mark.parametrize(("batch_size", "workers"), [(8, 0), (20, 0), (6, 2)])
def test_cifar10_train_batches_are_the_labs_crops_and_flips(cifar, batch_size, workers):
    root, windows_of = cifar
    data = load_data(f"cifar10:{root}", batch_size=batch_size, num_workers=workers)
    torch.manual_seed(0)
    for _ in range(3):
        drawn = windows_of(data.train)
        assert sorted(index for index, *_ in drawn) == list(range(20))  # every image once an epoch
        assert len({window[1:] for window in drawn}) > 1  # each image its own crop and flip


def test_cifar10_crops_cover_every_offset_and_both_flips(cifar):
    root, windows_of = cifar
    data = load_data(f"cifar10:{root}", batch_size=20)
    torch.manual_seed(0)
    drawn = windows_of(batch for _ in range(100) for batch in data.train)
    assert {(top, left) for _, top, left, _ in drawn} == set(itertools.product(range(9), range(9)))
    assert {mirrored for *_, mirrored in drawn} == {False, True}


def test_cifar10_seeded_draws_repeat_and_epochs_differ(cifar):
    root, windows_of = cifar
    data = load_data(f"cifar10:{root}", batch_size=8)
    draws = []
    for seed in (1, 2):  # whatever the global generator's state, the draw is the same and leaves it so
        torch.manual_seed(seed)
        state = torch.get_rng_state()
        draws.append(list(first_batches(data.train, 2)))
        assert torch.equal(torch.get_rng_state(), state)
    assert [len(labels) for _, labels in draws[0]] == [8, 8] and len(set(windows_of(draws[0]))) == 16
    for (images, labels), (again, again_labels) in zip(*draws, strict=True):
        assert torch.equal(images, again) and torch.equal(labels, again_labels)
    assert sorted(windows_of(data.train)) != sorted(windows_of(data.train))  # the same images, cropped anew


@pytest.mark.parametrize("rank", [0, 1])
def test_cifar10_loader_rebuilt_as_the_distributed_worker_does_still_augments(cifar, rank):
    root, windows_of = cifar
    data = load_data(f"cifar10:{root}", batch_size=8)
    sampler = DistributedSampler(data.train.dataset, num_replicas=2, rank=rank, seed=0)
    torch.manual_seed(0)
    drawn = windows_of(DataLoader(data.train.dataset, 4, sampler=sampler, collate_fn=data.train.collate_fn))
    assert [index for index, *_ in drawn] == list(sampler)
    assert len({window[1:] for window in drawn}) > 1


@pytest.mark.parametrize(("batch_size", "sizes"), [(19, [19]), (4, [4] * 5), (3, [3] * 6 + [2])])
def test_cifar10_a_last_train_batch_of_one_image_is_dropped(cifar, batch_size, sizes):
    root, windows_of = cifar
    data = load_data(f"cifar10:{root}", batch_size=batch_size)
    assert [len(labels) for _, labels in data.train] == sizes
    assert len(windows_of(data.train)) == sum(sizes)
    train_with_batchnorm(data.train, 3 * 32 * 32)


def test_cifar10_files_that_are_not_the_official_release(tmp_path):
    write_cifar(tmp_path)
    with pytest.raises(UserError, match="not the official CIFAR-10 release"):
        load_data(f"cifar10:{tmp_path}")


@pytest.mark.parametrize("removed", ["data_batch_3", "test_batch", "batches.meta"])
def test_cifar10_incomplete_folder_names_the_missing_file(tmp_path, removed):
    write_cifar(tmp_path)
    (tmp_path / "cifar-10-batches-py" / removed).unlink()
    expected = f"expected {tmp_path}/cifar-10-batches-py/{removed} (prunetui never downloads data)"
    with pytest.raises(UserError, match=re.escape(expected)):
        load_data(f"cifar10:{tmp_path}")
