"""Fine-grained magnitude pruning with the lab's exact rule, and the masks that hold it."""

import torch
from torch import nn

from prunetui.core.layers import prunable_parameters

Masks = dict[str, torch.Tensor]  # parameter name -> bool tensor, True = weight kept


def magnitude_mask(weight: torch.Tensor, sparsity: float) -> torch.Tensor:
    """The lab's rule: zero the k = round(n * s) smallest magnitudes, ties at the threshold included.

    s is clamped to [0, 1]; s == 1 zeroes everything; k == 0 keeps everything; otherwise the
    threshold is the k-th smallest |w| and a weight is kept only if |w| > threshold (strict).
    """
    sparsity = min(max(float(sparsity), 0.0), 1.0)
    if sparsity == 1.0:
        return torch.zeros_like(weight, dtype=torch.bool)
    k = round(weight.numel() * sparsity)
    if k == 0:
        return torch.ones_like(weight, dtype=torch.bool)
    magnitude = weight.detach().abs()
    threshold = magnitude.flatten().float().kthvalue(k).values.to(magnitude.dtype)
    return magnitude > threshold


def magnitude_threshold(weight: torch.Tensor, sparsity: float) -> float:
    """The |w| below or at which `magnitude_mask` prunes (0.0 when nothing is pruned)."""
    sparsity = min(max(float(sparsity), 0.0), 1.0)
    k = round(weight.numel() * sparsity)
    if k == 0:
        return 0.0
    return float(weight.detach().abs().flatten().float().kthvalue(k).values)


def compute_masks(model: nn.Module, targets: dict[str, float]) -> Masks:
    """Masks for every prunable tensor with a target > 0 (others are left unmasked)."""
    params = prunable_parameters(model)
    return {name: magnitude_mask(params[name], s) for name, s in targets.items() if s > 0}


@torch.no_grad()
def apply_masks(model: nn.Module, masks: Masks) -> None:
    """Zero the pruned weights in place (after pruning and after every optimizer step)."""
    params = dict(model.named_parameters())
    for name, mask in masks.items():
        param = params[name]
        param.mul_(mask.to(device=param.device, dtype=param.dtype))


def prune(model: nn.Module, targets: dict[str, float]) -> Masks:
    """Compute the masks of `targets` on the current weights, apply them, and return them."""
    masks = compute_masks(model, targets)
    apply_masks(model, masks)
    return masks


def mask_sparsity(masks: Masks) -> dict[str, float]:
    """Fraction of weights each mask removes."""
    return {name: 1.0 - float(mask.sum()) / mask.numel() for name, mask in masks.items()}


def compound(current: float, beta: float) -> float:
    """The blog's rule for the next run: target = current + (1 - current) * beta."""
    return current + (1.0 - current) * beta
