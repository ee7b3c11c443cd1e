"""The fast sensitivity scan: compute what feeds a layer once, run only the rest for each sparsity.

For each layer the scanner holds the state just before the layer's first use (the activations every
later node reads) for as many batches as the activation budget allows, then for each sparsity swaps the
pruned weight in place and runs the remaining nodes. When one chunk holds every batch, the states are
kept from layer to layer and advanced instead of recomputed. Models fx cannot trace run the full
forward for every point ("full" path), still on held data. The batch size and the chunks are planned
against the budget by core.scan_memory, from the sizes measured on the first images.

Outputs are read through core.outputs.logits_of (a tuple, dict or namedtuple output gives its logits);
the held data keeps the evaluation loader's own batches for a model whose output depends on the batch
(core.evaldata.batch_dependent), so the scan's accuracies are the plain evaluation's.
"""

import itertools
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

import torch
from torch import nn

from prunetui.core.accel import Acceleration, autocast, model_memory_format, wants_channels_last
from prunetui.core.evaldata import (
    Batch,
    EvalBatches,
    default_activation_budget,
    default_batch_size,
    hold_eval_data,
)
from prunetui.core.events import Report, ScanPoint, check_cancel, expected_batches, sparsity_text
from prunetui.core.outputs import logits_of
from prunetui.core.pruning import lab_mask
from prunetui.core.scan_memory import (
    PROBE_IMAGES,
    SET_BATCH,
    MemoryPlan,
    PeakMemory,
    ScanMemory,
    forward_transient,
    graph_transient,
    kept_batches,
    plan_memory,
)
from prunetui.core.split import (
    FIRST,
    SplitGraph,
    advance,
    copy_state,
    first_use,
    input_state,
    run_to_end,
    state_bytes,
    trace,
)
from prunetui.errors import UserError

if TYPE_CHECKING:
    from prunetui.core.sensitivity import ScanProgress

# The traced graph runs the model's own ops, so its output matches to the bit on CPU; the tolerance only
# absorbs nondeterministic GPU kernels, never a wrong trace.
VERIFY_TOLERANCE = {"rtol": 1e-4, "atol": 1e-5}


@dataclass
class _Held:
    """States of every batch at one split index, kept from layer to layer when they fit the budget."""

    index: int
    states: list


class FastScanner:
    """Scans one layer at a time on held data; `path` says whether the graph was split ("split") or not.

    `activation_budget`: bytes of activations held and created at once (core.scan_memory);
    `kept_batches`: why the data's batches stay as they are, None to let the plan re-batch held data (up
    to the device's default batch). Nothing is planned until `prepare`."""

    def __init__(
        self,
        model: nn.Module,
        data: EvalBatches,
        graph: SplitGraph | None,
        accel: Acceleration,
        activation_budget: int,
        count: int = 0,
        kept_batches: str | None = None,
    ):
        self.model, self.data, self.accel, self.budget = model, data, accel, activation_budget
        self._count = count  # batches of one evaluation of streamed data (0: unknown)
        self._kept = kept_batches
        self.device = next(model.parameters()).device
        self.graph = graph
        self.images: int | None = None  # counted on the first pass over the data
        self.plan: MemoryPlan | None = None  # made by `prepare`
        self._peak = PeakMemory(self.device)  # from here: the held data is not counted
        self._node_seconds: list[float] = []  # time each node took on the first images, by node index
        self._held: _Held | None = None

    @property
    def path(self) -> str:
        return "full" if self.graph is None else "split"

    full_weight = 100  # the work of a whole forward, in the units of `weight`

    def weight(self, param: nn.Parameter) -> int:
        """The work of one batch of `param`'s points, in hundredths of a whole forward: the share of
        the first batch's forward spent from its split on (a scan of the last layers runs little)."""
        whole = sum(self._node_seconds)
        if self.graph is None or whole <= 0:
            return self.full_weight
        return max(1, round(self.full_weight * sum(self._node_seconds[self._split_index(param) :]) / whole))

    @property
    def count(self) -> int:
        """Batches of one evaluation (0 when streamed data cannot say)."""
        return len(self.data.held) if self.data.held is not None else self._count

    @torch.inference_mode()
    def prepare(self, cancel: threading.Event | None) -> None:
        """On the first images: measure what one image holds and creates, plan the batches to the budget
        (core.scan_memory) and re-batch the held data to the plan's batch size when it may."""
        check_cancel(cancel)
        first, _ = next(iter(self.data))
        states, transient = self._measure(first[:PROBE_IMAGES])
        held = self.data.held
        images = None if held is None else sum(len(labels) for _, labels in held)
        largest = len(first) if self._kept else default_batch_size(self.device)
        self.plan = plan_memory(states, transient, self.budget, largest, images, self._kept)
        if self._kept is None:
            self.data = self.data.rebatched(self.plan.batch_size)

    def _measure(self, probe: torch.Tensor) -> tuple[list[float], float]:
        """Bytes of one image's state at each split index, and what one image creates while the graph
        runs; falls back to the full path when the traced graph does not compute what the model does."""
        sizes = self._graph_state_sizes(probe) if self.graph is not None else None
        self.graph = self.graph if sizes is not None else None
        if sizes is not None:
            states, transient = sizes[: self.graph.end], graph_transient(sizes)
        else:  # the full path's state is the input, held already unless it is streamed
            states = [0, 0 if self.data.held is not None else probe.element_size() * probe.numel()]
            with autocast(self.accel, self.device):
                transient = forward_transient(self.model, probe)
        return [size / len(probe) for size in states], transient / len(probe)

    def memory(self) -> ScanMemory:
        """The plan, and on CUDA the peak of memory allocated since the scanner was made (bytes)."""
        return self.plan.summary(self._peak.bytes())

    def _graph_state_sizes(self, images: torch.Tensor) -> list[int] | None:
        with autocast(self.accel, self.device):
            expected = logits_of(self.model(images.clone()))
            state = input_state(self.graph, images.clone())
            sizes = [0, state_bytes(state)]
            self._node_seconds = [0.0] * FIRST
            for i in range(FIRST, self.graph.end):
                started = time.perf_counter()
                state = advance(self.graph, state, i, i + 1)
                if self.device.type == "cuda":
                    torch.cuda.synchronize(self.device)
                self._node_seconds.append(time.perf_counter() - started)
                sizes.append(state_bytes(state))
        try:
            logits = logits_of(state[self.graph.nodes[-1]])
        except UserError:  # the graph's output is not the model's: run the model itself
            return None
        if logits.shape == expected.shape and torch.allclose(logits, expected, **VERIFY_TOLERANCE):
            return sizes
        return None

    @torch.inference_mode()
    def base_accuracy(self, cancel: threading.Event | None, progress: "ScanProgress") -> float:
        correct = seen = 0
        for images, labels in self.data:
            check_cancel(cancel)
            with autocast(self.accel, self.device):
                correct += _correct(logits_of(self.model(images.clone())), labels)
            seen += len(labels)
            progress.batch("base accuracy")
        self.images = seen
        return _accuracy(correct, seen)

    @torch.inference_mode()
    def scan_layer(
        self,
        name: str,
        param: nn.Parameter,
        scores: torch.Tensor,
        sparsities: Sequence[float],
        report: Report,
        cancel: threading.Event | None,
        progress: "ScanProgress",
    ) -> list[float]:
        """Accuracy with `param` alone pruned to each sparsity by the lab's rule on `scores` (its shape);
        its values are restored exactly. `progress` hears of every batch evaluated."""
        index = self._split_index(param)
        original = param.detach().clone()
        correct = [0] * len(sparsities)
        seen = 0
        accuracies = []
        parts = self._part_count(index)
        try:
            for k, (chunk, last) in enumerate(_mark_last(self._chunks(index)), 1):
                # the sparsities run again for each part of the images: say which part, or they seem to jump
                part = "" if parts == 1 else f", images part {k}/{parts}" if parts else f", images part {k}"
                on_input = partial(progress.note, f"{name} inputs{part}")
                states = self._states_at(chunk, index, cancel, on_input)
                seen += sum(len(labels) for _, labels in chunk)
                for j, sparsity in enumerate(sparsities):
                    param.copy_(original * lab_mask(scores, sparsity))
                    detail = f"{name} at {sparsity_text(sparsity)}{part}"
                    correct[j] += self._count_correct(
                        states, chunk, index, cancel, partial(progress.batch, detail)
                    )
                    if last:
                        accuracies.append(_accuracy(correct[j], seen))
                        report(ScanPoint(name, sparsity, accuracies[-1]))
                del states  # before the next chunk's are made: the plan holds one chunk at a time
        finally:
            param.copy_(original)
        self.images = seen
        return accuracies

    def _split_index(self, param: nn.Parameter) -> int:
        if self.graph is None:
            return FIRST
        index = first_use(self.graph, param)
        return FIRST if index is None else index  # a parameter the graph never reads changes nothing

    def _part_count(self, index: int) -> int:
        """Chunks one evaluation takes at split `index` (0: streamed data of unknown length)."""
        batches = len(self.data.held) if self.data.held is not None else self._count
        return -(-batches // self.plan.batches_per_chunk(index)) if batches else 0

    def _chunks(self, index: int) -> Iterator[list[Batch]]:
        """Groups of batches whose states at `index` fit the activation budget: one group when all do."""
        per_chunk = self.plan.batches_per_chunk(index)
        if self.data.held is not None and per_chunk >= len(self.data.held):
            return iter([self.data.held])
        self._held = None  # it will not be reused: give its memory to the chunks
        return _grouped(self.data, per_chunk)

    def _states_at(
        self, chunk: list[Batch], index: int, cancel: threading.Event | None, on_batch: Callable[[], None]
    ) -> list:
        """Each batch's state at `index`, advanced from the held states when they are earlier;
        `on_batch()` after each."""
        if self.graph is None:
            return [images for images, _ in chunk]
        single = chunk is self.data.held
        reuse = single and self._held is not None and self._held.index <= index
        start = self._held.index if reuse else FIRST
        states = self._held.states if reuse else [None] * len(chunk)
        with autocast(self.accel, self.device):
            for k, (images, _) in enumerate(chunk):
                check_cancel(cancel)
                # one input copied at a time: a chunk holds states at `index` only (the plan's count)
                state = states[k] if reuse else input_state(self.graph, images.clone())
                states[k] = advance(self.graph, state, start, index)
                on_batch()
        self._held = _Held(index, states) if single else None
        return states

    def _count_correct(
        self, states: list, chunk: list[Batch], index: int, cancel, on_batch: Callable[[], None]
    ) -> torch.Tensor:
        correct = 0
        with autocast(self.accel, self.device):
            for state, (_, labels) in zip(states, chunk, strict=True):
                check_cancel(cancel)
                correct += _correct(self._logits(state, index), labels)
                on_batch()
        return correct

    def _logits(self, state, index: int) -> torch.Tensor:
        """The suffix on a copy of the state: a node may modify its inputs in place (`out += identity`)."""
        if self.graph is None:
            return logits_of(self.model(state.clone()))
        return logits_of(run_to_end(self.graph, copy_state(state), index))


@contextmanager
def fast_scanner(
    model: nn.Module,
    batches: Iterable,
    accel: Acceleration,
    eval_size: int | None = None,
    batch_size: int | None = None,
    activation_budget: int | None = None,
    data_budget: int | None = None,
    cancel: threading.Event | None = None,
) -> Iterator[FastScanner]:
    """A prepared FastScanner for `model` (in eval mode) on the first `eval_size` images of `batches`.

    The images are held re-batched to `batch_size`, or without one to the batch the plan chooses for
    `activation_budget` (bytes, default core.evaldata.default_activation_budget; core.scan_memory), at
    most the device's default; unless the model's output depends on its batch
    (core.evaldata.batch_dependent): then they keep `batches`' own batches, whatever `batch_size` and
    the budget say, so every accuracy is the plain evaluation's. While the block runs the model may hold
    its weights channels_last; they get their layout back after.
    """
    device = next(model.parameters()).device
    channels_last = wants_channels_last(accel, device)
    with model_memory_format(model, channels_last):
        data = hold_eval_data(batches, device, None, eval_size, data_budget, channels_last, cancel)
        kept = kept_batches(model, data, batch_size)
        if kept == SET_BATCH:
            data = data.rebatched(batch_size)
        budget = default_activation_budget(device) if activation_budget is None else activation_budget
        count = expected_batches(batches, eval_size)
        scanner = FastScanner(model, data, trace(model), accel, budget, count, kept)
        scanner.prepare(cancel)
        yield scanner


def _correct(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Kept on the device: no host sync per batch."""
    return (logits.argmax(dim=1) == labels).sum()


def _accuracy(correct, seen: int) -> float:
    if seen == 0:
        raise ValueError("the evaluation split is empty")
    return int(correct) / seen * 100.0


def _grouped(batches: Iterable[Batch], size: int) -> Iterator[list[Batch]]:
    iterator = iter(batches)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def _mark_last(items: Iterable) -> Iterator[tuple[object, bool]]:
    """Each item with whether it is the last one."""
    iterator = iter(items)
    previous = next(iterator, _END)
    for item in iterator:
        yield previous, False
        previous = item
    if previous is not _END:
        yield previous, True


_END = object()
