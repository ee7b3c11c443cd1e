"""How the multiply-accumulates of every conv and linear layer scale with the channel groups' widths: the
part of a profile's cost that per-group measurements cannot add up.

A conv between two narrowed groups shrinks in its inputs and its outputs, so its cost scales with the
product of the two widths; each group measured alone sees one factor, and adding the two savings counts
the product's cross term twice (two groups at half width: the additive rule predicts the conv's cost
gone, it is a quarter left). This module counts the cross terms: each layer's dense MACs (a forward hook
at batch 1: output elements per image x weight elements per output channel, the lab's count for convs
and linears), and how many of its output (weight dim 0) and per-group input (weight dim 1) channels go
per channel removed from each group, read from the shapes of copies pruned by core.channel (so residual
partners, depthwise convs and concatenations come out as they are pruned).

`MacModel.interaction(widths)`: the MAC fraction of dense of the whole profile minus what adding each
group's own MAC saving predicts; core.latency_model scales it by the share of latency that follows MACs.
"""

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from prunetui.core.cost import evaluating, one_input


@dataclass
class LayerMacs:
    """A conv or linear layer: its share of the dense MACs, its weight's dims 0 and 1 dense, and per group
    the channels of each dim removed per channel removed from the group."""

    share: float
    out: int
    inner: int
    out_per: dict[str, float] = field(default_factory=dict)
    inner_per: dict[str, float] = field(default_factory=dict)

    def fraction(self, removed: Mapping[str, int]) -> float:
        """Its MACs as a fraction of dense with `removed` channels per group (linear in each)."""
        out = max(0.0, self.out - sum(r * removed.get(g, 0) for g, r in self.out_per.items()))
        inner = max(0.0, self.inner - sum(r * removed.get(g, 0) for g, r in self.inner_per.items()))
        return (out / self.out) * (inner / self.inner)


@dataclass
class MacModel:
    layers: dict[str, LayerMacs]

    def fraction(self, widths: Mapping[str, int], channels: Mapping[str, int]) -> float:
        """The profile's MACs (conv and linear layers) as a fraction of dense."""
        removed = {g: channels[g] - w for g, w in widths.items() if g in channels}
        return sum(layer.share * layer.fraction(removed) for layer in self.layers.values())

    def interaction(self, widths: Mapping[str, int], channels: Mapping[str, int]) -> float:
        """fraction(profile) - (1 + sum over groups of (fraction(group alone) - 1)): >= 0 for chains."""
        alone = sum(self.fraction({g: w}, channels) - 1.0 for g, w in widths.items() if g in channels)
        return self.fraction(widths, channels) - (1.0 + alone)

    def as_json(self) -> dict:
        return {name: asdict(layer) for name, layer in self.layers.items()}

    @classmethod
    def from_json(cls, stored: dict) -> "MacModel":
        return cls({name: LayerMacs(**layer) for name, layer in stored.items()})


def _weighted(model: nn.Module) -> dict[str, nn.Module]:
    return {
        name: m
        for name, m in model.named_modules()
        if isinstance(m, nn.Conv1d | nn.Conv2d | nn.Conv3d | nn.Linear)
    }


def dense_macs(model: nn.Module, example: torch.Tensor) -> dict[str, int]:
    """MACs per conv and linear layer for one input (batch 1), by forward hooks."""
    found: dict[str, int] = {}
    hooks = []
    for name, module in _weighted(model).items():

        def hook(module, inputs, output, name=name) -> None:
            if isinstance(output, torch.Tensor):
                per_output = module.weight[0].numel()
                found[name] = found.get(name, 0) + output[0].numel() * per_output

        hooks.append(module.register_forward_hook(hook))
    try:
        with evaluating(model):
            model(one_input(example, model))
    finally:
        for handle in hooks:
            handle.remove()
    return found


def mac_model(
    base: nn.Module,
    example: torch.Tensor,
    narrowest: Mapping[str, tuple[nn.Module, int]],
    channels: Mapping[str, int],
) -> MacModel:
    """The MAC model of `base`: dense MACs per layer, and per group (`narrowest`: group -> (a copy with
    only that group pruned, its width)) the channels each layer loses per channel removed."""
    macs = dense_macs(base, example)
    total = sum(macs.values()) or 1
    modules = _weighted(base)
    layers = {
        name: LayerMacs(count / total, modules[name].weight.shape[0], modules[name].weight.shape[1])
        for name, count in macs.items()
    }
    for group, (copy, width) in narrowest.items():
        removed = channels[group] - width
        if removed <= 0:
            continue
        pruned = _weighted(copy)
        for name, layer in layers.items():
            weight = pruned[name].weight if name in pruned else None
            if weight is None:
                continue
            if weight.shape[0] != layer.out:
                layer.out_per[group] = (layer.out - weight.shape[0]) / removed
            if weight.shape[1] != layer.inner:
                layer.inner_per[group] = (layer.inner - weight.shape[1]) / removed
    return MacModel(layers)
