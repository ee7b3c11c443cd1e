"""ONNX export that tells the truth: an ONNX file that matches PyTorch, or one error line and no file.

- Exporter: `torch.onnx.export`'s TorchScript exporter (`dynamo=False`: it needs no onnxscript), opset
  17, input "input" and output "output" with a dynamic batch axis ("batch"); traced at batch 2 (a batch of
  1 lets the tracer fold sizes of 1 into constants).
- Whatever the exporter prints (Python, and native code writing to file descriptors 1 and 2) is captured,
  never shown: the CLI's `--json` stdout holds one JSON document. A failure's first sentence is in the
  error; the exporter's whole output and traceback go to a `prunetui-onnx-*.log` in the temp folder.
- AdaptiveAvgPool2d whose output size does not divide its input size (torchvision's alexnet and vgg below
  224x224 inputs) is refused by the exporter; it is exported as two averaging matrix products instead
  (PyTorch's windows: start floor(i*n/o), end ceil((i+1)*n/o)), the same values. nn.MultiheadAttention
  is exported through its plain path (its fused inference kernel has no ONNX export: torchvision's ViT).
- Checked before it is renamed into place: onnx's checker (when onnx is installed) and onnxruntime's
  outputs against PyTorch's at batch 1 and CHECK_BATCH (when onnxruntime is installed), within
  ATOL + RTOL * max|PyTorch output| (PyTorch in full float32: TF32 off on CUDA). A model whose forward
  fixes the batch size (`x.view(1, -1)`) fails in PyTorch at the other batch or returns another batch:
  it is refused before exporting. One whose tracer baked the batch in (`x.view(len(x), -1)`) runs in
  onnxruntime at the traced batch only: refused, saying so. (CHECK_BATCH, not the evaluation batch of
  512: enough to show a batch baked in, and quick for a large model on CPU.)
- Written atomically: the exporter writes into a private folder beside the target (core.atomic.
  temp_folder), then the file is renamed over the target; a model over 2 GiB, whose tensors the exporter
  writes as separate files, is saved with them in one `<name>.data` beside it (needs onnx).
Errors: UserError, one line, for each of these; an existing target is then unchanged.
"""

import contextlib
import ctypes
import io
import math
import os
import sys
import tempfile
import traceback
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from prunetui.core.atomic import disk_error, storage_error, temp_folder
from prunetui.core.cost import evaluating, model_device
from prunetui.core.outputs import logits_of
from prunetui.errors import UserError

OPSET = 17
CHECK_BATCH = 16  # the second batch size checked (the first is 1)
ATOL, RTOL = 1e-4, 1e-4
TRACE_BATCH = 2
BAKED_BATCH = (
    f"the traced forward fixed the batch size at {TRACE_BATCH} (a Python int from the input's size, e.g. "
    "x.view(len(x), -1)): reshape with x.flatten(1) or x.view(x.size(0), -1)"
)


@dataclass(frozen=True)
class Exported:
    """Where the ONNX file went; `checked`: onnx's checker passed (False: onnx not installed);
    `differences`: {batch size: max |onnxruntime - PyTorch|} ({}: onnxruntime not installed);
    `data_file`: the external data file of a model over 2 GiB, else None."""

    path: Path
    format: str = "onnx"
    checked: bool = False
    differences: dict[int, float] = field(default_factory=dict)
    data_file: Path | None = None


def export_onnx(model: nn.Module, images: torch.Tensor, path: str | os.PathLike) -> Exported:
    """Export `model` (eval mode, on its own device; its mode restored) as ONNX at `path`, checked.

    `images`: N x C x H x W (N >= 1) real inputs; the checks use them and, up to CHECK_BATCH rows, seeded
    random rows of their mean and spread. Raises UserError: the forward fixes the batch size, the
    exporter fails, the file does not match PyTorch, or the disk fails; `path` is then as it was.
    """
    target = Path(path)
    batch = check_inputs(images, model_device(model))
    with evaluating(model), captured_output() as output:
        with _full_float32():
            expected = {n: _pytorch_outputs(model, batch[:n]) for n in (1, CHECK_BATCH)}
        try:
            with temp_folder(target) as folder:
                staged = folder / target.name
                _run_exporter(model, batch[:TRACE_BATCH], staged, output)
                staged, data_file = _single_data_file(folder, staged, target)
                checked = check_onnx(staged)
                differences = _compare(staged, batch, expected)
                if data_file is not None:
                    os.replace(data_file, target.with_name(data_file.name))
                os.replace(staged, target)
        except OSError as error:  # temp_folder names the target
            raise storage_error(error, "nothing written; an earlier file there is unchanged") from None
    kept_data = target.with_name(data_file.name) if data_file is not None else None
    return Exported(target, "onnx", checked, differences, kept_data)


def check_inputs(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """CHECK_BATCH x C x H x W on `device`: `images`' rows first, then seeded random rows (normal, with
    the images' mean and standard deviation), so every row differs and a batch mix-up shows."""
    images = images.detach().float().cpu()[:CHECK_BATCH]
    generator = torch.Generator().manual_seed(0)
    filler = torch.randn(CHECK_BATCH - len(images), *images.shape[1:], generator=generator)
    spread = float(images.std()) if images.numel() > 1 else 1.0
    return torch.cat([images, filler * (spread or 1.0) + float(images.mean())]).to(device)


def _pytorch_outputs(model: nn.Module, x: torch.Tensor) -> np.ndarray:
    """The logits at x's batch; refuses a model whose forward fixes the batch size."""
    try:
        out = logits_of(model(x))
    except UserError:
        raise
    except torch.OutOfMemoryError:
        raise UserError(
            f"cannot export as ONNX: out of memory running the model at batch {len(x)} to check the file; "
            "nothing written"
        ) from None
    except Exception as error:  # noqa: BLE001 - any failure here is the model's, at this batch size
        raise UserError(_fixed_batch(len(x), f"its forward fails ({_first_sentence(error)})")) from None
    if out.dim() == 0 or out.shape[0] != len(x):
        raise UserError(_fixed_batch(len(x), f"its forward returns shape {tuple(out.shape)}"))
    return out.detach().float().cpu().numpy()


@contextlib.contextmanager
def _full_float32() -> Iterator[None]:
    """TF32 off on CUDA (cuDNN convolutions use it by default): PyTorch's outputs in full float32, as
    onnxruntime computes them on CPU."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def _fixed_batch(n: int, what: str) -> str:
    return (
        f"cannot export as ONNX: at batch {n} {what}, so the model fixes its batch size (e.g. "
        "x.view(1, -1)) and an ONNX file with a batch axis would not match it; reshape with "
        "x.flatten(1) or x.view(x.size(0), -1); nothing written"
    )


def _run_exporter(model: nn.Module, x: torch.Tensor, staged: Path, output: Callable[[], str]) -> None:
    """torch.onnx.export into `staged`; a failure as one UserError line (`output()`: what it printed)."""
    with _exportable_pools(model, x), _attention_without_fast_path(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice, tracer warnings
        try:
            torch.onnx.export(
                model,
                (x,),
                str(staged),
                dynamo=False,
                opset_version=OPSET,
                input_names=["input"],
                output_names=["output"],
                dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
            )
            return
        except Exception as error:  # noqa: BLE001 - the exporter raises many types
            failure = error
    if disk_error(failure) is not None:
        raise failure  # temp_folder names the target
    log = _write_log(failure, output())
    raise UserError(
        f"cannot export as ONNX (opset {OPSET}, TorchScript exporter): {_first_sentence(failure)}; "
        f"nothing written{log}"
    ) from None


def _single_data_file(folder: Path, staged: Path, target: Path) -> tuple[Path, Path | None]:
    """The staged model and its data file: none when the exporter wrote one file; else (a model over
    2 GiB: one file per tensor) the model saved anew with all tensors in `<target name>.data`."""
    if [p.name for p in folder.iterdir()] == [staged.name]:
        return staged, None
    try:
        import onnx
    except ImportError:
        raise UserError(
            f"cannot export as ONNX: the model is over 2 GiB, and writing its weights beside {target} "
            "needs the onnx package (pip install onnx); nothing written"
        ) from None
    final = folder / "final"
    final.mkdir()
    data_name = f"{target.name}.data"
    proto = onnx.load(str(staged))  # reads the per-tensor files beside it
    onnx.save_model(proto, str(final / target.name), save_as_external_data=True, location=data_name)
    return final / target.name, final / data_name


def check_onnx(path: str | os.PathLike) -> bool:
    """onnx's model checker on the file at `path` (external data beside it); False when onnx is not
    installed. Raises UserError for an invalid model."""
    try:
        import onnx
    except ImportError:
        return False
    try:
        onnx.checker.check_model(str(path), full_check=False)
    except onnx.checker.ValidationError as error:
        raise UserError(
            f"cannot export as ONNX: onnx's checker refuses it ({_first_sentence(error)})"
        ) from None
    return True


def _compare(path: Path, batch: torch.Tensor, expected: dict[int, np.ndarray]) -> dict[int, float]:
    """{batch size: max difference} between onnxruntime and PyTorch; UserError beyond the tolerance."""
    differences: dict[int, float] = {}
    for n, want in expected.items():
        try:
            got = onnx_outputs(path, batch[:n])
        except Exception as error:  # noqa: BLE001 - onnxruntime's own error types (a shape it cannot run)
            why = f"; {BAKED_BATCH}" if _runs(path, batch[:TRACE_BATCH]) else ""
            raise UserError(
                f"the ONNX file does not run in onnxruntime at batch {n} ({_first_sentence(error)}){why}; "
                "nothing written"
            ) from None
        if got is None:
            return {}
        if got.shape != want.shape:
            raise UserError(
                f"the ONNX file does not match PyTorch at batch {n}: output shape {got.shape} vs "
                f"{want.shape}; {BAKED_BATCH}; nothing written"
            )
        difference = float(np.abs(got - want).max()) if want.size else 0.0
        tolerance = ATOL + RTOL * float(np.abs(want).max(initial=0.0))
        if not difference <= tolerance:  # NaN fails too
            raise UserError(
                f"the ONNX file does not match PyTorch at batch {n}: max difference {difference:.2e} "
                f"(tolerance {tolerance:.2e}); nothing written"
            )
        differences[n] = difference
    return differences


def _runs(path: Path, x: torch.Tensor) -> bool:
    try:
        onnx_outputs(path, x)
    except Exception:  # noqa: BLE001
        return False
    return True


def onnx_outputs(path: str | os.PathLike, images: torch.Tensor) -> np.ndarray | None:
    """The exported model's first output on `images` (N x C x H x W) with onnxruntime on CPU; None when
    onnxruntime is not installed."""
    try:
        import onnxruntime
    except ImportError:
        return None
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": images.detach().float().cpu().numpy()})[0]


@contextlib.contextmanager
def captured_output() -> Iterator:
    """Everything written to stdout and stderr inside, by Python or native code (file descriptors 1 and
    2), goes to a temp file instead; yields a function returning the text. Process-wide: not for use
    while a full-screen app draws on the terminal from another thread."""
    text = io.StringIO()
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        sink = tempfile.TemporaryFile()  # noqa: SIM115 - closed below
    except OSError:
        sink = open(os.devnull, "w+b")  # noqa: SIM115 - closed below; a full temp folder loses the text
    saved = [os.dup(1), os.dup(2)]
    try:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        with contextlib.redirect_stdout(text), contextlib.redirect_stderr(text):
            yield lambda: text.getvalue() + _read(sink)
    finally:
        _flush_c_streams()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)
        sink.close()


def _read(sink) -> str:
    _flush_c_streams()
    sink.seek(0)
    return sink.read().decode("utf-8", "replace")


def _flush_c_streams() -> None:
    """fflush(NULL): C stdio buffers (std::cout too) go out before the descriptors are put back."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None).fflush(None)


@contextlib.contextmanager
def _attention_without_fast_path() -> Iterator[None]:
    """nn.MultiheadAttention's fused inference kernel (`aten::_native_multi_head_attention`, taken under
    no_grad in eval mode: torchvision's ViT) has no ONNX export; its plain path (the same values) has."""
    enabled = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        yield
    finally:
        torch.backends.mha.set_fastpath_enabled(enabled)


@contextlib.contextmanager
def _exportable_pools(model: nn.Module, x: torch.Tensor) -> Iterator[None]:
    """AdaptiveAvgPool2d modules whose output size does not divide their input size (at `x`) run as
    two matrix products while exporting; their forward is put back after."""
    pools = [m for m in model.modules() if isinstance(m, nn.AdaptiveAvgPool2d)]
    sizes: dict[nn.Module, tuple[tuple[int, int], tuple[int, int]]] = {}

    def record(module, inputs, output) -> None:
        sizes[module] = (tuple(inputs[0].shape[-2:]), tuple(output.shape[-2:]))

    hooks = [pool.register_forward_hook(record) for pool in pools]
    try:
        if pools:
            model(x)
    finally:
        for hook in hooks:
            hook.remove()
    patched = []
    for pool, ((h, w), (oh, ow)) in sizes.items():
        if h % oh or w % ow:
            rows, cols = averaging(h, oh).to(x), averaging(w, ow).to(x).T
            pool.forward = lambda t, rows=rows, cols=cols: torch.matmul(torch.matmul(rows, t), cols)
            patched.append(pool)
    try:
        yield
    finally:
        for pool in patched:
            del pool.forward


def averaging(n: int, out: int) -> torch.Tensor:
    """out x n: row i averages PyTorch's adaptive pooling window [floor(i*n/out), ceil((i+1)*n/out))."""
    matrix = torch.zeros(out, n)
    for i in range(out):
        start, end = (i * n) // out, math.ceil((i + 1) * n / out)
        matrix[i, start:end] = 1.0 / (end - start)
    return matrix


def _first_sentence(error: BaseException) -> str:
    """The first line of an exception's message, up to its first sentence, at most 200 characters."""
    lines = [line for line in str(error).strip().splitlines() if line.strip()]
    first = lines[0] if lines else type(error).__name__
    return first.split(". ")[0].rstrip(".")[:200]


def _write_log(error: BaseException, output: str) -> str:
    """The exporter's output and the traceback in a temp log: '; details in PATH', or '' if not written."""
    try:
        with tempfile.NamedTemporaryFile(
            "w", prefix="prunetui-onnx-", suffix=".log", delete=False, encoding="utf-8"
        ) as log:
            log.write(output + "\n")
            traceback.print_exception(error, file=log)
    except OSError:
        return ""
    return f"; the exporter's output in {log.name}"
