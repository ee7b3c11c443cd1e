"""Reading weights files without running code: torch.save files (`weights_only=True`), .safetensors and
prunetui's .ptz files (core.ptz: data only).

Every failure is one UserError line that names the file and says what to do.
"""

import argparse
import os
import pickle
import re
import warnings
from typing import Any

import torch

from prunetui.core.ptz import PtzError, is_ptz, load_ptz
from prunetui.errors import UserError

# Training scripts (torchvision's reference, timm) save their command-line arguments beside the weights.
# An argparse.Namespace is a plain attribute holder: the one class added to the weights_only unpickler.
SAFE_CLASSES = [argparse.Namespace]
_SAFETENSORS_SUFFIX = ".safetensors"


def read_weights_file(path: str, what: str = "checkpoint") -> Any:
    """The object in a torch.save file, or the {name: tensor} dict of a .safetensors file.

    A .safetensors file is recognised by its suffix or by its header (8-byte length, then JSON).
    Raises UserError when the file is missing, a directory, damaged, or would run code.
    """
    _check_is_file(path, what)
    if path.endswith(_SAFETENSORS_SUFFIX) or _looks_like_safetensors(path):
        return read_safetensors(path, what)
    if _looks_like_ptz(path):
        return read_ptz_file(path, what)
    return read_torch_file(path, what)


def read_ptz_file(path: str, what: str = "checkpoint") -> dict:
    """A .ptz file (core.ptz: prunetui's compressed export, no pickle) as the dict its checkpoint
    export holds: {"state_dict": the exact tensors, "prunetui": the record, channel stages...}."""
    try:
        state, info = load_ptz(path)
    except (PtzError, KeyError, TypeError, ValueError) as error:
        raise UserError(f"cannot read {what} {path}: {short_reason(error)}") from error
    return {**info, "state_dict": state}


def _looks_like_ptz(path: str) -> bool:
    with open(path, "rb") as file:
        return is_ptz(file.read(8))


def read_torch_file(
    path: str, what: str = "checkpoint", hint: str = "save model.state_dict() instead"
) -> Any:
    """`torch.load` with `weights_only=True` (plus argparse.Namespace), failures as one-line UserErrors."""
    _check_is_file(path, what)
    try:
        with warnings.catch_warnings(), torch.serialization.safe_globals(SAFE_CLASSES):
            # torch warns on stderr about pickle protocols; the TUI owns the terminal.
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for damaged files (RuntimeError, KeyError...)
        if isinstance(error, pickle.UnpicklingError) and str(error).startswith("Weights only load failed"):
            raise UserError(_refusal_message(path, what, hint, str(error))) from error
        raise UserError(f"cannot read {what} {path}: {short_reason(error)}") from error


def read_safetensors(path: str, what: str = "checkpoint") -> dict[str, torch.Tensor]:
    """All tensors of a .safetensors file, on CPU. Needs the `safetensors` package (a dependency)."""
    try:
        from safetensors.torch import load_file
    except ImportError as error:  # pragma: no cover - safetensors is a dependency
        raise UserError(f"reading {path} needs the safetensors package: pip install safetensors") from error
    try:
        return load_file(path, device="cpu")
    except Exception as error:  # SafetensorError, OSError, ValueError for damaged headers
        raise UserError(
            f"cannot read {what} {path}: not a valid .safetensors file ({short_reason(error)}); "
            "write it again with safetensors.torch.save_file"
        ) from error


def short_reason(error: Exception) -> str:
    """The first sentence of an exception's message, at most 120 characters."""
    if isinstance(error, KeyError | EOFError) or not str(error).strip():
        return "not a file written by torch.save, or truncated"
    first_line = str(error).strip().splitlines()[0]
    return first_line.split(". ")[0][:120]


def _check_is_file(path: str, what: str) -> None:
    if not os.path.exists(path):
        raise UserError(f"{what} not found: {path}")
    if os.path.isdir(path):
        raise UserError(f"{what} {path} is a directory, expected a file")


def _looks_like_safetensors(path: str) -> bool:
    # torch.save writes a zip (PK) or a pickle (0x80); safetensors a little-endian u64 then '{'.
    with open(path, "rb") as file:
        head = file.read(9)
    return len(head) == 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < 100_000_000


def _refusal_message(path: str, what: str, hint: str, message: str) -> str:
    found = re.search(r"GLOBAL ([\w.]+)", message)
    needs = f" ({found.group(1)})" if found else ""
    return (
        f"refused to load {what} {path}: unpickling it would run code{needs}; prunetui only loads "
        f"weights (weights_only=True): {hint}"
    )
