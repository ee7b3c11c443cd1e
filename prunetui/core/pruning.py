"""The lab's fine-grained pruning rule on importance scores, and the masks that hold it.

A criterion (core.methods) scores every weight; this module turns scores into masks with the lab's
exact rule (MIT EfficientML.ai lab 1, `fine_grained_prune`) and applies them. Magnitude pruning is the
rule on |w|.
"""

import torch
from torch import nn

Masks = dict[str, torch.Tensor]  # parameter name -> bool tensor, True = weight kept


def _clamp(sparsity: float) -> float:
    return min(max(float(sparsity), 0.0), 1.0)


def lab_mask(scores: torch.Tensor, sparsity: float) -> torch.Tensor:
    """The lab's rule on `scores` (same shape as the weight, >= 0): prune the k = round(n * s) lowest.

    s is clamped to [0, 1]; s == 1 prunes everything; k == 0 keeps everything; otherwise the
    threshold is the k-th smallest score (kthvalue) and a weight is kept only if its score is greater
    (strict), so every tie at the threshold is pruned. Returns a bool tensor, True = kept.
    """
    sparsity = _clamp(sparsity)
    if sparsity == 1.0:
        return torch.zeros_like(scores, dtype=torch.bool)
    k = round(scores.numel() * sparsity)
    if k == 0:
        return torch.ones_like(scores, dtype=torch.bool)
    scores = scores.detach()
    threshold = scores.flatten().float().kthvalue(k).values.to(scores.dtype)
    return scores > threshold


def lab_threshold(scores: torch.Tensor, sparsity: float) -> float:
    """The score at or below which `lab_mask` prunes (0.0 when nothing is pruned)."""
    k = round(scores.numel() * _clamp(sparsity))
    if k == 0:
        return 0.0
    return float(scores.detach().flatten().float().kthvalue(k).values)


def magnitude_mask(weight: torch.Tensor, sparsity: float) -> torch.Tensor:
    """The lab's `fine_grained_prune`: the rule on |w| (the `magnitude` method)."""
    return lab_mask(weight.detach().abs(), sparsity)


def magnitude_threshold(weight: torch.Tensor, sparsity: float) -> float:
    """The |w| below or at which `magnitude_mask` prunes (0.0 when nothing is pruned)."""
    return lab_threshold(weight.detach().abs(), sparsity)


def masks_from_scores(scores: dict[str, torch.Tensor], targets: dict[str, float]) -> Masks:
    """Masks for every tensor with a target > 0 (others are left unmasked)."""
    return {name: lab_mask(scores[name], s) for name, s in targets.items() if s > 0}


@torch.no_grad()
def apply_masks(model: nn.Module, masks: Masks) -> None:
    """Zero the pruned weights in place (after pruning and after every optimizer step)."""
    params = dict(model.named_parameters())
    for name, mask in masks.items():
        param = params[name]
        param.mul_(mask.to(device=param.device, dtype=param.dtype))


def prune(
    model: nn.Module, targets: dict[str, float], scores: dict[str, torch.Tensor] | None = None
) -> Masks:
    """Mask the current weights to `targets` by `scores` (default: |w|, the lab's rule), apply, return them."""
    if scores is None:
        params = dict(model.named_parameters())
        scores = {name: params[name].detach().abs() for name, s in targets.items() if s > 0}
    masks = masks_from_scores(scores, targets)
    apply_masks(model, masks)
    return masks


def existing_zeros(params: dict[str, torch.Tensor]) -> Masks:
    """Masks of the zeros already in the tensors that have some (a pruned checkpoint, an export of an
    earlier run): True = nonzero. They are part of the starting state, held like any mask."""
    masks = {name: p.detach() != 0 for name, p in params.items()}
    return {name: mask for name, mask in masks.items() if not bool(mask.all())}


def hold(masks: Masks, held: Masks) -> Masks:
    """`masks` with every weight `held` prunes kept pruned, and the layers only `held` masks added."""
    combined = {name: mask & held[name] if name in held else mask for name, mask in masks.items()}
    return {**held, **combined}


def mask_sparsity(masks: Masks) -> dict[str, float]:
    """Fraction of weights each mask removes."""
    return {name: 1.0 - float(mask.sum()) / mask.numel() for name, mask in masks.items()}


def compound(current: float, beta: float) -> float:
    """The blog's rule for the next run: target = current + (1 - current) * beta, `current` being the
    sparsity the layer is pruned to now (the blog's SPARSITY_PREV)."""
    return current + (1.0 - current) * beta
