"""Channel pruning of a model, whichever algorithm applies: the lab's for its VGG, DepGraph groups else.

`prune_channels` returns a smaller copy and the kept output-channel indices per group (plain lists):
the indices, not a pickled module, are what a checkpoint stores and what `apply_kept` replays on a
freshly built model.
"""

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from threading import Event

import torch
from torch import nn

from prunetui.core.channel import depgraph, lab_vgg, verify
from prunetui.core.channel.groups import ChannelGroup, Kept, check_targets, keep_count, remove_count
from prunetui.core.channel.progress import Steps
from prunetui.core.events import Report, ignore

LAB_VGG = "lab-vgg"  # the lab's sort-and-slice (prunetui.sources.vgg.VGG)
DEPGRAPH = "depgraph"  # Torch-Pruning dependency groups (any traceable model)
ALGORITHMS = (LAB_VGG, DEPGRAPH)


@dataclass
class ChannelResult:
    """A channel-pruned model: the smaller copy, kept indices per group, the algorithm that chose them."""

    model: nn.Module
    kept: Kept
    algorithm: str
    targets: dict[str, float]


def algorithm_for(model: nn.Module) -> str:
    """The lab's algorithm for the lab's VGG, DepGraph groups for every other model."""
    return LAB_VGG if lab_vgg.is_lab_vgg(model) else DEPGRAPH


def channel_groups(
    model: nn.Module, example_input: torch.Tensor, report: Report = ignore, cancel: Event | None = None
) -> list[ChannelGroup]:
    """The units the user sets (model order), not-prunable ones included with their reason.

    `example_input`: N x C x ... (H x W, or L for Conv1d), used to trace models other than the lab's VGG.
    A DepGraph group is prunable only if its structure allows it (`depgraph`) and a copy pruned by its
    minimal step passes the forward check (`verify`, cached per model). Progress goes to `report`
    (core.events.Progress, stage "channel groups"); `cancel` is checked between groups and checks
    (core.events.Cancelled). Raises UserError when the model cannot be traced.
    """
    if algorithm_for(model) == LAB_VGG:
        return lab_vgg.lab_groups(model)
    steps = Steps(report, cancel)
    steps.expect(1)
    graph = depgraph.build_graph(model, example_input)
    steps.step("traced")
    return _checked_groups(model, example_input, graph, steps)


def _checked_groups(model: nn.Module, example_input: torch.Tensor, graph, steps: Steps | None = None):
    groups = depgraph.depgraph_groups(model, graph, steps)
    return verify.checked_groups(model, example_input, groups, graph, steps)


def plan_kept(
    model: nn.Module, example_input: torch.Tensor, targets: Mapping[str, float], steps: Steps | None = None
) -> Kept:
    """The output channels each group keeps at `targets` (group name -> fraction removed), not applied.

    Raises UserError for unknown groups, groups that cannot be pruned, ratios outside [0, 1];
    core.events.Cancelled when `steps`' cancel event is set (checked between groups).
    """
    algorithm = algorithm_for(model)
    if algorithm == LAB_VGG:
        active = check_targets(lab_vgg.lab_groups(model), targets)
        return lab_vgg.lab_kept(model, active)
    graph = depgraph.build_graph(model, example_input)
    active = check_targets(_checked_groups(model, example_input, graph, steps), targets)
    return depgraph.depgraph_kept(model, graph, active, steps)


def apply_kept(
    model: nn.Module, example_input: torch.Tensor, kept: Kept, algorithm: str, steps: Steps | None = None
) -> nn.Module:
    """Prune `model` in place to `kept` with `algorithm` (one of ALGORITHMS); returns it.

    The model must have the unpruned architecture the indices were chosen on (e.g. freshly built from
    its spec). Raises ValueError for an unknown algorithm.
    """
    if algorithm == LAB_VGG:
        return lab_vgg.apply_lab_kept(model, kept)
    if algorithm == DEPGRAPH:
        graph = depgraph.build_graph(model, example_input)
        return depgraph.apply_depgraph_kept(model, graph, kept, steps)
    raise ValueError(f"unknown channel algorithm {algorithm!r}; known: {', '.join(ALGORITHMS)}")


def prune_channels(
    model: nn.Module, example_input: torch.Tensor, targets: Mapping[str, float], cancel: Event | None = None
) -> ChannelResult:
    """A channel-pruned deep copy of `model` at `targets`; `model` itself is left untouched.

    On the lab's VGG: the lab's part 2 exactly. Else: DepGraph groups, group L2 importance, k = round(c*r)
    (or round(s * r) from each equal part of a grouped group). Raises UserError for a target the plan
    refuses (`plan_kept`) and when the pruned copy does not run or changes the output shapes (naming the
    group, `verify.verify_pruned`): before any training; core.events.Cancelled when `cancel` is set
    (checked between groups; `model` untouched).
    """
    steps = Steps(cancel=cancel)
    kept = plan_kept(model, example_input, targets, steps)
    algorithm = algorithm_for(model)
    smaller = apply_kept(copy.deepcopy(model), example_input, kept, algorithm, steps)
    if algorithm == DEPGRAPH:
        verify.verify_pruned(model, smaller, example_input, kept)
    return ChannelResult(smaller, kept, algorithm, {name: float(r) for name, r in targets.items() if r > 0})


def kept_counts(
    groups: list[ChannelGroup], targets: Mapping[str, float], algorithm: str
) -> dict[str, tuple[int, int]]:
    """(kept, total) output channels per group at `targets`, without pruning: the TUI's table column.

    The lab keeps round(c * (1 - r)); DepGraph groups remove round(c * r) (they differ only at .5 ties),
    or round(s * r) from each of their `cells` parts of s channels.
    """
    counts = {}
    for group in groups:
        ratio = float(targets.get(group.name, 0.0)) if group.prunable else 0.0
        if ratio <= 0:
            kept = group.channels
        elif algorithm == LAB_VGG:
            kept = keep_count(group.channels, ratio)
        else:
            kept = group.channels - remove_count(group.channels, ratio, group.cells)
        counts[group.name] = (kept, group.channels)
    return counts
