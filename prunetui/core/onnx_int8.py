"""An int8 ONNX model that runs: onnxruntime's static quantization of the fp32 ONNX export (core.onnx_export),
checked against PyTorch and timed against the fp32 model.

- Quantization: `onnxruntime.quantization.quantize_static`, QDQ format, int8 weights (per output channel)
  and int8 activations (S8S8, onnxruntime's default and recommended first choice on CPU), MinMax
  calibration on CALIBRATION_IMAGES training images, after onnxruntime's `quant_pre_process` (shape
  inference and graph optimisation; skipped when it fails). Written atomically (core.atomic.temp_folder).
- Check: both ONNX models and PyTorch on the evaluation images: top-1 accuracy of each, the top-1
  agreement of int8 with PyTorch, the largest logit difference. Below MIN_AGREEMENT percent the file is
  refused (UserError, nothing written): a broken calibration, not rounding.
- Latency (`latency_pair`): onnxruntime CPU sessions with `threads` intra-op threads, fp32 and int8 timed
  in ABBA order (fp32, int8, int8, fp32) for ROUNDS rounds; each round gives the ratio fp32 / int8 of its
  medians. The speed-up is the median ratio, its spread the lowest and highest; int8 is called faster
  or slower only when the whole spread is on one side of 1 (it can be slower: on a CPU without fast
  int8 kernels the quantize and dequantize nodes cost more than they save).
"""

import os
import statistics
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from prunetui.core.atomic import storage_error, temp_folder
from prunetui.core.cost import evaluating
from prunetui.core.outputs import logits_of
from prunetui.errors import UserError

CALIBRATION_IMAGES = 256
CALIBRATION_BATCH = 32
MIN_AGREEMENT = 90.0  # % of evaluation images whose int8 top-1 is PyTorch's
ROUNDS = 3
QUIET = 3  # onnxruntime's log severity: errors only (its warnings would write on the terminal)


@dataclass(frozen=True)
class Int8Check:
    """The int8 model against PyTorch and the fp32 ONNX model on `images` evaluation images."""

    images: int
    agreement: float  # % of images where int8's top-1 is PyTorch's
    max_difference: float  # largest |int8 logit - PyTorch logit|
    accuracy_int8: float
    accuracy_fp32: float  # the fp32 ONNX model's
    accuracy_pytorch: float


@dataclass(frozen=True)
class LatencyPair:
    """fp32 and int8 ONNX latency at `batch` (ms a forward of the whole batch, medians over the rounds)."""

    batch: int
    fp32_ms: float
    int8_ms: float
    ratios: tuple[float, ...]  # fp32 / int8, one a round
    threads: int

    @property
    def speedup(self) -> float:
        return statistics.median(self.ratios)

    @property
    def verdict(self) -> str:
        """ "faster" or "slower" when the whole spread of the ratio is on one side of 1, else "same"."""
        if min(self.ratios) > 1.0:
            return "faster"
        return "slower" if max(self.ratios) < 1.0 else "same"

    def as_dict(self) -> dict:
        return {"batch": self.batch, "fp32_ms": self.fp32_ms, "int8_ms": self.int8_ms,
                "speedup": self.speedup, "spread": [min(self.ratios), max(self.ratios)],
                "verdict": self.verdict, "threads": self.threads}  # fmt: skip


def _onnxruntime():
    try:
        import onnxruntime
        from onnxruntime import quantization  # noqa: F401
    except ImportError:
        raise UserError("an int8 ONNX model needs onnxruntime: pip install 'prunetui[export]'") from None
    onnxruntime.set_default_logger_severity(QUIET)
    return onnxruntime


class _Calibration:
    """onnxruntime's CalibrationDataReader over `images` (N x C x H x W) in batches."""

    def __init__(self, images: torch.Tensor) -> None:
        self.batches: Iterator = iter(images.split(CALIBRATION_BATCH))

    def get_next(self) -> dict | None:
        batch = next(self.batches, None)
        return None if batch is None else {"input": batch.float().numpy()}


def quantize_onnx(fp32_path: str | os.PathLike, calibration: torch.Tensor, path: str | os.PathLike) -> Path:
    """Write the int8 model of the fp32 ONNX file at `fp32_path` to `path` (atomically), calibrated on
    `calibration` images (N x C x H x W, N >= 1). UserError when onnxruntime is missing or refuses."""
    ort = _onnxruntime()
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    target = Path(path)
    try:
        with temp_folder(target) as folder:
            source = folder / "prepared.onnx"
            try:
                quant_pre_process(str(fp32_path), str(source), skip_symbolic_shape=True)
            except Exception:  # noqa: BLE001 - the preparation is an optimisation only
                source = Path(fp32_path)
            staged = folder / target.name
            try:
                quantize_static(
                    str(source), str(staged), _Calibration(calibration), quant_format=QuantFormat.QDQ,
                    per_channel=True, activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                    calibrate_method=CalibrationMethod.MinMax,
                )  # fmt: skip
            except (ValueError, RuntimeError, ort.capi.onnxruntime_pybind11_state.Fail) as error:
                raise UserError(
                    f"onnxruntime cannot quantize the model to int8: {str(error)[:200]}"
                ) from None
            os.replace(staged, target)
    except OSError as error:
        raise storage_error(error, "nothing written; an earlier file there is unchanged") from None
    return target


def session_for(path: str | os.PathLike, threads: int):
    """An onnxruntime CPU session of the file at `path` with `threads` intra-op threads."""
    ort = _onnxruntime()
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = QUIET
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def check_int8(
    int8_path: str | os.PathLike, fp32_path: str | os.PathLike, model: nn.Module, batches: Iterable
) -> Int8Check:
    """Run the int8 and fp32 ONNX models and PyTorch (its device, eval mode) over `batches` of
    (images, labels): accuracies, top-1 agreement, largest logit difference. UserError below
    MIN_AGREEMENT (the file should then not be kept)."""
    int8, fp32 = (
        session_for(int8_path, torch.get_num_threads()),
        session_for(fp32_path, torch.get_num_threads()),
    )
    device = next(model.parameters()).device
    seen = agree = right_int8 = right_fp32 = right_torch = 0
    largest = 0.0
    with evaluating(model):
        for images, labels in batches:
            x = images.float().cpu().numpy()
            want = logits_of(model(images.to(device))).float().cpu().numpy()
            got = int8.run(None, {"input": x})[0]
            base = fp32.run(None, {"input": x})[0]
            truth = labels.numpy()
            seen += len(truth)
            agree += int((got.argmax(1) == want.argmax(1)).sum())
            right_int8 += int((got.argmax(1) == truth).sum())
            right_fp32 += int((base.argmax(1) == truth).sum())
            right_torch += int((want.argmax(1) == truth).sum())
            largest = max(largest, float(np.abs(got - want).max()))
    check = Int8Check(seen, 100 * agree / seen, largest, 100 * right_int8 / seen, 100 * right_fp32 / seen,
                      100 * right_torch / seen)  # fmt: skip
    if check.agreement < MIN_AGREEMENT:
        raise UserError(
            f"the int8 ONNX model agrees with PyTorch on {check.agreement:.1f}% of {seen} evaluation images "
            f"(below {MIN_AGREEMENT:g}%): calibration failed; nothing written"
        )
    return check


def latency_pair(
    fp32_path: str | os.PathLike, int8_path: str | os.PathLike, example: torch.Tensor, batch: int,
    threads: int | None = None, min_run_time: float = 0.2,
) -> LatencyPair:  # fmt: skip
    """fp32 and int8 ONNX latency at `batch` copies of `example` (1 x C x H x W), ABBA over ROUNDS
    rounds of about `min_run_time` seconds a model and a half-round each."""
    threads = threads or torch.get_num_threads()
    sessions = {"fp32": session_for(fp32_path, threads), "int8": session_for(int8_path, threads)}
    x = example[:1].float().cpu().expand(batch, *example.shape[1:]).contiguous().numpy()
    for session in sessions.values():
        session.run(None, {"input": x})  # warm-up
    times: dict[str, list[float]] = {"fp32": [], "int8": []}
    ratios = []
    for _ in range(ROUNDS):
        round_ms = {"fp32": [], "int8": []}
        for name in ("fp32", "int8", "int8", "fp32"):
            round_ms[name].append(_median_ms(sessions[name], x, min_run_time / 2))
        for name, values in round_ms.items():
            times[name] += values
        ratios.append(statistics.mean(round_ms["fp32"]) / statistics.mean(round_ms["int8"]))
    return LatencyPair(batch, statistics.median(times["fp32"]), statistics.median(times["int8"]),
                       tuple(ratios), threads)  # fmt: skip


def _median_ms(session, x: np.ndarray, seconds: float) -> float:
    samples, started = [], time.perf_counter()
    while time.perf_counter() - started < seconds or len(samples) < 3:
        begin = time.perf_counter()
        session.run(None, {"input": x})
        samples.append((time.perf_counter() - begin) * 1000.0)
    return statistics.median(samples)
