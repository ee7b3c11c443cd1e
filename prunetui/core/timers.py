"""How long a model takes on this device, in the runtime it will be deployed in, and the speed-up of one
model over another measured side by side.

- A `Timer` prepares a model once and returns a `Runner`: batch size -> milliseconds per forward pass of
  that many inputs (the median of timed blocks). `TorchTimer`: PyTorch eager (core.cost.measure_latency:
  torch.utils.benchmark on CPU with the thread count fixed, CUDA events on a GPU). `OrtTimer`: the model
  exported to ONNX (core.onnx_export, checked against PyTorch) on onnxruntime's CPU execution provider
  with the same thread count, since an eager speed-up need not carry over to the deployment runtime.
  Tests inject their own Timer (a function of the model's structure), never mocking torch.
- `measure_speedup`: dense and pruned in ABBA order (dense, pruned, pruned, dense) `rounds` times at each
  batch; the speed-up is the median of the per-pair ratios dense/pruned and the spread their range, so a
  change in the machine's load falls on both sides (benchmarks/README.md: a ratio is a gain only outside
  its spread).
"""

import statistics
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch
from torch import nn

from prunetui.core.cost import measure_latency, model_device, one_input
from prunetui.errors import UserError

Runner = Callable[[int], float]  # batch size -> ms per forward pass of that batch (median)
RUNTIMES = ("torch", "onnxruntime")


class Timer(Protocol):
    """What the latency model and the planner time with (module docstring)."""

    runtime: str
    threads: int

    def prepare(self, model: nn.Module) -> Runner: ...


def model_dtype(model: nn.Module) -> torch.dtype:
    """The dtype of the model's first floating parameter (float32 without any)."""
    return next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)


@dataclass
class TorchTimer:
    """PyTorch eager, in eval mode under inference mode, on the model's own device and dtype.

    `example`: one input (1 x C x ...); `threads`: the CPU thread pool while timing; `min_run_time`:
    seconds of timed blocks per call (the effort: 0.001 in tests, 0.1-0.5 for real figures)."""

    example: torch.Tensor
    threads: int
    min_run_time: float = 0.1
    runtime: str = "torch"

    def prepare(self, model: nn.Module) -> Runner:
        example = self.example.to(model_dtype(model))

        def run(batch: int) -> float:
            return measure_latency(model, example, batch, self.threads, self.min_run_time).ms

        return run


@dataclass
class OrtTimer:
    """The model exported to ONNX (opset 17, dynamic batch; core.onnx_export) and run by onnxruntime's
    CPUExecutionProvider with `threads` intra-op threads (one inter-op thread), all graph optimisations
    on. Raises UserError when onnxruntime is not installed or the model does not export."""

    example: torch.Tensor
    threads: int
    min_run_time: float = 0.1
    runtime: str = "onnxruntime"

    def prepare(self, model: nn.Module) -> Runner:
        session = self._session(model)
        x = one_input(self.example, model).float().cpu().numpy()

        def run(batch: int) -> float:
            feed = {"input": x.repeat(batch, axis=0)}
            return _blocked_median(lambda: session.run(None, feed), self.min_run_time)

        return run

    def _session(self, model: nn.Module):
        try:
            import onnxruntime
        except ImportError:
            raise UserError(
                "--runtime onnxruntime needs onnxruntime: pip install onnxruntime (or prunetui's 'export' extra)"
            ) from None
        from prunetui.core.onnx_export import export_onnx

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        with tempfile.TemporaryDirectory(prefix="prunetui-ort-") as folder:
            path = Path(folder) / "model.onnx"
            export_onnx(model, one_input(self.example, model), path)
            return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _blocked_median(call: Callable[[], object], min_run_time: float) -> float:
    """Median ms of `call` over blocks filling at least `min_run_time` seconds (one untimed warm-up; at
    least 3 blocks), as torch.utils.benchmark's blocked_autorange does for the eager model."""
    call()
    started, samples = time.perf_counter(), []
    while time.perf_counter() - started < min_run_time or len(samples) < 3:
        t0 = time.perf_counter()
        call()
        samples.append((time.perf_counter() - t0) * 1000.0)
    return statistics.median(samples)


def timer_for(runtime: str, example: torch.Tensor, threads: int, min_run_time: float) -> Timer:
    """The Timer of `runtime` ("torch" or "onnxruntime"; UserError otherwise, and for onnxruntime on a
    model that is not on the CPU)."""
    if runtime == "torch":
        return TorchTimer(example, threads, min_run_time)
    if runtime == "onnxruntime":
        if example.device.type != "cpu":
            raise UserError("--runtime onnxruntime measures on the CPU: open the model with --device cpu")
        return OrtTimer(example, threads, min_run_time)
    raise UserError(f"unknown runtime '{runtime}': expected one of {', '.join(RUNTIMES)}")


@dataclass(frozen=True)
class Speedup:
    """Measured speed-up of a model over dense at one batch: `ratio` the median of the ABBA pair ratios
    (dense ms / pruned ms), `low`..`high` their range; `dense_ms` and `ms` the medians of each side."""

    ratio: float
    low: float
    high: float
    dense_ms: float
    ms: float

    @property
    def slower(self) -> bool:
        """Measured slower than dense (the median ratio below 1)."""
        return self.ratio < 1.0

    @property
    def within_noise(self) -> bool:
        """1.0 lies inside the spread: not a gain nor a loss that this measurement can tell."""
        return self.low <= 1.0 <= self.high

    def as_json(self) -> dict:
        return {
            "ratio": self.ratio,
            "low": self.low,
            "high": self.high,
            "dense_ms": self.dense_ms,
            "ms": self.ms,
        }


def measure_speedup(
    dense: Runner, pruned: Runner, batches: Iterable[int], rounds: int = 1
) -> dict[int, Speedup]:
    """At each batch, `rounds` x (dense, pruned, pruned, dense): {batch: Speedup} (module docstring)."""
    pairs: dict[int, list[tuple[float, float]]] = {b: [] for b in batches}
    for _ in range(max(1, rounds)):
        for batch, found in pairs.items():
            first_dense, first = dense(batch), pruned(batch)
            second, last_dense = pruned(batch), dense(batch)
            found += [(first_dense, first), (last_dense, second)]
    return {batch: _speedup(found) for batch, found in pairs.items()}


def _speedup(pairs: list[tuple[float, float]]) -> Speedup:
    ratios = [d / p for d, p in pairs]
    dense_ms = statistics.median(d for d, _ in pairs)
    ms = statistics.median(p for _, p in pairs)
    return Speedup(statistics.median(ratios), min(ratios), max(ratios), dense_ms, ms)


def speedups_json(measured: Mapping[int, Speedup]) -> tuple[dict[str, float], dict[str, list[float]]]:
    """The `speedup` ({batch: ratio}) and `speedup_spread` ({batch: [low, high]}) JSON keys (batches as
    strings, as JSON object keys are)."""
    ratio = {str(b): s.ratio for b, s in measured.items()}
    spread = {str(b): [s.low, s.high] for b, s in measured.items()}
    return ratio, spread


def device_of(model: nn.Module) -> str:
    return str(model_device(model))
