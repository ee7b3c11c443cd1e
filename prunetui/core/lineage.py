"""The structure of a channel-pruned model as plain data: the stages of kept channels that turn the
architecture a spec builds into the model in hand.

A stage is one channel prune: its algorithm, the output channels each group kept (indices into the
model as it was before that stage), the ratios asked for and the example input shape the groups were
traced on. Replaying the stages in order on a freshly built model gives the smaller architecture; its
state_dict then loads. Checkpoints, resume states and distributed jobs carry stages, never a pickled
module.

A channel checkpoint is a `torch.save` of plain containers and tensors only, so it loads with
`torch.load(weights_only=True)`:

    {"format": "prunetui.channel", "version": 2, "stages": [{"algorithm": "lab-vgg" | "depgraph",
     "kept": {group: [int, ...]}, "targets": {group: ratio}, "example_shape": [1, C, H, W]}, ...],
     "state_dict": {name: tensor}, "prunetui": {...the run's record...}}

Version 1 held one stage's keys at the top level; it is still read.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from prunetui.core.channel import ALGORITHMS, ChannelResult, apply_kept
from prunetui.errors import UserError

FORMAT = "prunetui.channel"
VERSION = 2


@dataclass(frozen=True)
class ChannelStage:
    algorithm: str  # core.channel.ALGORITHMS
    kept: Mapping[str, Sequence[int]]  # group name -> kept output-channel indices, ascending
    targets: Mapping[str, float] = field(default_factory=dict)  # group name -> ratio removed
    example_shape: tuple[int, ...] = ()  # 1 x C x ... the groups were traced on

    @classmethod
    def of(cls, result: ChannelResult, example: torch.Tensor) -> "ChannelStage":
        kept = {name: [int(i) for i in index] for name, index in result.kept.items()}
        return cls(result.algorithm, kept, dict(result.targets), (1, *example.shape[1:]))

    def as_dict(self) -> dict:
        return {
            "algorithm": self.algorithm,
            "kept": {name: list(index) for name, index in self.kept.items()},
            "targets": dict(self.targets),
            "example_shape": list(self.example_shape),
        }


def stage_from_dict(data: Mapping) -> ChannelStage:
    """The stage `ChannelStage.as_dict` wrote. UserError for an unknown algorithm or a missing key."""
    try:
        algorithm = data["algorithm"]
        kept = {str(name): [int(i) for i in index] for name, index in data["kept"].items()}
        shape = tuple(int(n) for n in data["example_shape"])
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise UserError(f"a channel stage is damaged ({error})") from None
    if algorithm not in ALGORITHMS:
        raise UserError(f"unknown channel algorithm {algorithm!r}; known: {', '.join(ALGORITHMS)}")
    return ChannelStage(algorithm, kept, dict(data.get("targets", {})), shape)


def replay(model: nn.Module, stages: Iterable[ChannelStage]) -> nn.Module:
    """Apply `stages` in order to `model` (in place; the architecture each stage was chosen on).

    Raises UserError when a stage does not fit the model."""
    for stage in stages:
        example = torch.zeros(stage.example_shape, device=_device(model))
        try:
            apply_kept(model, example, {k: list(v) for k, v in stage.kept.items()}, stage.algorithm)
        except (AttributeError, KeyError, IndexError, RuntimeError, ValueError) as error:
            raise UserError(f"the channel stages do not fit this model: {str(error)[:300]}") from error
    return model


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def channel_checkpoint(stages: Sequence[ChannelStage], model: nn.Module) -> dict:
    """The checkpoint of a channel-pruned model (plain data + CPU tensors), as the module docstring."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "stages": [stage.as_dict() for stage in stages],
        "state_dict": {name: t.detach().cpu().clone() for name, t in model.state_dict().items()},
    }


def is_channel_checkpoint(obj: object) -> bool:
    """True for a loaded object written by `channel_checkpoint` (any version)."""
    return isinstance(obj, Mapping) and obj.get("format") == FORMAT


def stages_of(saved: Mapping) -> tuple[ChannelStage, ...]:
    """The stages a channel checkpoint holds (version 1: its one stage). UserError for a newer version."""
    version = saved.get("version", 0)
    if not isinstance(version, int) or version > VERSION:
        raise UserError(f"channel checkpoint version {version} is newer than this prunetui reads")
    if version < 2:
        return (stage_from_dict(saved),)
    return tuple(stage_from_dict(stage) for stage in saved.get("stages", []))


def rebuild(model: nn.Module, saved: Mapping) -> nn.Module:
    """The smaller model: `saved`'s stages replayed on `model` (freshly built from the spec the checkpoint
    was pruned from; in place), then its state_dict. UserError for a newer version, an unknown algorithm,
    or a state_dict that does not fit (naming the first mismatched keys)."""
    replay(model, stages_of(saved))
    try:
        model.load_state_dict(saved["state_dict"], strict=True)
    except (KeyError, RuntimeError) as error:
        raise UserError(f"the channel checkpoint does not fit this model: {str(error)[:300]}") from error
    return model
