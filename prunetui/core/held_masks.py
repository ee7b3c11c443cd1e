"""Masks held through training: the pruned weights of a model stay exactly zero while it learns.

After every optimizer step each parameter is multiplied by its 0/1 mask (1 = kept). The masks are made
once, each a tensor of its parameter's device, dtype and memory layout. On CUDA all of them are then
re-applied in one multi-tensor multiply (`torch._foreach_mul_`): a few kernel launches for the whole
model instead of one a layer, host time a step that shows on a fast GPU. On the CPU that costs more
than a multiply a layer (about 4 us a step more on the 9-layer model of benchmarks/finetune_overhead.py),
so there it is a multiply a layer.
"""

import torch
from torch import nn

from prunetui.core.pruning import Masks

HeldMasks = list[tuple[nn.Parameter, torch.Tensor]]  # (parameter, its 0/1 mask of the same shape)
FOREACH_DEVICES = ("cuda",)  # device types whose foreach multiply is fused (one launch per chunk)


def masks_like_params(model: nn.Module, masks: Masks) -> Masks:
    """Each mask (any dtype, True or nonzero = kept) as a 0/1 tensor of its parameter's device, dtype
    and memory layout; KeyError for a name that is not a parameter of `model`."""
    params = dict(model.named_parameters())
    return {name: torch.empty_like(params[name]).copy_(mask) for name, mask in masks.items()}


def hold_masks(model: nn.Module, masks: Masks) -> HeldMasks:
    """(parameter, mask) pairs: applied by identity, so the same whether the model is trained wrapped
    (DDP names its parameters `module.*`) or not."""
    params = dict(model.named_parameters())
    return [(params[name], mask) for name, mask in masks_like_params(model, masks).items()]


@torch.no_grad()
def reapply(held: HeldMasks) -> None:
    """Multiply each parameter by its mask, in place: `param.mul_(mask)` for every pair, and what that
    raises (a mask of another shape).

    When the first parameter is on a FOREACH_DEVICES device, all pairs go through one
    `torch._foreach_mul_`. Its fused path needs every tensor on one device with one dtype and layout,
    as `hold_masks` makes them for a model of one device and dtype; for any other list (a model split
    over devices or of mixed dtypes, a mask of another dtype) it multiplies pair by pair, the same
    values.
    """
    if not held:
        return
    if held[0][0].device.type in FOREACH_DEVICES:
        torch._foreach_mul_([param for param, _ in held], [mask for _, mask in held])
        return
    for param, mask in held:
        param.mul_(mask)
