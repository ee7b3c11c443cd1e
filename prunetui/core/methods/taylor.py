"""First-order Taylor importance: |w * dL/dw| summed over a few training batches.

Molchanov et al. 2019, "Importance Estimation for Neural Network Pruning" (CVPR): the first-order
estimate of the loss change when a weight is removed. The gradients are taken in eval mode (BatchNorm
uses its running statistics; dropout is off) on a private copy of the model, over a fixed draw of
training batches: the same weights and data always give the same scores, and the shared model, its
loader and the loader's generator are never touched (another thread may be training with them).
"""

import copy
from collections.abc import Iterable, Mapping, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from prunetui.core.draw import first_batches
from prunetui.core.events import check_cancel
from prunetui.core.methods.base import Criterion, Scoring
from prunetui.core.methods.fine_grained import FineGrained
from prunetui.core.outputs import logits_of
from prunetui.core.schedule import GradualScores
from prunetui.errors import UserError

BATCHES = 8  # training batches the scores are summed over


class Taylor(Criterion):
    name = "taylor"
    needs_data = True

    def __init__(self, batches: int = BATCHES):
        self.batch_count = batches

    def scores(self, scoring: Scoring) -> dict[str, torch.Tensor]:
        """|w * dL/dw| summed over the first `batch_count` batches of a fixed draw (core.draw), each of
        its weight's shape. Frozen parameters (requires_grad False) are scored like the others: the
        private copy turns gradients on for `names`. Raises UserError without data, when the batches are
        none, and when a layer of `names` gets no gradient at all (None or zero in every batch: a forward
        under torch.no_grad() or .detach(), or a layer the eval-mode forward never uses), naming it: its
        scores would all be 0, so any target would prune every weight (the lab's tie rule)."""
        names, batches, cancel = scoring.names, scoring.batches, scoring.cancel
        if batches is None:
            raise UserError(
                "the taylor method scores weights with training batches: give a data spec (--data)"
            )
        scorer = _private_copy(scoring.model, scoring.state, names)
        params = dict(scorer.named_parameters())
        leaves = [params[name] for name in names]
        totals = {name: torch.zeros_like(params[name]) for name in names}
        reached = {name: torch.zeros((), device=params[name].device) for name in names}  # sum of |grad|
        device = leaves[0].device
        used = 0
        with torch.enable_grad():
            for images, labels in first_batches(batches, self.batch_count):
                check_cancel(cancel)
                loss = F.cross_entropy(logits_of(scorer(images.to(device))), labels.to(device))
                grads = torch.autograd.grad(loss, leaves, allow_unused=True) if loss.requires_grad else []
                for name, leaf, grad in zip(names, leaves, grads, strict=False):
                    if grad is not None:
                        totals[name] += (leaf.detach() * grad).abs()
                        reached[name] += grad.abs().sum()
                used += 1
        if used == 0:
            raise UserError("taylor: the training split gave no batch to score with: add training images")
        _check_gradients(name for name, total in reached.items() if not total > 0)
        return totals


def _check_gradients(unreached: Iterable[str]) -> None:
    """One UserError line naming the layers no gradient reached (at most three, then a count)."""
    names = list(unreached)
    if names:
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        raise UserError(
            f"taylor: no gradient reaches {shown} (a forward under torch.no_grad() or .detach(), or a layer "
            "the forward does not use), so |w * dL/dw| is 0 for every weight: use --method magnitude"
        )


def _private_copy(model: nn.Module, state: Mapping[str, torch.Tensor], names: Sequence[str]) -> nn.Module:
    """A copy of `model` holding `state`, in eval mode, with gradients for `names` only. The shared
    model is never touched: a training job or a scan may be using it on another thread."""
    scorer = copy.deepcopy(model)
    scorer.load_state_dict(state)
    scorer.eval()
    wanted = set(names)
    for name, param in scorer.named_parameters():
        param.requires_grad_(name in wanted)
    return scorer


class TaylorMethod(FineGrained):
    """Fine-grained, smallest |w * dL/dw| over a fixed draw of training batches pruned (Molchanov 2019);
    under an AGP schedule the scores are the finetune's own steps' |w * grad| since the last update."""

    name = "taylor"
    criterion = Taylor()

    def gradual_scores(self) -> GradualScores:
        return GradualScores.taylor()
