"""What every pruning method is: a criterion that scores weights, and a plan that carries it.

Kept apart from the code that applies a plan, as Torch-Pruning keeps `Importance.__call__(group)`
apart from its pruner: a new fine-grained criterion is one subclass with a `scores` method; the
mask, the kept count and the size projection follow from the lab's rule on those scores.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from threading import Event
from typing import ClassVar

import torch
from torch import nn

from prunetui.core.pruning import lab_mask, lab_threshold


class Criterion:
    """A fine-grained pruning criterion: importance scores per weight, then the lab's k and tie rule."""

    name: ClassVar[str]
    needs_data: ClassVar[bool] = False  # True: `scores` reads training batches
    summary: ClassVar[str]  # one line for help texts and the header

    def scores(
        self,
        model: nn.Module,
        state: Mapping[str, torch.Tensor],
        names: Sequence[str],
        batches: Iterable | None = None,
        cancel: Event | None = None,
    ) -> dict[str, torch.Tensor]:
        """Importance of every weight of the tensors `names`, each of its weight's shape, >= 0.

        `state` holds the weights to score (the model's own tensors are never modified): every
        parameter and buffer of `model`, as `state_dict()` names them. `batches`: training
        (images, labels) batches, for criteria that need data. Raises UserError when it cannot score.
        """
        raise NotImplementedError

    def mask(self, scores: torch.Tensor, sparsity: float) -> torch.Tensor:
        """True = kept: the lab's rule on the scores (k = round(n * s), ties at the threshold pruned)."""
        return lab_mask(scores, sparsity)

    def kept(self, scores: torch.Tensor, sparsity: float) -> int:
        """How many weights `mask` keeps (exact, ties included): what the size projection counts."""
        return int(self.mask(scores, sparsity).sum())

    def weight_cut(self, weight: torch.Tensor, scores: torch.Tensor, sparsity: float) -> float | None:
        """The |w| at or below which weights are pruned, when the criterion is |w| itself; else None
        (the weights histogram then marks no single cut)."""
        return None

    def threshold(self, scores: torch.Tensor, sparsity: float) -> float:
        return lab_threshold(scores, sparsity)


@dataclass(frozen=True)
class Plan:
    """How and how much: a method's name and per-layer target sparsities (unlisted layers are 0)."""

    method: str = "magnitude"
    targets: Mapping[str, float] = field(default_factory=dict)

    def active(self) -> dict[str, float]:
        """The layers the plan prunes (target > 0)."""
        return {name: s for name, s in self.targets.items() if s > 0}
