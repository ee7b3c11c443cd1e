"""The lab's CIFAR training transforms on batches already on the device: no per-image work on the host.

RandomCrop(32, padding=4) and RandomHorizontalFlip run per image in DataLoader workers, which is what
a GPU finetune on CIFAR-size images waits for. Here a batch is zero-padded once and every image takes
its own random window, mirrored for a random half, in one gather.
"""

import math
from collections.abc import Iterator

import torch
from torch.nn import functional

PADDING = 4  # the lab's RandomCrop(32, padding=4)


def random_crop_flip(
    images: torch.Tensor, padding: int = PADDING, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Each N x C x H x W image: a random H x W window of it zero-padded by `padding`, then mirrored
    left-right with probability 1/2. Random numbers come from `generator` (on the images' device)."""
    n, _, h, w = images.shape
    device = images.device
    padded = functional.pad(images, (padding, padding, padding, padding))
    top = torch.randint(0, 2 * padding + 1, (n, 1), device=device, generator=generator)
    left = torch.randint(0, 2 * padding + 1, (n, 1), device=device, generator=generator)
    flip = torch.rand((n, 1), device=device, generator=generator) < 0.5
    rows = top + torch.arange(h, device=device)
    cols = left + torch.arange(w, device=device)
    cols = torch.where(flip, cols.flip(1), cols)
    batch = torch.arange(n, device=device)[:, None, None, None]
    channels = torch.arange(images.shape[1], device=device)[None, :, None, None]
    return padded[batch, channels, rows[:, None, :, None], cols[:, None, None, :]]


class DeviceTrainBatches:
    """Training batches from images and labels held on the device: reshuffled every pass, each batch
    augmented on the device. Works where a DataLoader of (images, labels) batches does."""

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        batch_size: int,
        augment: bool = True,
        generator: torch.Generator | None = None,
    ):
        self.images, self.labels, self.batch_size = images, labels, batch_size
        self.augment, self.generator = augment, generator

    def __len__(self) -> int:
        return math.ceil(len(self.labels) / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = torch.randperm(len(self.labels), device=self.labels.device, generator=self.generator)
        for start in range(0, len(order), self.batch_size):
            index = order[start : start + self.batch_size]
            images = self.images[index]
            if self.augment:
                images = random_crop_flip(images, generator=self.generator)
            yield images, self.labels[index]
