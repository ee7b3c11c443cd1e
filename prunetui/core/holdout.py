"""A search split and a held-out split of the evaluation images, so that a search reports an accuracy it
did not choose on.

A planner that picks the best of many candidates on some images and reports its accuracy on the same
images reports the maximum of noisy estimates: an optimistic figure (the winner's curse of model
selection). Here the evaluation images are split once, by a seeded permutation of their indices, into
images the search may look at and images only the final report reads.

- A loader over a sized dataset (a torch DataLoader) is split by index into two loaders of the same
  batch size and collate function, nothing read up front.
- Anything else (an iterable of batches) is read once into memory and split the same way.
"""

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, Subset, TensorDataset

HELD_OUT_SHARE = 0.5  # of the evaluation images, kept out of the search
SEED = 0


@dataclass(frozen=True)
class EvalSplit:
    """`search` and `held_out` batches of (images, labels), disjoint, together every evaluation image;
    their image counts (for standard errors: core.evaldata.standard_error)."""

    search: Iterable
    held_out: Iterable
    search_images: int
    held_out_images: int
    share: float
    seed: int

    @property
    def key(self) -> str:
        """What the search images are, for cache keys (scans on them are other scans)."""
        return f"search split: {self.share:g} held out, seed {self.seed}"


def split_indices(count: int, share: float = HELD_OUT_SHARE, seed: int = SEED) -> tuple[list[int], list[int]]:
    """(search, held-out) indices of `count` images: a seeded permutation, the held-out part the first
    round(count x share) of it (at least 1 of each when count >= 2), each part in increasing order.
    Raises ValueError for a share outside (0, 1) or fewer than 2 images."""
    if not 0.0 < share < 1.0:
        raise ValueError(f"the held-out share must be in (0, 1), got {share}")
    if count < 2:
        raise ValueError(f"a search and a held-out split need 2 evaluation images or more, got {count}")
    order = torch.randperm(count, generator=torch.Generator().manual_seed(seed)).tolist()
    held = min(count - 1, max(1, round(count * share)))
    return sorted(order[held:]), sorted(order[:held])


def split_eval(batches: Iterable, share: float = HELD_OUT_SHARE, seed: int = SEED) -> EvalSplit:
    """Split the evaluation `batches` (module docstring). ValueError as `split_indices`."""
    dataset = getattr(batches, "dataset", None)
    if (
        isinstance(batches, DataLoader)
        and isinstance(dataset, Dataset)
        and not isinstance(dataset, IterableDataset)
    ):
        search, held = split_indices(len(dataset), share, seed)

        def loader(indices: list[int]) -> DataLoader:
            return DataLoader(Subset(dataset, indices), batch_size=batches.batch_size or 1,
                              shuffle=False, collate_fn=batches.collate_fn, num_workers=batches.num_workers)  # fmt: skip

        return EvalSplit(loader(search), loader(held), len(search), len(held), share, seed)
    images, labels, size = _read(batches)
    search, held = split_indices(len(labels), share, seed)

    def held_batches(indices: list[int]) -> DataLoader:
        index = torch.tensor(indices)
        return DataLoader(TensorDataset(images[index], labels[index]), batch_size=size, shuffle=False)

    return EvalSplit(held_batches(search), held_batches(held), len(search), len(held), share, seed)


def _read(batches: Iterable) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Every image and label, and the first batch's size (the batch size of the two splits)."""
    images, labels = [], []
    for x, y in batches:
        images.append(x.detach().cpu())
        labels.append(y.detach().cpu())
    if not images:
        raise ValueError("the evaluation split is empty")
    return torch.cat(images), torch.cat(labels), max(1, len(labels[0]))
