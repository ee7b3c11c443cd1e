"""The lab's method: a weight's importance is its magnitude |w| (MIT EfficientML.ai lab 1)."""

from collections.abc import Iterable, Mapping, Sequence
from threading import Event

import torch
from torch import nn

from prunetui.core.methods.base import Criterion
from prunetui.core.methods.fine_grained import FineGrained


class Magnitude(Criterion):
    name = "magnitude"

    def scores(
        self,
        model: nn.Module,
        state: Mapping[str, torch.Tensor],
        names: Sequence[str],
        batches: Iterable | None = None,
        cancel: Event | None = None,
    ) -> dict[str, torch.Tensor]:
        return {name: state[name].detach().abs() for name in names}

    def weight_cut(self, weight: torch.Tensor, scores: torch.Tensor, sparsity: float) -> float | None:
        return self.threshold(scores, sparsity)


class MagnitudeMethod(FineGrained):
    """Fine-grained, smallest |w| pruned (the lab's rule); AGP re-ranks by |w| at each update."""

    name = "magnitude"
    criterion = Magnitude()
