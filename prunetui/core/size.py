"""Model size as the lab counts it: nonzero parameters (BN and biases included) x bit width."""

from collections.abc import Callable, Mapping

import torch
from torch import nn

from prunetui.core.pruning import magnitude_mask

MIB = 2**20 * 8  # bits in a MiB
BITS = 32


def dense_size_mib(model: nn.Module, bit_width: int = BITS) -> float:
    """Every parameter counted, zero or not."""
    return sum(p.numel() for p in model.parameters()) * bit_width / MIB


@torch.no_grad()
def sparse_size_mib(model: nn.Module, bit_width: int = BITS) -> float:
    """Nonzero parameters only (buffers are not parameters and never count)."""
    return sum(int(torch.count_nonzero(p)) for p in model.parameters()) * bit_width / MIB


def percent_of_dense(sparse_mib: float, dense_mib: float) -> float:
    return sparse_mib / dense_mib * 100.0


@torch.no_grad()
def projected_size_mib(
    params: Mapping[str, torch.Tensor],
    targets: Mapping[str, float],
    kept: Callable[[str, float], int] | None = None,
    bit_width: int = BITS,
) -> float:
    """Size after pruning `params` (name -> tensor, every parameter of a model) to `targets`.

    Nothing is modified. A tensor with dim > 1 and target s > 0 counts exactly the weights the lab's
    rule keeps (ties included); every other tensor counts its nonzeros. `kept(name, s)` may supply
    those counts from a cache.
    """
    count = 0
    for name, p in params.items():
        s = targets.get(name, 0.0) if p.dim() > 1 else 0.0
        if s > 0:
            count += kept(name, s) if kept else kept_count(p, s)
        else:
            count += int(torch.count_nonzero(p))
    return count * bit_width / MIB


def kept_count(weight: torch.Tensor, sparsity: float) -> int:
    """How many weights the lab's rule keeps at `sparsity` (exact, ties included)."""
    return int(magnitude_mask(weight, sparsity).sum())
