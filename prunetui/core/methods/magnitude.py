"""The lab's method: a weight's importance is its magnitude |w| (MIT EfficientML.ai lab 1)."""

import torch

from prunetui.core.methods.base import Criterion, Scoring
from prunetui.core.methods.fine_grained import FineGrained


class Magnitude(Criterion):
    name = "magnitude"

    def scores(self, scoring: Scoring) -> dict[str, torch.Tensor]:
        return {name: scoring.state[name].detach().abs() for name in scoring.names}

    def weight_cut(self, weight: torch.Tensor, scores: torch.Tensor, sparsity: float) -> float | None:
        return self.threshold(scores, sparsity)


class MagnitudeMethod(FineGrained):
    """Fine-grained, smallest |w| pruned (the lab's rule); AGP re-ranks by |w| at each update."""

    name = "magnitude"
    criterion = Magnitude()
