"""Top-1 accuracy on an evaluation split, in the split's own batches (the batching every accuracy
follows: core.evaldata)."""

from collections.abc import Iterable
from threading import Event

import torch
from torch import nn

from prunetui.core.events import Progress, Report, batch_count, batch_detail, check_cancel, ignore
from prunetui.core.outputs import logits_of


def model_device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.inference_mode()
def evaluate(
    model: nn.Module, batches: Iterable, report: Report = ignore, cancel: Event | None = None
) -> float:
    """Top-1 accuracy in % over `batches` of (images, labels), on the model's device.

    Raises Cancelled between batches when `cancel` is set. The model is left in eval mode.
    """
    correct, seen = count_correct(model, batches, report, cancel)
    if seen == 0:
        raise ValueError("the evaluation split is empty")
    return correct / seen * 100.0


@torch.inference_mode()
def count_correct(
    model: nn.Module, batches: Iterable, report: Report = ignore, cancel: Event | None = None
) -> tuple[int, int]:
    """(correct top-1 predictions, images seen) over `batches`, counted on the device (one sync at the end).

    `batches` are evaluated as given: they are the evaluation's batching (core.evaldata's rule). The
    logits are read from the forward's output by core.outputs.logits_of (UserError when it has none).
    """
    model.eval()
    device = model_device(model)
    total = batch_count(batches)
    correct = torch.zeros((), dtype=torch.long, device=device)
    seen = 0
    for i, (images, labels) in enumerate(batches):
        check_cancel(cancel)
        images = images.to(device, non_blocking=True)
        labels = labels.to(device, non_blocking=True)
        correct += (logits_of(model(images)).argmax(dim=1) == labels).sum()
        seen += labels.numel()
        report(Progress("evaluate", i + 1, total, batch_detail(i + 1, total)))
    return int(correct), seen
