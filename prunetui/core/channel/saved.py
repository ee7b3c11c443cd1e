"""Channel-pruned checkpoints without pickles: kept indices per group + the smaller state_dict.

The file is a `torch.save` of plain containers and tensors only, so it loads with
`torch.load(weights_only=True)`:

    {"format": "prunetui.channel", "version": 1, "algorithm": "lab-vgg" | "depgraph",
     "example_shape": [1, C, H, W], "targets": {group: ratio}, "kept": {group: [int, ...]},
     "state_dict": {name: tensor}}

`rebuild` replays the kept indices on a freshly built model of the same spec (tracing it on zeros of
`example_shape` for DepGraph groups), then loads the state_dict: the outputs are those of the moment of
pruning, bit for bit.
"""

import os
from pathlib import Path

import torch
from torch import nn

from prunetui.core.atomic import write_atomic
from prunetui.core.channel.prune import ALGORITHMS, ChannelResult, apply_kept
from prunetui.errors import UserError

FORMAT = "prunetui.channel"
VERSION = 1


def channel_checkpoint(result: ChannelResult, example_input: torch.Tensor) -> dict:
    """The checkpoint of a channel-pruned model (plain data + CPU tensors), as the module docstring."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "algorithm": result.algorithm,
        "example_shape": [1, *example_input.shape[1:]],
        "targets": dict(result.targets),
        "kept": {name: [int(i) for i in index] for name, index in result.kept.items()},
        "state_dict": {name: t.detach().cpu().clone() for name, t in result.model.state_dict().items()},
    }


def save_channel_checkpoint(path: str | os.PathLike, checkpoint: dict) -> Path:
    """Write `checkpoint` to `path` atomically (temp file + rename)."""
    return write_atomic(path, lambda f: torch.save(checkpoint, f), binary=True)


def is_channel_checkpoint(obj: object) -> bool:
    """True for a loaded object written by `channel_checkpoint` (any version)."""
    return isinstance(obj, dict) and obj.get("format") == FORMAT


def load_channel_checkpoint(path: str | os.PathLike) -> dict:
    """Read a channel checkpoint with `weights_only=True`. Raises UserError if it is not one."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - unreadable, truncated or pickled files alike
        raise UserError(f"cannot read channel checkpoint {path}: {error}") from error
    if not is_channel_checkpoint(obj):
        raise UserError(f"{path} is not a prunetui channel checkpoint")
    return obj


def rebuild(model: nn.Module, saved: dict) -> nn.Module:
    """The smaller model: `saved`'s kept indices replayed on `model` (in place), then its state_dict.

    `model`: freshly built from the spec the checkpoint was pruned from (unpruned architecture; its
    weights are replaced). Raises UserError for a newer format version, an unknown algorithm, or a
    state_dict that does not fit (naming the first mismatched keys).
    """
    if saved.get("version", 0) > VERSION:
        raise UserError(
            f"channel checkpoint version {saved.get('version')} is newer than this prunetui reads"
        )
    algorithm = saved.get("algorithm")
    if algorithm not in ALGORITHMS:
        raise UserError(
            f"unknown channel algorithm {algorithm!r} in checkpoint; known: {', '.join(ALGORITHMS)}"
        )
    example = torch.zeros(saved["example_shape"])
    try:
        apply_kept(model, example, saved["kept"], algorithm)
        model.load_state_dict(saved["state_dict"], strict=True)
    except (AttributeError, KeyError, IndexError, RuntimeError, ValueError) as error:
        raise UserError(f"the channel checkpoint does not fit this model: {str(error)[:300]}") from error
    return model
