"""Global magnitude pruning: one |w| threshold over every prunable tensor together, the standard
baseline (Han et al. 2015; torch.nn.utils.prune.global_unstructured with L1Unstructured), expressed
as per-layer targets for the lab's per-layer rule, with an optional cap so no layer is emptied."""

from collections.abc import Mapping

import torch


def _pruned_below(magnitudes: torch.Tensor, count: int) -> float | None:
    """The |w| at or below which `count` weights fall (the count-th smallest), None for none."""
    if count <= 0:
        return None
    return float(magnitudes.kthvalue(min(count, magnitudes.numel())).values)


def global_magnitude_targets(
    weights: Mapping[str, torch.Tensor], kept: int, cap: float | None = None
) -> dict[str, float]:
    """Per-layer sparsities that keep `kept` weights of all `weights` (name -> tensor) together: the
    largest |w| anywhere survive. The lab's rule at these targets gives the same masks as
    torch.nn.utils.prune.global_unstructured(amount=n - kept) when no two weights tie.

    `cap` (in [0, 1]): no layer above it; what a capped layer cannot give is taken from the others
    (water-filling), so the total still holds unless every layer is capped.
    """
    if cap is not None and not 0.0 <= cap <= 1.0:
        raise ValueError(f"the per-layer cap must be in [0, 1], got {cap}")
    capped: dict[str, float] = {}
    while True:
        free = [name for name in weights if name not in capped]
        if not free:
            return capped
        kept_in_capped = sum(weights[n].numel() - round(weights[n].numel() * cap) for n in capped)
        magnitudes = torch.cat([weights[n].detach().abs().flatten().float() for n in free])
        threshold = _pruned_below(magnitudes, magnitudes.numel() - (kept - kept_in_capped))
        targets = {
            n: 0.0
            if threshold is None
            else float((weights[n].detach().abs() <= threshold).sum()) / weights[n].numel()
            for n in free
        }
        over = [n for n in free if cap is not None and targets[n] > cap + 1e-12]
        if not over:
            return targets | capped
        capped |= dict.fromkeys(over, cap)
