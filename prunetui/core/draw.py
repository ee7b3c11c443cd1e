"""A fixed draw of training batches, for the jobs that read a few of them without training (Taylor
scores, BatchNorm recalibration): the same weights and data always give the same result, and the
caller's loader, its generator and the global generator are left as they were."""

from collections.abc import Iterable, Iterator

import torch
from torch.utils.data import DataLoader

SEED = 0


def fixed_order(batches: Iterable, seed: int = SEED) -> Iterable:
    """A DataLoader re-made over the same dataset with its own seeded shuffle (the caller's loader
    and its generator are not touched); any other iterable is read as it comes."""
    if not isinstance(batches, DataLoader):
        return batches
    return DataLoader(
        batches.dataset,
        batch_size=batches.batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(seed),
        collate_fn=batches.collate_fn,
        drop_last=batches.drop_last,
    )


def first_batches(batches: Iterable, count: int, seed: int = SEED) -> Iterator:
    """The first `count` batches of the fixed order. Augmentations draw from torch's global
    generator: it is seeded for the draw and put back after (fork_rng)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for i, batch in enumerate(fixed_order(batches, seed)):
            if i == count:
                return
            yield batch
