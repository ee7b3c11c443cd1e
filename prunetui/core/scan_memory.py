"""The fast scan's activation memory: what it holds and creates at once, planned against a budget.

core.fast_scan holds each batch's state at the scanned layer's split index (core.split) for a chunk of
batches, and creates more while it runs the graph on one batch (the transient). Both grow with the batch.
The plan gives at most half the budget to one batch's transient, which sets the evaluation batch size,
and holds at each split index as many batches' states as the rest allows, at least one. Re-batching
changes no prediction (core.evaldata's rule), so the accuracies are the same whatever the budget; a model
whose output depends on its batch, and streamed data, keep their batches.

Sizes are measured on the first images of the first batch (PROBE_IMAGES) and scaled by the images in a
batch. Weights, the pruning mask's temporaries and the held evaluation images (core.evaldata's data
budget) are not activations and not in the plan.
"""

import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TypedDict

import torch
from torch import nn

from prunetui.core.evaldata import EvalBatches, batch_dependent
from prunetui.core.split import FIRST

MIB = 2**20
PROBE_IMAGES = 8  # images the sizes are measured on: few, so measuring stays within any budget
SET_BATCH = "the batch size is set (ScanOptions.batch_size)"


class ScanMemory(TypedDict):
    """What a fast scan planned for its activations and, on CUDA, used; sizes in bytes. Plain values, so
    a ScanResult carrying it goes through JSON (distributed scans) unchanged."""

    budget: int  # the activation budget the plan kept to
    batch_size: int  # images per evaluation batch
    batches_per_chunk: int  # the fewest batches whose states were held at once, over the split indices
    planned_peak: int  # MemoryPlan.planned_peak
    peak: int | None  # CUDA memory allocated above the scan's start, at its highest; None off CUDA
    warning: str | None  # MemoryPlan.warning


@dataclass(frozen=True)
class MemoryPlan:
    """How a fast scan keeps to its activation budget; sizes in bytes, for one batch of `batch_size`."""

    budget: int
    batch_size: int  # images per evaluation batch
    transient: int  # what one batch creates while the graph runs (an estimate: graph_transient)
    states: tuple[int, ...]  # one batch's state at each split index (index 0 unused)
    batches: int | None  # batches of one evaluation (None: streamed data, count unknown)
    warning: str | None = None  # why the plan goes over the budget, said to the user

    def batches_per_chunk(self, index: int) -> int:
        """Batches whose states at split `index` are held at once: what the budget leaves after one
        batch's transient, at least one; every batch when the state holds nothing beyond the data."""
        if not self.states[index]:
            return sys.maxsize
        return max(1, (self.budget - self.transient) // self.states[index])

    def _held(self, index: int) -> int:
        return min(self.batches_per_chunk(index), self.batches or sys.maxsize)

    @property
    def planned_peak(self) -> int:
        """The most the plan lets a scan hold and create at once: one batch's transient plus the held
        states at the split index where they take the most."""
        held = (self._held(i) * self.states[i] for i in range(FIRST, len(self.states)))
        return self.transient + max(held, default=0)

    def summary(self, peak: int | None) -> ScanMemory:
        """The plan and the measured `peak` (bytes, None off CUDA) as a ScanResult carries them."""
        chunks = [self._held(i) for i in range(FIRST, len(self.states))]
        return ScanMemory(
            budget=self.budget,
            batch_size=self.batch_size,
            batches_per_chunk=min(chunks, default=1),
            planned_peak=self.planned_peak,
            peak=peak,
            warning=self.warning,
        )


def kept_batches(model: nn.Module, data: EvalBatches, batch_size: int | None) -> str | None:
    """Why a scan keeps the data's batches, or those `batch_size` sets: a reason for the plan's warning,
    None when the plan may choose the batch."""
    if data.held is None:
        return "the evaluation images are streamed (more than the data budget)"
    if batch_dependent(model, data.held[0][0]):
        return "the model's output depends on its batch"
    return None if batch_size is None else SET_BATCH


def plan_memory(
    states: Sequence[float],
    transient: float,
    budget: int,
    batch_size: int,
    images: int | None,
    fixed: str | None = None,
) -> MemoryPlan:
    """The evaluation batch size and the states held at each split index for a scan within `budget`.

    `states[i]`: bytes of one image's state at split index i (index 0 unused); `transient`: bytes one
    image creates while the graph runs (graph_transient or forward_transient); `budget`: bytes;
    `batch_size`: the largest batch wanted, or the data's own when `fixed` says why it cannot change;
    `images`: images of one evaluation (None: streamed, unknown). The batch is the largest up to
    `batch_size` (and `images`) whose transient takes at most half the budget, at least one image; the
    other half holds states, so every state fits beside the transient whenever one image does. The
    plan's `warning` says when even so it goes over the budget. Raises nothing.
    """
    if fixed is None:
        fits = int((budget // 2) // transient) if transient > 0 else batch_size
        batch_size = max(1, min(batch_size, fits))
    if images is not None:
        batch_size = max(1, min(batch_size, images))
    plan = MemoryPlan(
        budget=budget,
        batch_size=batch_size,
        transient=math.ceil(transient * batch_size),
        states=tuple(math.ceil(size * batch_size) for size in states),
        batches=None if images is None else math.ceil(images / batch_size),
    )
    return replace(plan, warning=_warning(plan, fixed))


def _warning(plan: MemoryPlan, fixed: str | None) -> str | None:
    if plan.planned_peak <= plan.budget:
        return None
    over = f"about {_mib(plan.planned_peak)} MiB of activations against a {_mib(plan.budget)} MiB budget"
    if fixed is not None:
        return f"{fixed}, so its batches of {plan.batch_size} images are kept: {over}"
    return f"one image needs {over}: the scan runs one image per batch, recomputing what it cannot hold"


def _mib(size: int) -> str:
    mib = size / MIB
    return f"{mib:.0f}" if mib >= 10 else f"{mib:.2g}"


def graph_transient(sizes: Sequence[float]) -> float:
    """Bytes a batch creates while the split graph runs from a split index to the end, or advances
    from one split index to another; `sizes[i]`: bytes of its state at node index i (core.split), to
    the end's (the output alone).

    Conservative for what the graph keeps between nodes: the state a run starts from stays alive
    beside it (the scan's copy, or the caller's state in core.split.advance), counted as the largest
    state; while node i runs, its inputs are in the state at i and its output in the state at i + 1,
    so the two together bound what is live (values read later counted twice). Not seen: a kernel's
    own workspace (im2col on CPU, cuDNN's).
    """
    states = sizes[FIRST:]
    pairs = (a + b for a, b in zip(states, states[1:], strict=False))
    return max(states, default=0) + max(pairs, default=0)


def forward_transient(model: nn.Module, images: torch.Tensor) -> int:
    """Bytes a forward of `images` (N, C, H, W; or N, C, L) creates at once, for a model the scan cannot
    split: the input's copy and three times the largest module output (a module's input, its output and
    one skip tensor beside them), the outputs seen by forward hooks on one forward. An estimate: what a
    forward keeps between modules beyond that is not seen."""
    largest = 0

    def record(_module: nn.Module, _inputs: object, output: object) -> None:
        nonlocal largest
        if isinstance(output, torch.Tensor):
            largest = max(largest, output.element_size() * output.numel())

    handles = [module.register_forward_hook(record) for module in model.modules()]
    try:
        model(images.clone())
    finally:
        for handle in handles:
            handle.remove()
    return images.element_size() * images.numel() + 3 * largest


class PeakMemory:
    """CUDA memory allocated above what it was when this was made, at its highest since; it resets the
    device's peak statistics (torch.cuda.reset_peak_memory_stats). Off CUDA it measures nothing."""

    def __init__(self, device: torch.device):
        self.device, self.start = device, None
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
            self.start = torch.cuda.memory_allocated(device)

    def bytes(self) -> int | None:
        """The peak above the start, in bytes; None off CUDA."""
        if self.start is None:
            return None
        return torch.cuda.max_memory_allocated(self.device) - self.start


def memory_json(memory: ScanMemory | None) -> dict:
    """`scan --json`'s memory keys in MiB, null where the scan ran no fast path (or was cached) and the
    peak null off CUDA."""
    memory = memory or {}
    keys = {"activation_budget_mib": "budget", "planned_peak_mib": "planned_peak", "peak_memory_mib": "peak"}
    return {key: None if memory.get(field) is None else memory[field] / MIB for key, field in keys.items()}
