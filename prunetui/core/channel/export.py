"""A deployable file that needs neither prunetui nor the model's Python class: ONNX, else `.pt2`.

ONNX is written with `torch.onnx.export` (the TorchScript exporter, `dynamo=False`: it needs no
onnxscript), batch dimension dynamic, opset 17; it is checked with the onnx checker when `onnx` is
installed. When ONNX export fails, `torch.export`'s program is saved as `.pt2` instead. Writes are
atomic (prunetui.core.atomic.write_atomic).
"""

import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from prunetui.core.atomic import write_atomic
from prunetui.core.cost import evaluating

OPSET = 17


@dataclass(frozen=True)
class Exported:
    """Where the deployable file went and its format ("onnx" or "pt2"); `checked`: passed onnx's checker."""

    path: Path
    format: str
    checked: bool


def export_deployable(model: nn.Module, example_input: torch.Tensor, path: str | os.PathLike) -> Exported:
    """Export `model` (in eval mode, on its own device; its mode is restored) for deployment.

    `example_input`: N x C x H x W on any device (moved to the model's). `path` ending `.onnx` (or
    anything else): ONNX; if that export raises, a `.pt2` beside it (suffix replaced). Raises
    RuntimeError when both fail.
    """
    from prunetui.core.cost import one_input

    target = Path(path)
    with evaluating(model):
        x = one_input(example_input, model)
        try:
            data = _onnx_bytes(model, x)
        except Exception as onnx_error:  # noqa: BLE001 - fall back to torch.export on any exporter failure
            return _export_pt2(model, x, target.with_suffix(".pt2"), onnx_error)
    checked = check_onnx(data)
    write_atomic(target, lambda f: f.write(data), binary=True)
    return Exported(target, "onnx", checked)


def _onnx_bytes(model: nn.Module, x: torch.Tensor) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(
            model,
            (x,),
            buffer,
            dynamo=False,
            opset_version=OPSET,
            input_names=["input"],
            output_names=["output"],
            dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
        )
    return buffer.getvalue()


def _export_pt2(model: nn.Module, x: torch.Tensor, target: Path, cause: Exception) -> Exported:
    try:
        program = torch.export.export(model, (x,))
        write_atomic(target, lambda f: torch.export.save(program, f), binary=True)
    except Exception as error:  # noqa: BLE001
        raise RuntimeError(f"ONNX export failed ({cause}); torch.export failed too ({error})") from error
    return Exported(target, "pt2", False)


def check_onnx(data: bytes) -> bool:
    """Run onnx's model checker on serialized ONNX bytes; False when `onnx` is not installed.

    Raises onnx.checker.ValidationError for an invalid model.
    """
    try:
        import onnx
    except ImportError:
        return False
    onnx.checker.check_model(onnx.load_from_string(data))
    return True


def onnx_outputs(path: str | os.PathLike, images: torch.Tensor) -> np.ndarray | None:
    """The exported model's outputs on `images` (N x C x H x W) with onnxruntime on CPU; None when
    onnxruntime is not installed."""
    try:
        import onnxruntime
    except ImportError:
        return None
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": images.detach().cpu().numpy()})[0]
