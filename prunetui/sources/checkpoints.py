"""Checkpoint loading: always `weights_only=True`, strict, with errors that name the keys."""

import os
import pickle
import re
import warnings
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from prunetui.errors import UserError

_SHOWN = 3  # keys named per kind of mismatch


def read_torch_file(
    path: str, what: str = "checkpoint", hint: str = "save model.state_dict() instead"
) -> Any:
    """`torch.load` with `weights_only=True`, every failure turned into a one-line UserError."""
    if not os.path.exists(path):
        raise UserError(f"{what} not found: {path}")
    if os.path.isdir(path):
        raise UserError(f"{what} {path} is a directory, expected a file")
    try:
        with warnings.catch_warnings():
            # torch warns on stderr about pickle protocols; the TUI owns the terminal.
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for damaged files (RuntimeError, KeyError...)
        if isinstance(error, pickle.UnpicklingError) and str(error).startswith("Weights only load failed"):
            raise UserError(_refusal_message(path, what, hint, str(error))) from error
        raise UserError(f"cannot read {what} {path}: {_short_reason(error)}") from error


def _refusal_message(path: str, what: str, hint: str, message: str) -> str:
    found = re.search(r"GLOBAL ([\w.]+)", message)
    needs = f" ({found.group(1)})" if found else ""
    return (
        f"refused to load {what} {path}: unpickling it would run code{needs}; prunetui only loads "
        f"weights (weights_only=True): {hint}"
    )


def _short_reason(error: Exception) -> str:
    if isinstance(error, KeyError | EOFError) or not str(error).strip():
        return "not a file written by torch.save, or truncated"
    first_line = str(error).strip().splitlines()[0]
    return first_line.split(". ")[0][:120]


def load_checkpoint(model: nn.Module, path: str) -> None:
    """Strictly load the weights in `path` into `model` (on CPU, cast to the model's float dtypes)."""
    state = extract_state_dict(read_torch_file(path), path)
    state = _strip_prefix(state, "module.")  # saved from DataParallel
    expected = model.state_dict()
    problems = _mismatches(state, expected)
    if problems:
        raise UserError(f"checkpoint does not fit the model: {problems}")
    cast = {key: _cast_like(value, expected[key]) for key, value in state.items()}
    try:
        model.load_state_dict(cast, strict=True)
    except RuntimeError as error:  # a custom module's own loading rules
        raise UserError(f"checkpoint does not fit the model: {_short_reason(error)}") from error


def extract_state_dict(obj: Any, path: str) -> dict[str, torch.Tensor]:
    """A plain state_dict, or the one held under "state_dict" (the lab's and prunetui's formats)."""
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not obj:
        raise UserError(
            f"checkpoint {path} holds no weights: expected a state_dict or a dict with a 'state_dict' key"
        )
    not_tensors = [str(key) for key, value in obj.items() if not isinstance(value, torch.Tensor)]
    if not_tensors:
        raise UserError(
            f"checkpoint {path} is not a state_dict: {_first(not_tensors)} not tensors "
            "(expected a state_dict or a dict with a 'state_dict' key)"
        )
    return {str(key): value for key, value in obj.items()}


def _strip_prefix(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    if all(key.startswith(prefix) for key in state):
        return {key[len(prefix) :]: value for key, value in state.items()}
    return state


def _mismatches(state: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Tensor]) -> str:
    # BatchNorm fills a missing num_batches_tracked itself; it does not affect the weights.
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    shapes = [
        f"{k} {tuple(state[k].shape)} in checkpoint vs {tuple(expected[k].shape)} in model"
        for k in state
        if k in expected and state[k].shape != expected[k].shape
    ]
    parts = [("missing", missing), ("unexpected", unexpected), ("shape mismatch", shapes)]
    return "; ".join(f"{label} {_first(items)}" for label, items in parts if items)


def _first(items: list[str]) -> str:
    shown = ", ".join(items[:_SHOWN])
    rest = len(items) - _SHOWN
    return f"{shown} and {rest} more" if rest > 0 else shown


def _cast_like(value: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    if value.is_floating_point() and target.is_floating_point():
        return value.to(dtype=target.dtype)
    return value
