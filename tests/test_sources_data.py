import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import train_with_batchnorm
from PIL import Image
from torch.utils.data import RandomSampler, SequentialSampler

from prunetui.errors import UserError
from prunetui.sources import DATA_HELP, Data, load_data

MNIST_FILES = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
]


def first_batch(data: Data, split: str = "eval") -> tuple[torch.Tensor, torch.Tensor]:
    return next(iter(getattr(data, split)))


def test_digits_fixed_split():
    data = load_data("digits")
    assert (data.spec, data.num_classes, data.input_shape) == ("digits", 10, (1, 8, 8))
    assert (len(data.train.dataset), len(data.eval.dataset)) == (1347, 450)
    images, labels = data.eval.dataset.tensors
    assert images.dtype == torch.float32 and labels.dtype == torch.long
    assert images.min() == 0.0 and images.max() == 1.0
    assert torch.bincount(labels).tolist() == [45, 46, 44, 46, 45, 46, 45, 45, 43, 45]  # stratified
    assert torch.equal(images, load_data("digits").eval.dataset.tensors[0])  # same split every time


def test_loaders_train_shuffled_eval_ordered_with_the_batch_sizes():
    data = load_data("digits", batch_size=100, eval_batch_size=200)
    assert isinstance(data.train.sampler, RandomSampler) and not data.train.drop_last
    assert isinstance(data.eval.sampler, SequentialSampler)
    assert [len(y) for _, y in data.train][-1] == 1347 - 1300
    images, labels = first_batch(data)
    assert images.shape == (200, 1, 8, 8) and labels.shape == (200,)


@pytest.mark.parametrize(("images", "batch_size"), [(33, 8), (257, 128), (3, 2)])
def test_a_last_train_batch_of_one_image_is_dropped(images, batch_size):
    data = load_data(f"random:{images}:3x4x4", batch_size=batch_size)
    sizes = [len(y) for _, y in data.train]
    assert sizes == [batch_size] * (images // batch_size)
    train_with_batchnorm(data.train, 3 * 4 * 4)  # raised "Expected more than 1 value per channel"
    assert [len(y) for _, y in data.eval] == [images]  # evaluation sees every image


@pytest.mark.parametrize(("images", "last"), [(34, 2), (40, 8), (39, 7)])
def test_other_last_train_batches_are_kept(images, last):
    sizes = [len(y) for _, y in load_data(f"random:{images}:3x4x4", batch_size=8).train]
    assert sum(sizes) == images and sizes[-1] == last


def test_random_is_seeded_and_used_for_both_splits():
    data = load_data("random:20:3x5x7", eval_batch_size=8)
    assert (data.num_classes, data.input_shape) == (10, (3, 5, 7))
    assert data.train.dataset is data.eval.dataset
    images, labels = data.eval.dataset.tensors
    assert images.shape == (20, 3, 5, 7) and int(labels.max()) < 10
    assert torch.equal(images, load_data("random:20:3x5x7").eval.dataset.tensors[0])


@pytest.mark.parametrize(
    "spec", ["random", "random:", "random:10", "random:10:3", "random:a:1x2x3", "random:5:3x4x4x1"]
)
def test_malformed_random(spec):
    with pytest.raises(UserError, match=r"expected random:N:CxHxW, e\.g\. random:256:3x32x32"):
        load_data(spec)


@pytest.mark.parametrize("spec", ["random:0:3x4x4", "random:4:0x4x4"])
def test_random_needs_positive_sizes(spec):
    with pytest.raises(UserError, match="must be positive"):
        load_data(spec)


def test_tensor_file_used_for_both_splits(tmp_path):
    path = tmp_path / "set.pt"
    torch.save(
        {"images": torch.rand(6, 2, 4, 4, dtype=torch.float64), "labels": torch.tensor([0, 1, 4, 1, 0, 2])},
        path,
    )
    data = load_data(f"tensor:{path}")
    assert (data.num_classes, data.input_shape) == (5, (2, 4, 4))
    images, labels = first_batch(data)
    assert images.dtype == torch.float32 and labels.tolist() == [0, 1, 4, 1, 0, 2]
    assert len(data.train.dataset) == 6


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ([torch.zeros(1)], "expected a dict with 'images' and 'labels'"),
        ({"images": torch.zeros(2, 1, 2, 2)}, "expected a dict with 'images' and 'labels'"),
        (
            {"images": torch.zeros(2, 2), "labels": torch.zeros(2, dtype=torch.long)},  # N x C x L is 1-D
            "'images' must be a float",
        ),
        (
            {"images": torch.zeros(2, 1, 2, 2, dtype=torch.uint8), "labels": torch.zeros(2).long()},
            "'images' must be",
        ),
        ({"images": torch.zeros(2, 1, 2, 2), "labels": torch.zeros(2)}, "'labels' must be a long"),
        ({"images": torch.zeros(2, 1, 2, 2), "labels": torch.zeros(2, 1).long()}, "'labels' must be a long"),
        ({"images": torch.zeros(3, 1, 2, 2), "labels": torch.zeros(2).long()}, "3 images but 2 labels"),
        ({"images": torch.zeros(0, 1, 2, 2), "labels": torch.zeros(0).long()}, "holds no images"),
        ({"images": torch.zeros(2, 1, 2, 2), "labels": torch.tensor([0, -1])}, "class indices >= 0"),
    ],
)
def test_bad_tensor_files(tmp_path, content, expected):
    path = tmp_path / "set.pt"
    torch.save(content, path)
    with pytest.raises(UserError, match=expected):
        load_data(f"tensor:{path}")


def test_tensor_file_missing_or_refused(tmp_path):
    with pytest.raises(UserError, match="data file not found"):
        load_data(f"tensor:{tmp_path}/absent.pt")
    marker = tmp_path / "marker"
    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps(Exploit(marker)))
    with pytest.raises(UserError, match="refused to load data file .*weights_only=True"):
        load_data(f"tensor:{path}")
    assert not marker.exists()


class Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


# --- torchvision folders, faked on disk in the real formats ---


def write_idx(path: Path, array: np.ndarray) -> None:
    magic = 0x0800 + array.ndim  # 0x08: unsigned bytes
    header = struct.pack(">I", magic) + b"".join(struct.pack(">I", size) for size in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def write_mnist(root: Path, folder_name: str) -> None:
    raw = root / folder_name / "raw"
    raw.mkdir(parents=True)
    for prefix, count in (("train", 5), ("t10k", 3)):
        write_idx(raw / f"{prefix}-images-idx3-ubyte", np.full((count, 28, 28), 255))
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", np.arange(count))


@pytest.mark.parametrize(("kind", "folder_name"), [("mnist", "MNIST"), ("fashion-mnist", "FashionMNIST")])
def test_mnist_folders(tmp_path, kind, folder_name):
    write_mnist(tmp_path, folder_name)
    data = load_data(f"{kind}:{tmp_path}")
    assert (data.num_classes, data.input_shape) == (10, (1, 28, 28))
    assert (len(data.train.dataset), len(data.eval.dataset)) == (5, 3)
    images, labels = first_batch(data)
    assert bool((images == 1.0).all()) and labels.tolist() == [0, 1, 2]


@pytest.mark.parametrize("missing", MNIST_FILES)
def test_mnist_incomplete_folder_names_the_missing_file(tmp_path, missing):
    write_mnist(tmp_path, "MNIST")
    (tmp_path / "MNIST" / "raw" / missing).unlink()
    with pytest.raises(
        UserError, match=f"expected {tmp_path}/MNIST/raw/{missing} \\(prunetui never downloads"
    ):
        load_data(f"mnist:{tmp_path}")


def test_mnist_folder_is_not_fashion_mnist(tmp_path):
    write_mnist(tmp_path, "MNIST")
    with pytest.raises(UserError, match="FashionMNIST/raw/train-images-idx3-ubyte"):
        load_data(f"fashion-mnist:{tmp_path}")


def test_malformed_idx_file(tmp_path):
    write_mnist(tmp_path, "MNIST")
    (tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x00\x00garbage")
    with pytest.raises(UserError, match="cannot read the idx files"):
        load_data(f"mnist:{tmp_path}")


def write_images(root: Path, classes: dict[str, int], size: tuple[int, int] = (6, 5)) -> None:
    for name, count in classes.items():
        (root / name).mkdir(parents=True)
        for i in range(count):
            Image.new("RGB", size, (40 * i, 100, 200)).save(root / name / f"{i}.png")


def test_imagefolder(tmp_path):
    write_images(tmp_path / "train", {"cat": 2, "dog": 3, "eel": 1})
    write_images(tmp_path / "val", {"cat": 1, "dog": 1, "eel": 1})
    data = load_data(f"imagefolder:{tmp_path}")
    assert (data.num_classes, data.input_shape) == (3, (3, 5, 6))
    assert (len(data.train.dataset), len(data.eval.dataset)) == (6, 3)
    images, labels = first_batch(data)
    assert labels.tolist() == [0, 1, 2]
    assert torch.allclose(images[0, :, 0, 0], torch.tensor([0, 100, 200]) / 255)


def test_imagefolder_missing_split(tmp_path):
    write_images(tmp_path / "train", {"cat": 1})
    with pytest.raises(UserError, match=f"expected a folder {tmp_path}/val with one subfolder per class"):
        load_data(f"imagefolder:{tmp_path}")


@pytest.mark.parametrize(
    ("make_val", "expected"),
    [
        (lambda val: val.mkdir(), "no class folders in {root}/val"),
        (lambda val: (val / "cat").mkdir(parents=True), "class folders with no image in {root}/val: cat"),
    ],
)
def test_imagefolder_empty_split(tmp_path, make_val, expected):
    write_images(tmp_path / "train", {"cat": 1})
    make_val(tmp_path / "val")
    with pytest.raises(UserError, match=expected.format(root=tmp_path)):
        load_data(f"imagefolder:{tmp_path}")


def test_imagefolder_classes_must_match(tmp_path):
    write_images(tmp_path / "train", {"cat": 1, "dog": 1})
    write_images(tmp_path / "val", {"dog": 1})
    with pytest.raises(UserError, match="same class folders"):
        load_data(f"imagefolder:{tmp_path}")


def test_imagefolder_mixed_sizes_fail_clearly(tmp_path):
    write_images(tmp_path / "train", {"cat": 1})
    write_images(tmp_path / "train", {"dog": 1}, size=(9, 9))
    write_images(tmp_path / "val", {"cat": 1, "dog": 1})
    with pytest.raises(UserError, match=r"images differ in size \(.+ is 6x5, .+dog.+ is 9x9\)"):
        load_data(f"imagefolder:{tmp_path}")  # found before any job, from the image headers


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            "mnist-ish:x",
            "unknown data spec 'mnist-ish:x': expected one of digits, cifar10, mnist, fashion-mnist",
        ),
        ("", "unknown data spec"),
        ("digits:extra", "'digits' takes no argument"),
        ("cifar10:", "expected cifar10:DIR"),
        ("mnist", "expected mnist:DIR"),
        ("imagefolder:", "expected imagefolder:DIR"),
        ("tensor:", "expected tensor:FILE.pt"),
    ],
)
def test_bad_specs(spec, expected):
    with pytest.raises(UserError, match=expected):
        load_data(spec)


def test_batch_sizes_must_be_positive():
    with pytest.raises(UserError, match="batch sizes must be positive"):
        load_data("random:4:1x2x2", batch_size=0)


def test_help_lists_every_kind():
    for form in [
        "digits",
        "cifar10:DIR",
        "mnist:DIR",
        "fashion-mnist:DIR",
        "imagefolder:DIR",
        "tensor:FILE.pt",
        "random:N:CxHxW",
    ]:
        assert form in DATA_HELP
