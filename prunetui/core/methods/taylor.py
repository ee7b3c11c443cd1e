"""First-order Taylor importance: |w * dL/dw| summed over a few training batches.

Molchanov et al. 2019, "Importance Estimation for Neural Network Pruning" (CVPR): the first-order
estimate of the loss change when a weight is removed. The gradients are taken in eval mode (BatchNorm
uses its running statistics and keeps them; dropout is off) on a fixed draw of training batches, so
the same weights and data always give the same scores, and the model is never modified.
"""

from collections.abc import Iterable, Mapping, Sequence
from contextlib import contextmanager
from threading import Event

import torch
from torch import nn
from torch.func import functional_call
from torch.nn import functional as F

from prunetui.core.events import check_cancel
from prunetui.core.methods.base import Criterion
from prunetui.core.outputs import logits_of
from prunetui.errors import UserError

BATCHES = 8  # training batches the scores are summed over
SEED = 0  # the draw of those batches (shuffling, augmentation) is fixed


class Taylor(Criterion):
    name = "taylor"
    needs_data = True
    summary = f"fine-grained, smallest |w * dL/dw| over {BATCHES} training batches pruned (Molchanov 2019)"

    def __init__(self, batches: int = BATCHES):
        self.batch_count = batches

    def scores(
        self,
        model: nn.Module,
        state: Mapping[str, torch.Tensor],
        names: Sequence[str],
        batches: Iterable | None = None,
        cancel: Event | None = None,
    ) -> dict[str, torch.Tensor]:
        if batches is None:
            raise UserError(
                "the taylor method scores weights with training batches: give a data spec (--data)"
            )
        device = next(model.parameters()).device
        leaves = {name: state[name].detach().to(device).clone().requires_grad_(True) for name in names}
        tensors = {key: value.to(device) for key, value in state.items()} | leaves
        totals = {name: torch.zeros_like(leaf) for name, leaf in leaves.items()}
        was_training = model.training
        model.eval()
        try:
            with _fixed_draw(batches), torch.enable_grad():
                for images, labels in _first(batches, self.batch_count):
                    check_cancel(cancel)
                    output = functional_call(model, tensors, (images.to(device),))
                    loss = F.cross_entropy(logits_of(output), labels.to(device))
                    grads = torch.autograd.grad(loss, list(leaves.values()), allow_unused=True)
                    for (name, leaf), grad in zip(leaves.items(), grads, strict=True):
                        if grad is not None:
                            totals[name] += (leaf.detach() * grad).abs()
        finally:
            model.train(was_training)
        return totals


@contextmanager
def _fixed_draw(batches: Iterable):
    """The same batches every time: torch's global generator and the loader's own (if it has one)
    seeded with SEED for the draw, then put back, so the training that follows draws as it would have."""
    generators = {id(g): g for g in (getattr(batches, "generator", None), _sampler_generator(batches)) if g}
    states = {key: g.get_state() for key, g in generators.items()}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        for g in generators.values():
            g.manual_seed(SEED)
        try:
            yield
        finally:
            for key, g in generators.items():
                g.set_state(states[key])


def _sampler_generator(batches: Iterable) -> torch.Generator | None:
    return getattr(getattr(batches, "sampler", None), "generator", None)


def _first(batches: Iterable, count: int):
    for i, batch in enumerate(batches):
        if i == count:
            return
        yield batch
