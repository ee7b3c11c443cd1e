"""What a model costs to run, measured: MACs and parameters as the lab counts them, and latency.

- MACs: torchprofile's `profile_macs` on one example (batch 1), the counter of the MIT EfficientML.ai
  lab 1 (`get_model_macs`); it counts convolutions and linears and also the BatchNorm, pooling and mean
  elements, so the lab's figures are reproduced exactly (dense lab VGG on 1x3x32x32: 606,164,480).
  `torch.utils.flop_counter.FlopCounterMode` counts only convolutions and matmuls (605,754,368 / 2
  FLOPs per MAC on the same model) and is therefore not used.
- Params: the sum of `numel` over `model.parameters()` (BN and biases included, buffers not), the lab's
  `get_num_parameters`; 9,228,362 on the lab VGG.
- Latency: `torch.utils.benchmark.Timer` on CPU (threads stated), CUDA events on a GPU; median of the
  timed blocks, in milliseconds per forward pass of a whole batch.
"""

import logging
import statistics
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import torch
from torch import nn

from prunetui.core.size import dense_size_mib, sparse_size_mib


@dataclass(frozen=True)
class Cost:
    """Static cost of a model: MACs for one input (batch 1), parameters, size (nonzero x 32 bit, MiB)."""

    macs: int
    params: int
    size_mib: float


@dataclass(frozen=True)
class Latency:
    """Median time of one forward pass of `batch` inputs on `device`, in milliseconds.

    `threads`: the CPU thread pool size while timing (on CUDA: the host threads, for the record).
    `runs`: forward passes timed in all. `spread_ms`: for the mean of two timings (ABBA halves), how far
    apart they were (0 for one timing): the noise of the machine while it was timed.
    """

    ms: float
    batch: int
    threads: int
    device: str
    runs: int
    spread_ms: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


@contextmanager
def evaluating(model: nn.Module) -> Iterator[nn.Module]:
    """The model in eval mode under `no_grad` (BN statistics never move), its mode restored after."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield model
    finally:
        model.train(was_training)


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (CPU for a model without parameters)."""
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def one_input(example_input: torch.Tensor, model: nn.Module, batch: int = 1) -> torch.Tensor:
    """`batch` copies of the first example (N x C x H x W -> batch x C x H x W; N x C x L 1-D signals
    alike) on the model's device."""
    first = example_input[:1].to(model_device(model))
    return first.expand(batch, *first.shape[1:]).clone()


def count_macs(model: nn.Module, example_input: torch.Tensor) -> int:
    """Multiply-accumulates of one forward pass at batch 1, counted by torchprofile as the lab does.

    `example_input`: N x C x H x W, or N x C x L for a Conv1d model (only the first item is used; a
    Conv1d's MACs are C_out x L_out x C_in / groups x kernel, as a Conv2d's). The model is traced in
    eval mode, so BatchNorm statistics are untouched; nn.MultiheadAttention on its plain path (its fused
    inference kernel, taken under no_grad in eval mode, reaches torchprofile as a value without a dtype:
    AttributeError on torchvision's ViT). Raises RuntimeError when the model cannot be traced.
    """
    from torchprofile import profile_macs  # the lab's counter; imported here: tracing is slow to import

    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with evaluating(model), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # jit tracer warnings about data-dependent control flow
            return int(profile_macs(model, one_input(example_input, model)))
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)


def count_params(model: nn.Module) -> int:
    """Every parameter element, zero or not (the lab's `get_num_parameters`)."""
    return sum(p.numel() for p in model.parameters())


def measure_cost(model: nn.Module, example_input: torch.Tensor) -> Cost:
    """MACs, params and the lab's size of `model` (size: nonzero parameters only, as `core.size`)."""
    return Cost(count_macs(model, example_input), count_params(model), sparse_size_mib(model))


def dense_cost(model: nn.Module, example_input: torch.Tensor) -> Cost:
    """As `measure_cost`, with the size counting every parameter (what the dense model stores)."""
    return Cost(count_macs(model, example_input), count_params(model), dense_size_mib(model))


def measure_latency(
    model: nn.Module,
    example_input: torch.Tensor,
    batch: int = 1,
    threads: int | None = None,
    min_run_time: float = 1.0,
) -> Latency:
    """Time a forward pass of `batch` copies of the example on the model's device (eval, inference mode).

    CPU: `torch.utils.benchmark.Timer.blocked_autorange` with `threads` threads (default: the current
    `torch.get_num_threads()`), at least `min_run_time` seconds, median of the blocks. CUDA: warm-up,
    then CUDA events around blocks of passes for about `min_run_time` seconds, median per pass.
    """
    threads = threads or torch.get_num_threads()
    device = model_device(model)
    x = one_input(example_input, model, batch)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            if device.type == "cuda":
                ms, runs = _cuda_ms(model, x, min_run_time)
            else:
                ms, runs = _timer_ms(model, x, threads, min_run_time)
    finally:
        model.train(was_training)
    return Latency(ms=ms, batch=batch, threads=threads, device=str(device), runs=runs)


def measure_latency_pair(
    dense: nn.Module,
    pruned: nn.Module,
    example_input: torch.Tensor,
    batch: int = 1,
    min_run_time: float = 1.0,
    measure: Callable[..., Latency] | None = None,
) -> tuple[Latency, Latency]:
    """Both models timed side by side in the order dense, pruned, pruned, dense (ABBA), each the mean
    of its two medians with their `spread_ms`: a change in the machine's load falls on both, so their
    ratio is the figure to trust (a dense model timed once per session and a pruned one later compare
    noise, not kernels), and the halves' spread says how much noise it still holds (core.speedup).
    `measure`: the timer (`measure_latency`'s signature; tests inject one)."""
    measure = measure or measure_latency
    half = min_run_time / 2
    first_dense = measure(dense, example_input, batch, min_run_time=half)
    pruned_runs = [measure(pruned, example_input, batch, min_run_time=half) for _ in range(2)]
    last_dense = measure(dense, example_input, batch, min_run_time=half)
    return _mean(first_dense, last_dense), _mean(*pruned_runs)


def _mean(a: Latency, b: Latency) -> Latency:
    return Latency(
        ms=(a.ms + b.ms) / 2, batch=a.batch, threads=a.threads, device=a.device, runs=a.runs + b.runs,
        spread_ms=abs(a.ms - b.ms),
    )  # fmt: skip


def _benchmark_timer():
    """torch.utils.benchmark's Timer. Importing it warns about CUDA_HOME on a machine without CUDA (a
    line on stderr, in every --json run; nothing is compiled here), so that one logger is quiet then."""
    logger = logging.getLogger("torch.utils.cpp_extension")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        from torch.utils.benchmark import Timer
    finally:
        logger.setLevel(level)
    return Timer


def _timer_ms(model: nn.Module, x: torch.Tensor, threads: int, min_run_time: float) -> tuple[float, int]:
    timer = _benchmark_timer()(stmt="model(x)", globals={"model": model, "x": x}, num_threads=threads)
    timer.timeit(1)  # warm-up: first-call allocations and kernel selection
    measurement = timer.blocked_autorange(min_run_time=min_run_time)
    return measurement.median * 1000.0, len(measurement.times) * measurement.number_per_run


def _cuda_ms(model: nn.Module, x: torch.Tensor, min_run_time: float) -> tuple[float, int]:
    """Median ms per pass over blocks timed with CUDA events (the host does not wait per pass)."""
    for _ in range(3):
        model(x)
    torch.cuda.synchronize(x.device)
    per_block, total, samples = 10, 0.0, []
    while total < min_run_time * 1000.0 or len(samples) < 5:
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(per_block):
            model(x)
        end.record()
        end.synchronize()
        block_ms = start.elapsed_time(end)
        samples.append(block_ms / per_block)
        total += block_ms
    return statistics.median(samples), len(samples) * per_block


def cost_report(
    dense: Cost, pruned: Cost, latency_dense: Latency | None = None, latency: Latency | None = None
) -> dict:
    """The JSON keys every command uses for a run's measured cost (PRODUCT.md, command line)."""
    report = {
        "macs_dense": dense.macs,
        "macs": pruned.macs,
        "params_dense": dense.params,
        "params": pruned.params,
        "latency_ms_dense": latency_dense.ms if latency_dense else None,
        "latency_ms": latency.ms if latency else None,
    }
    if latency is not None:
        report["latency_batch"] = latency.batch
        report["latency_threads"] = latency.threads
        report["latency_device"] = latency.device
    return report
