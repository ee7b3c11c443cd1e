"""Layer discovery: the prunable tensors of a model and their statistics."""

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class LayerInfo:
    """One prunable tensor: a parameter with dim > 1 (conv and linear weights)."""

    name: str  # parameter name, e.g. "backbone.conv3.weight"
    kind: str  # module class name, e.g. "Conv2d"
    shape: tuple[int, ...]
    params: int
    share: float  # fraction of all model parameters
    zero_fraction: float


def prunable_parameters(model: nn.Module) -> dict[str, nn.Parameter]:
    """Every parameter with dim > 1, in `named_parameters()` order."""
    return {name: p for name, p in model.named_parameters() if p.dim() > 1}


def _module_kind(model: nn.Module, param_name: str) -> str:
    module_name = param_name.rpartition(".")[0]
    return type(model.get_submodule(module_name)).__name__ if module_name else type(model).__name__


def describe_layers(model: nn.Module) -> list[LayerInfo]:
    """Statistics of every prunable tensor, in `named_parameters()` order."""
    total = sum(p.numel() for p in model.parameters())
    layers = []
    with torch.no_grad():
        for name, p in prunable_parameters(model).items():
            n = p.numel()
            layers.append(
                LayerInfo(
                    name=name,
                    kind=_module_kind(model, name),
                    shape=tuple(p.shape),
                    params=n,
                    share=n / total,
                    zero_fraction=float((p == 0).sum()) / n,
                )
            )
    return layers
