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
from prunetui.core.events import (
    Cancelled,
    Notice,
    Progress,
    Report,
    ScanPoint,
    expected_batches,
    ignore,
    sparsity_text,
)
from prunetui.core.fast_scan import fast_scanner
from prunetui.core.layers import prunable_parameters
from prunetui.core.pruning import lab_mask
from prunetui.core.recalibrate import batch_norms, recalibrate_bn
from prunetui.core.scan_memory import ScanMemory

DEFAULT_SPARSITIES = (0.4, 0.5, 0.6, 0.7, 0.8, 0.9)  # the lab's np.arange(0.4, 1.0, 0.1)


@dataclass(frozen=True)
class ScanOptions:
    """How to scan. The fast path's settings (batch size, budgets, channels_last) never change a count
    by more than a last-bit tie; autocast (`accel.amp`) can, and is off unless asked for."""

    fast: bool = True  # False: the lab's loop, a full evaluation per point (the reference)
    eval_size: int | None = None  # evaluate on the first N images only (deterministic)
    batch_size: int | None = None  # None: chosen for the device
    # bytes of activations held and created at once (core.scan_memory); None: chosen for the device
    activation_budget: int | None = None
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
    # the fast path's activation budget, plan and CUDA peak (None: the plain loop, a cached scan)
    memory: ScanMemory | None = None

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


class ScanProgress:
    """The scan's Progress events. `done` counts evaluation batches, each weighted by the work it does
    (the scanner's `weight`: the plain loop's are all 1, the fast scan's the share of a forward it runs,
    so a time left from a steady rate holds while later layers get cheaper): `batches` for each point of
    every layer, and for the base accuracy when the scan measures it, so it advances within a layer. A
    scanner calls `batch(detail)` after each evaluation batch; with `batches` unknown (0) a point is one
    batch and the batches only say what is being evaluated."""

    def __init__(self, report: Report, weights: Sequence[int], points: int, batches: int, base: int | None):
        """`weights`: each layer's weight a batch; `base`: the base accuracy's (None: not measured)."""
        self.report, self.counted = report, batches > 0
        self.per_point, self.points = max(1, batches), points
        self.total = ((base or 0) + points * sum(weights)) * self.per_point
        self.done = self.end = 0
        self.weight = 1

    def begin(self, points: int, weight: int, detail: str) -> None:
        """The next `points` evaluations of `weight` a batch: `done` moves to where the last one ends."""
        self.done, self.end, self.weight = self.end, self.end + points * self.per_point * weight, weight
        self.report(Progress("scan", self.done, self.total, detail))

    def batch(self, detail: str) -> None:
        if self.counted:  # a wrong count never runs into the next piece
            self.done = min(self.end, self.done + self.weight)
        self.report(Progress("scan", self.done, self.total, detail))

    def note(self, detail: str) -> None:
        """Work the count does not measure (a layer's inputs computed): said, `done` unchanged."""
        self.report(Progress("scan", self.done, self.total, detail))

    def finish(self) -> None:
        self.report(Progress("scan", self.total, self.total, "done"))


def _at(name: str, sparsity: float) -> str:
    return f"{name} at {sparsity_text(sparsity)}"


class PlainScanner:
    """The lab's loop: a full evaluation of the model for every (layer, sparsity) point. `count`: the
    batches of one evaluation, 0 when unknown."""

    path = "plain"
    full_weight = 1  # every point is a whole forward

    def __init__(self, model: nn.Module, batches: Iterable, count: int = 0):
        self.model, self.batches, self.count = model, batches, count
        self.images: int | None = None

    def weight(self, param) -> int:
        return 1

    def memory(self) -> None:
        """The loop holds no activations between evaluations: nothing planned."""
        return None

    def base_accuracy(self, cancel: threading.Event | None, progress: ScanProgress) -> float:
        return self._evaluate(cancel, progress, "base accuracy")

    @torch.no_grad()
    def scan_layer(
        self, name, param, scores, sparsities, report, cancel, progress: ScanProgress
    ) -> list[float]:
        original = param.detach().clone()
        accuracies = []
        try:
            for s in sparsities:
                param.copy_(original * lab_mask(scores, s))
                accuracies.append(self._evaluate(cancel, progress, _at(name, s)))
                report(ScanPoint(name, s, accuracies[-1]))
        finally:
            param.copy_(original)
        return accuracies

    def _evaluate(self, cancel: threading.Event | None, progress: ScanProgress, detail: str) -> float:
        def on_batch(event) -> None:
            if isinstance(event, Progress):
                progress.batch(detail)

        correct, self.images = count_correct(self.model, self.batches, on_batch, cancel)
        if self.images == 0:
            raise ValueError("the evaluation split is empty")
        return correct / self.images * 100.0


class RecalibratingScanner(PlainScanner):
    """The lab's loop, each point measured after recalibrating the BatchNorm statistics (what a pruned
    model reads after `prunetui prune --recalibrate-bn`); weights and statistics restored exactly."""

    path = "recalibrated"

    def __init__(self, model: nn.Module, batches: Iterable, calibration: Iterable, count: int = 0):
        super().__init__(model, batches, count)
        self.calibration = calibration

    def _evaluate(self, cancel: threading.Event | None, progress: ScanProgress, detail: str) -> float:
        norms = batch_norms(self.model)
        saved = [{k: v.clone() for k, v in m.state_dict().items()} for m in norms]
        try:
            recalibrate_bn(
                self.model, self.calibration, report=lambda _: progress.note(f"{detail}, BN"), cancel=cancel
            )
            return super()._evaluate(cancel, progress, detail)
        finally:
            for m, state in zip(norms, saved, strict=True):
                m.load_state_dict(state)


@contextlib.contextmanager
def _scanner(
    model: nn.Module, batches: Iterable, options: ScanOptions, cancel, calibration: Iterable | None = None
) -> Iterator:
    count = expected_batches(batches, options.eval_size)
    if options.recalibrate:
        if calibration is None:
            raise ValueError("a recalibrated scan needs training batches (calibration)")
        eval_batches = EvalBatches(None, batches, model_device(model), options.eval_size)
        yield RecalibratingScanner(model, eval_batches, calibration, count)
        return
    if not options.fast:
        eval_batches = EvalBatches(None, batches, model_device(model), options.eval_size)
        yield PlainScanner(model, eval_batches, count)
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
    Progress: "scan" events counting evaluation batches of every point (ScanProgress), naming the
    layer and sparsity being evaluated; a Notice before the first point when the activations cannot
    keep to the budget (core.scan_memory).
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
            plan = scanner.memory()
            if plan and plan["warning"]:  # said now: the scan may run long on the plan
                report(Notice(f"warning: {plan['warning']}"))
            try:
                weights = [scanner.weight(params[name]) for name in names]
                base = scanner.full_weight if base_accuracy is None else None
                points = len(result.sparsities)
                progress = ScanProgress(report, weights, points, scanner.count, base)
                result.base_accuracy = base_accuracy
                if base is not None:
                    progress.begin(1, base, "base accuracy")
                    result.base_accuracy = scanner.base_accuracy(cancel, progress)
                for name, weight in zip(names, weights, strict=True):
                    progress.begin(points, weight, name)
                    score = scores[name] if scores is not None else params[name].detach().abs()
                    result.layers[name] = scanner.scan_layer(
                        name, params[name], score, result.sparsities, report, cancel, progress
                    )
                progress.finish()
            finally:
                result.images, result.memory = scanner.images, scanner.memory()
    except Cancelled:
        result.cancelled = True
    result.seconds = time.perf_counter() - started
    return result


def scan_runner(options: ScanOptions, scores=None, calibration: Iterable | None = None):
    """`scan` as a core.scan_cache runner (a ScanJob in, a ScanResult out)."""

    def run(job) -> ScanResult:
        return scan(
            job.model, job.batches, job.sparsities, job.layers, job.report, job.cancel, job.base_accuracy,
            options=options, scores=scores, calibration=calibration,
        )  # fmt: skip

    return run
