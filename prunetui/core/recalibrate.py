"""BatchNorm recalibration: re-estimate the running statistics of a pruned model without a gradient step.

Pruning shifts every activation's distribution, and the BatchNorm statistics measured on the dense
model no longer fit: most of the "collapse before finetuning" is that, not lost weights. Resetting the
statistics and forwarding a few training batches in train mode (BatchNorm only; dropout stays off)
measures them again. This is NNCF's BN adaptation and the "adaptive BN" candidate evaluation of
EagleEye (Li et al. 2020). The weights and the masks are untouched.
"""

import threading
from collections.abc import Iterable

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from prunetui.core.draw import first_batches
from prunetui.core.events import Progress, Report, check_cancel, ignore

BATCHES = 20  # training batches the statistics are measured on


def batch_norms(model: nn.Module) -> list[_BatchNorm]:
    """The BatchNorm layers that keep running statistics (those without use the batch's own)."""
    return [m for m in model.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]


@torch.no_grad()
def recalibrate_bn(
    model: nn.Module,
    batches: Iterable,
    count: int = BATCHES,
    report: Report = ignore,
    cancel: threading.Event | None = None,
) -> int:
    """Replace every BatchNorm's running mean and variance by their exact average over `count`
    training batches (a fixed draw; momentum None = cumulative average). Returns the batches used
    (0: the model has no BatchNorm with running statistics). Cancelled, the statistics are put back.
    """
    norms = batch_norms(model)
    if not norms:
        return 0
    saved = [(m.momentum, {k: v.clone() for k, v in m.state_dict().items()}) for m in norms]
    was_training, device = model.training, next(model.parameters()).device
    model.eval()
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
        m.train()
    used = 0
    try:
        for images, _labels in first_batches(batches, count):
            check_cancel(cancel)
            model(images.to(device))
            used += 1
            report(Progress("recalibrate BN", used, count))
    except BaseException:
        for m, (_momentum, state) in zip(norms, saved, strict=True):
            m.load_state_dict(state)
        raise
    finally:
        for m, (momentum, _state) in zip(norms, saved, strict=True):
            m.momentum = momentum
        model.train(was_training)
    return used
