"""One epoch of CIFAR-10 train batches: the lab's loader vs prunetui's, side by side, as a ratio.

- Lab: torchvision's CIFAR10 with RandomCrop(32, padding=4), RandomHorizontalFlip and ToTensor per
  image (PIL), batched by default_collate.
- prunetui: `load_data("cifar10:DIR").train`: uint8 images stacked by the collate, then ToTensor's
  scaling and the same crop and flip on the whole batch at once (core/augment.py).

Both read one fake CIFAR-10 folder (random pixels in the official file format) written to a temporary
folder, with torchvision's md5 check skipped for it (fakes cannot match the official release; prunetui
keeps the check on for real folders). Sides run in ABBA order after an untimed batch of each; wall and
CPU seconds (this process, all threads: DataLoader workers are other processes) are means over rounds.

    .venv/bin/python benchmarks/augment.py                  # 10,000 images, batch 128, no workers
    .venv/bin/python benchmarks/augment.py --threads 1      # as in a DataLoader worker (torch sets 1)
    .venv/bin/python benchmarks/augment.py --workers 2
"""

import argparse
import contextlib
import pickle
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from timing import abba, means, timed  # noqa: E402

from prunetui.sources import load_data  # noqa: E402


@contextlib.contextmanager
def fake_cifar(images: torch.Tensor, labels: torch.Tensor) -> Iterator[str]:
    """A temporary folder holding cifar-10-batches-py in the official format: `images` (N x 3 x 32 x 32
    uint8) and `labels` (N) split over the five train batches, the first 1,000 again as the test batch.
    Inside the block torchvision's CIFAR10 skips its md5 check; the folder is removed after."""
    from torchvision.datasets import CIFAR10

    rows, targets = images.reshape(len(images), -1).numpy(), labels.tolist()
    saved = CIFAR10.train_list, CIFAR10.test_list, CIFAR10.meta
    with tempfile.TemporaryDirectory() as root:
        folder = Path(root) / "cifar-10-batches-py"
        folder.mkdir()
        parts = np.array_split(np.arange(len(rows)), 5)
        batches = {f"data_batch_{i + 1}": part for i, part in enumerate(parts)}
        batches["test_batch"] = np.arange(min(len(rows), 1000))
        for name, index in batches.items():
            content = {"data": rows[index], "labels": [targets[i] for i in index]}
            (folder / name).write_bytes(pickle.dumps(content, protocol=2))
        (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": [f"c{i}" for i in range(10)]}))
        CIFAR10.train_list = [[name, None] for name, _ in saved[0]]
        CIFAR10.test_list = [[name, None] for name, _ in saved[1]]
        CIFAR10.meta = {**saved[2], "md5": None}
        try:
            yield root
        finally:
            CIFAR10.train_list, CIFAR10.test_list, CIFAR10.meta = saved


def lab_loader(root: str, batch_size: int, workers: int) -> DataLoader:
    """The lab's CIFAR-10 train loader: torchvision's per-image transforms."""
    from torchvision import datasets, transforms

    steps = [transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip(), transforms.ToTensor()]
    train = datasets.CIFAR10(root, train=True, transform=transforms.Compose(steps), download=False)
    return DataLoader(train, batch_size, shuffle=True, num_workers=workers)


def one_epoch(batches: Iterable) -> int:
    return sum(len(labels) for _, labels in batches)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, help="torch threads of this process (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (args.images, 3, 32, 32), dtype=torch.uint8, generator=generator)
    labels = torch.randint(0, 10, (args.images,), generator=generator)
    with fake_cifar(images, labels) as root:
        loaders = {
            "reference": lab_loader(root, args.batch_size, args.workers),
            "ours": load_data(f"cifar10:{root}", args.batch_size, num_workers=args.workers).train,
        }
    for loader in loaders.values():  # untimed: the first batch of each
        next(iter(loader))
    samples: dict[str, list[tuple[float, float]]] = {"reference": [], "ours": []}
    for side in abba(args.rounds):
        seen, wall, cpu = timed(one_epoch, loaders[side])
        samples[side].append((wall, cpu))
    (lab_wall, lab_cpu), (our_wall, our_cpu) = means(samples["reference"]), means(samples["ours"])
    print(
        f"{seen} images a pass, batch {args.batch_size}, {args.workers} workers, {torch.get_num_threads()} threads"
    )
    print(f"lab (torchvision per image): {lab_wall:.3f} s wall, {lab_cpu:.3f} s CPU")
    print(f"prunetui (per batch):        {our_wall:.3f} s wall, {our_cpu:.3f} s CPU")
    print(f"ratio prunetui / lab: {our_wall / lab_wall:.3f} wall, {our_cpu / lab_cpu:.3f} CPU")


if __name__ == "__main__":
    main()
