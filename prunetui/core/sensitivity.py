"""Sensitivity scan: prune one layer at a time, evaluate, restore its weights in place.

Two scanners give the same grid: the fast one (core.fast_scan: held data, only the layers after the
pruned one re-run) by default, and the lab's plain loop (a full evaluation per point) as the reference.
"""

import contextlib
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from prunetui.core.accel import Acceleration
from prunetui.core.evaldata import EvalBatches, standard_error
from prunetui.core.evaluate import count_correct, model_device
from prunetui.core.events import Cancelled, Progress, Report, ScanPoint, ignore
from prunetui.core.fast_scan import fast_scanner
from prunetui.core.layers import prunable_parameters
from prunetui.core.pruning import lab_mask
from prunetui.core.recalibrate import batch_norms, recalibrate_bn

DEFAULT_SPARSITIES = (0.4, 0.5, 0.6, 0.7, 0.8, 0.9)  # the lab's np.arange(0.4, 1.0, 0.1)


@dataclass(frozen=True)
class ScanOptions:
    """How to scan. The fast path's settings (batch size, budgets, channels_last) never change a count
    by more than a last-bit tie; autocast (`accel.amp`) can, and is off unless asked for."""

    fast: bool = True  # False: the lab's loop, a full evaluation per point (the reference)
    eval_size: int | None = None  # evaluate on the first N images only (deterministic)
    batch_size: int | None = None  # None: chosen for the device
    activation_budget: int | None = None  # bytes of cached activations; None: chosen for the device
    data_budget: int | None = None  # bytes of eval images held on the device, else streamed
    accel: Acceleration = Acceleration()  # autocast and channels_last
    # each point measured after BatchNorm recalibration (core.recalibrate) on the training batches given
    # to `scan` as `calibration`: the plain loop, the statistics put back exactly after each point
    recalibrate: bool = False


@dataclass
class ScanResult:
    sparsities: list[float]
    base_accuracy: float | None  # accuracy of the model as it was scanned (dense, or pruned and finetuned)
    layers: dict[str, list[float]] = field(default_factory=dict)  # accuracy per sparsity
    seconds: float = 0.0
    cancelled: bool = False
    path: str = "plain"  # "split": each layer's input computed once; "full": whole forward per point; "plain": the lab's loop
    images: int | None = None  # evaluation images each accuracy was measured on
    cached: bool = False  # every layer came from the scan cache

    def standard_error(self) -> float | None:
        """Standard error of the base accuracy in points, a guide to how much a point's noise is."""
        if self.base_accuracy is None or not self.images:
            return None
        return standard_error(self.base_accuracy, self.images)


def lower_bound(base_accuracy: float) -> float:
    """The lab's acceptable accuracy floor: 100 - (100 - dense) * 1.5."""
    return 100.0 - (100.0 - base_accuracy) * 1.5


def highest_safe_sparsity(
    sparsities: Sequence[float], accuracies: Sequence[float], base_accuracy: float, max_drop: float = 1.0
) -> float:
    """Largest scanned sparsity whose accuracy stays within `max_drop` points of the base (0.0 if none)."""
    safe = [s for s, a in zip(sparsities, accuracies, strict=False) if base_accuracy - a <= max_drop]
    return max(safe, default=0.0)


class PlainScanner:
    """The lab's loop: a full evaluation of the model for every (layer, sparsity) point."""

    path = "plain"

    def __init__(self, model: nn.Module, batches: Iterable):
        self.model, self.batches = model, batches
        self.images: int | None = None

    def base_accuracy(self, cancel: threading.Event | None) -> float:
        return self._evaluate(cancel)

    @torch.no_grad()
    def scan_layer(self, name, param, scores, sparsities, report, cancel) -> list[float]:
        original = param.detach().clone()
        accuracies = []
        try:
            for s in sparsities:
                param.copy_(original * lab_mask(scores, s))
                accuracies.append(self._evaluate(cancel))
                report(ScanPoint(name, s, accuracies[-1]))
        finally:
            param.copy_(original)
        return accuracies

    def _evaluate(self, cancel: threading.Event | None) -> float:
        correct, self.images = count_correct(self.model, self.batches, cancel=cancel)
        if self.images == 0:
            raise ValueError("the evaluation split is empty")
        return correct / self.images * 100.0


class RecalibratingScanner(PlainScanner):
    """The lab's loop, each point measured after recalibrating the BatchNorm statistics (what a pruned
    model reads after `prunetui prune --recalibrate-bn`); weights and statistics restored exactly."""

    path = "recalibrated"

    def __init__(self, model: nn.Module, batches: Iterable, calibration: Iterable):
        super().__init__(model, batches)
        self.calibration = calibration

    def _evaluate(self, cancel: threading.Event | None) -> float:
        norms = batch_norms(self.model)
        saved = [{k: v.clone() for k, v in m.state_dict().items()} for m in norms]
        try:
            recalibrate_bn(self.model, self.calibration, cancel=cancel)
            return super()._evaluate(cancel)
        finally:
            for m, state in zip(norms, saved, strict=True):
                m.load_state_dict(state)


@contextlib.contextmanager
def _scanner(
    model: nn.Module, batches: Iterable, options: ScanOptions, cancel, calibration: Iterable | None = None
) -> Iterator:
    if options.recalibrate:
        if calibration is None:
            raise ValueError("a recalibrated scan needs training batches (calibration)")
        eval_batches = EvalBatches(None, batches, model_device(model), options.eval_size)
        yield RecalibratingScanner(model, eval_batches, calibration)
        return
    if not options.fast:
        yield PlainScanner(model, EvalBatches(None, batches, model_device(model), options.eval_size))
        return
    with fast_scanner(
        model,
        batches,
        options.accel,
        options.eval_size,
        options.batch_size,
        options.activation_budget,
        options.data_budget,
        cancel,
    ) as scanner:
        yield scanner


def scan(
    model: nn.Module,
    batches: Iterable,
    sparsities: Sequence[float] = DEFAULT_SPARSITIES,
    layers: Sequence[str] | None = None,
    report: Report = ignore,
    cancel: threading.Event | None = None,
    base_accuracy: float | None = None,
    *,
    options: ScanOptions | None = None,
    scores: Mapping[str, torch.Tensor] | None = None,
    calibration: Iterable | None = None,
) -> ScanResult:
    """Accuracy of `model` with each layer alone pruned to each sparsity, the others untouched.

    A layer is pruned by the lab's rule on its `scores` (name -> tensor of the weight's shape, from a
    core.methods criterion); without them, on |w| (the magnitude method).
    `layers` defaults to every prunable tensor. `base_accuracy`, when given, must be the model's accuracy
    on the same images (mind `options.eval_size`). A cancelled scan returns the layers it finished.
    `calibration`: the training batches a recalibrated scan (`options.recalibrate`) measures on.
    The model's weights are exactly as before when this returns, cancelled or not.
    """
    started = time.perf_counter()
    options = options or ScanOptions()
    params = prunable_parameters(model)
    names = list(layers) if layers is not None else list(params)
    result = ScanResult(sparsities=[float(s) for s in sparsities], base_accuracy=None)
    model.eval()
    try:
        with _scanner(model, batches, options, cancel, calibration) as scanner:
            result.path = scanner.path
            try:
                result.base_accuracy = (
                    base_accuracy if base_accuracy is not None else scanner.base_accuracy(cancel)
                )
                for i, name in enumerate(names):
                    report(Progress("scan", i, len(names)))
                    score = scores[name] if scores is not None else params[name].detach().abs()
                    result.layers[name] = scanner.scan_layer(
                        name, params[name], score, result.sparsities, report, cancel
                    )
                report(Progress("scan", len(names), len(names)))
            finally:
                result.images = scanner.images
    except Cancelled:
        result.cancelled = True
    result.seconds = time.perf_counter() - started
    return result
