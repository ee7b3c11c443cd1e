"""The `channel` method: structured pruning, one ratio per channel group.

Fine-grained methods (`Criterion`) score weights and mask them; shapes never change. A structured
method removes whole output channels, so it cannot be a mask: it lists its units (`groups`), returns a
smaller model and the kept indices (`apply`), and projects MACs, params and size without touching the
model (`projected_cost`). A Plan carries it like any method: `Plan("channel", {group name: ratio})`,
a ratio being the fraction of the group's output channels removed.
"""

from collections.abc import Callable, Sequence
from threading import Event
from typing import ClassVar

import torch
from torch import nn

from prunetui.core.channel import (
    ChannelGroup,
    ChannelResult,
    algorithm_for,
    channel_groups,
    kept_counts,
    prune_channels,
)
from prunetui.core.cost import Cost, measure_cost
from prunetui.core.methods.base import Plan


class StructuredMethod:
    """A method that changes shapes: groups of channels in, a smaller model and kept indices out."""

    name: ClassVar[str]
    structured: ClassVar[bool] = True  # Criterion has no such attribute: getattr(m, "structured", False)
    needs_data: ClassVar[bool] = False
    summary: ClassVar[str]

    def groups(self, model: nn.Module, example_input: torch.Tensor) -> list[ChannelGroup]:
        """The units a plan names (model order), not-prunable ones included with their reason."""
        raise NotImplementedError

    def apply(self, model: nn.Module, plan: Plan, example_input: torch.Tensor) -> ChannelResult:
        """A smaller copy of `model` pruned to `plan` and the kept indices; `model` is untouched."""
        raise NotImplementedError

    def projected_cost(self, model: nn.Module, plan: Plan, example_input: torch.Tensor) -> Cost:
        """MACs (batch 1), params and size (MiB) after `plan`, `model` untouched."""
        raise NotImplementedError


class Channel(StructuredMethod):
    """The lab's channel pruning on its VGG; Torch-Pruning dependency groups on any other model."""

    name = "channel"
    summary = "structured: remove whole output channels (smaller and faster; lab part 2 on vgg-cifar)"

    def groups(self, model: nn.Module, example_input: torch.Tensor) -> list[ChannelGroup]:
        return channel_groups(model, example_input)

    def kept_counts(
        self, model: nn.Module, groups: list[ChannelGroup], plan: Plan
    ) -> dict[str, tuple[int, int]]:
        """(kept, total) channels per group at `plan`: the table's column, no pruning done."""
        return kept_counts(groups, plan.targets, algorithm_for(model))

    def apply(self, model: nn.Module, plan: Plan, example_input: torch.Tensor) -> ChannelResult:
        """Raises UserError for unknown or unprunable groups and ratios outside [0, 1]."""
        return prune_channels(model, example_input, plan.targets)

    def projected_cost(self, model: nn.Module, plan: Plan, example_input: torch.Tensor) -> Cost:
        """Measured on a pruned copy (exact; ~0.1 s on the lab VGG, ~0.5 s on resnet18 at 32x32 on
        one CPU core: run it off the UI thread and coalesce keystrokes)."""
        if not plan.active():
            return measure_cost(model, example_input)
        return measure_cost(self.apply(model, plan, example_input).model, example_input)


def scan_groups(
    model: nn.Module,
    example_input: torch.Tensor,
    names: Sequence[str],
    ratios: Sequence[float],
    evaluate: Callable[[nn.Module], float],
    cancel: Event | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, list[float]]:
    """Group-aware sensitivity: each group alone at each ratio, on a copy, then `evaluate(copy)`.

    A residual-coupled group is one unit, so its risk is not hidden (scanning one of its convs alone
    would remove nothing from the add and report no drop). `model` is never modified. Returns
    {group: [accuracy per ratio]}, ratio 0 evaluated on the model itself; stops early when `cancel`
    is set (the groups done so far are returned). `progress(done, total)` after every evaluation.
    """
    results: dict[str, list[float]] = {}
    total, done = len(names) * len(ratios), 0
    for name in names:
        row = []
        for ratio in ratios:
            if cancel is not None and cancel.is_set():
                return results
            pruned = prune_channels(model, example_input, {name: ratio}).model if ratio > 0 else model
            row.append(evaluate(pruned))
            done += 1
            if progress:
                progress(done, total)
        results[name] = row
    return results
