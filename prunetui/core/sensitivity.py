"""Sensitivity scan: prune one layer at a time, evaluate, restore its weights in place."""

import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from prunetui.core.evaluate import evaluate
from prunetui.core.events import Cancelled, Progress, Report, ScanPoint, ignore
from prunetui.core.layers import prunable_parameters
from prunetui.core.pruning import magnitude_mask

DEFAULT_SPARSITIES = (0.4, 0.5, 0.6, 0.7, 0.8, 0.9)  # the lab's np.arange(0.4, 1.0, 0.1)


@dataclass
class ScanResult:
    sparsities: list[float]
    base_accuracy: float | None  # accuracy of the model as it was scanned (dense, or pruned and finetuned)
    layers: dict[str, list[float]] = field(default_factory=dict)  # accuracy per sparsity
    seconds: float = 0.0
    cancelled: bool = False


def lower_bound(base_accuracy: float) -> float:
    """The lab's acceptable accuracy floor: 100 - (100 - dense) * 1.5."""
    return 100.0 - (100.0 - base_accuracy) * 1.5


def highest_safe_sparsity(
    sparsities: Sequence[float], accuracies: Sequence[float], base_accuracy: float, max_drop: float = 1.0
) -> float:
    """Largest scanned sparsity whose accuracy stays within `max_drop` points of the base (0.0 if none)."""
    safe = [s for s, a in zip(sparsities, accuracies, strict=False) if base_accuracy - a <= max_drop]
    return max(safe, default=0.0)


@torch.no_grad()
def _scan_layer(model, param, sparsities, batches, report, cancel, name) -> list[float]:
    original = param.detach().clone()
    accuracies = []
    try:
        for s in sparsities:
            param.copy_(original * magnitude_mask(original, s))
            accuracy = evaluate(model, batches, cancel=cancel)
            accuracies.append(accuracy)
            report(ScanPoint(name, s, accuracy))
    finally:
        param.copy_(original)
    return accuracies


def scan(
    model: nn.Module,
    batches: Iterable,
    sparsities: Sequence[float] = DEFAULT_SPARSITIES,
    layers: Sequence[str] | None = None,
    report: Report = ignore,
    cancel: threading.Event | None = None,
    base_accuracy: float | None = None,
) -> ScanResult:
    """Accuracy of `model` with each layer alone pruned to each sparsity, the others untouched.

    `layers` defaults to every prunable tensor. A cancelled scan returns the layers it finished.
    The model's weights are exactly as before when this returns, cancelled or not.
    """
    started = time.perf_counter()
    params = prunable_parameters(model)
    names = list(layers) if layers is not None else list(params)
    result = ScanResult(sparsities=[float(s) for s in sparsities], base_accuracy=None)
    try:
        result.base_accuracy = (
            base_accuracy if base_accuracy is not None else evaluate(model, batches, cancel=cancel)
        )
        for i, name in enumerate(names):
            report(Progress("scan", i, len(names)))
            result.layers[name] = _scan_layer(
                model, params[name], result.sparsities, batches, report, cancel, name
            )
        report(Progress("scan", len(names), len(names)))
    except Cancelled:
        result.cancelled = True
    result.seconds = time.perf_counter() - started
    return result
