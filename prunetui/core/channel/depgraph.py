"""Channel pruning of any model by dependency groups, built on Torch-Pruning's DepGraph.

DepGraph (Fang et al., "DepGraph: Towards Any Structural Pruning", CVPR 2023) traces the model once and
couples every layer whose channels must go together: a conv and its BatchNorm, the next layers' inputs,
residual adds (all convs feeding one add), concatenations and depthwise convs. A group is removed as
one unit. Importance is Torch-Pruning's `GroupMagnitudeImportance` (the L2 norm of each channel over
every coupled weight, averaged over the group). A group whose channels meet grouped convs, GroupNorm
or chunk is cut into equal parts (`cells`) that each lose the same count, their least important
channels; otherwise k = round(c * r) channels go (the lab's k), at most c - 1.

Groups the graph cannot prune are listed with their reason, never pruned: the model's outputs
(the class count is a contract), groups Torch-Pruning cannot follow, unbalanced grouped layers, and
(`verify`) groups whose pruned copy does not run or computes something else.
"""

import copy
from collections.abc import Iterator

import torch
from torch import nn

from prunetui.core.channel.cells import Cells, group_cells, is_grouped_in, prune_grouped_in_channels
from prunetui.core.channel.groups import ChannelGroup, Kept, remove_count
from prunetui.core.channel.guards import UNMAPPED, deadline, shapes_changed
from prunetui.core.channel.progress import Steps
from prunetui.core.channel.trace import build_graph

__all__ = [
    "OUTPUT_REASON",
    "apply_depgraph_kept",
    "build_graph",
    "depgraph_groups",
    "depgraph_kept",
    "group_importance",
    "prune_copy_by_groups",
]

OUTPUT_REASON = "its outputs are the model's outputs"
UNMAPPED_REASON = (
    "its channels pass a reshape Torch-Pruning cannot map (a channel shuffle, attention heads, "
    "windows, or a concatenation of parts of unknown width); leave it unpruned"
)


def _prunable_layers() -> tuple[type, ...]:
    return (nn.modules.conv._ConvNd, nn.Linear)


def _output_layers(graph) -> set[nn.Module]:
    """Layers no other layer reads: their outputs are the model's outputs (the classifier)."""
    return {
        m for m, node in graph.module2node.items() if isinstance(m, _prunable_layers()) and not node.outputs
    }


def _out_members(graph, group) -> list[nn.Module]:
    """Layers whose output channels the group removes, in trace order (root first)."""
    members = []
    for dep, _ in group:
        module = dep.target.module
        out = graph.is_out_channel_pruning_fn(dep.handler)
        if out and isinstance(module, _prunable_layers()) and module not in members:
            members.append(module)
    return members


def _all_groups(graph, names: dict, steps: Steps) -> Iterator[tuple[nn.Module, object, Exception | None]]:
    """(root layer, its full group or None, the error Torch-Pruning raised building it), as
    `DependencyGraph.get_all_groups` walks them, but one group that cannot be built does not stop the rest.
    One step of `steps` per conv/linear layer (cancel checked before each)."""
    visited: set[nn.Module] = set()
    layers = [module for module in graph.module2node if isinstance(module, _prunable_layers())]
    steps.expect(len(layers))
    for module in layers:
        steps.step(f"following {names.get(module, 'a layer')}")
        if module in visited:
            continue
        pruner = graph.get_pruner_of_module(module)
        channels = pruner.get_out_channels(module) if pruner is not None else None
        if channels is None:
            continue
        try:
            with deadline():
                group = graph.get_pruning_group(module, pruner.prune_out_channels, list(range(channels)))
        except Exception as error:  # noqa: BLE001 - Torch-Pruning's index mapping failed on this group
            visited.add(module)
            yield module, None, error
            continue
        visited.update(d.target.module for d, _ in group if graph.is_out_channel_pruning_fn(d.handler))
        yield module, group, None


def _refusal(graph, root: nn.Module, group, members: list, outputs: set, names: dict) -> tuple[str, int]:
    """(why the group cannot be pruned or "", its equal-removal part count)."""
    from torch_pruning import ops

    targets = [dep.target for dep, _ in group]
    if any(m in outputs for m in members) or any(t.type == ops.OPTYPE.OUTPUT for t in targets):
        return OUTPUT_REASON, 1
    if any(getattr(t, UNMAPPED, False) for t in targets):
        return UNMAPPED_REASON, 1
    cells = group_cells(graph, group, names, graph.get_out_channels(root))
    return cells.reason, max(1, len(cells.parts))


def depgraph_groups(model: nn.Module, graph, steps: Steps | None = None) -> list[ChannelGroup]:
    """Every channel group of `model` in model order (named after its earliest member), with reasons.

    Structural only: `verify.checked_groups` adds the forward check. `steps`: progress reported and
    cancel checked (core.events.Cancelled) layer by layer.
    """
    names = {module: name for name, module in model.named_modules()}
    order = {module: index for index, module in enumerate(model.modules())}
    outputs = _output_layers(graph)
    found = []
    for root, group, error in _all_groups(graph, names, steps or Steps()):
        members = sorted(_out_members(graph, group), key=order.__getitem__) if group is not None else [root]
        if not members:
            continue
        named = members[0]
        channels = graph.get_out_channels(named)
        if error is not None:
            failure = f"{type(error).__name__}: {str(error)[:120]}"
            reason, cells = f"Torch-Pruning cannot follow its channels ({failure}); leave it unpruned", 1
        else:
            reason, cells = _refusal(graph, root, group, members, outputs, names)
        if not reason and channels < 2:
            reason = "it has a single channel"
        member_names = tuple(f"{names[m]}.weight" for m in members)
        group_ = ChannelGroup(member_names[0], channels, member_names, not reason, reason, cells)
        found.append((order[named], group_))
    return [group for _, group in sorted(found, key=lambda item: item[0])]


def _layer(model: nn.Module, weight_name: str) -> nn.Module:
    return model.get_submodule(weight_name.removesuffix(".weight"))


def _full_group(graph, layer: nn.Module):
    pruner = graph.get_pruner_of_module(layer)
    channels = graph.get_out_channels(layer)
    return graph.get_pruning_group(layer, pruner.prune_out_channels, list(range(channels)))


def full_group(model: nn.Module, graph, name: str):
    """Torch-Pruning's group of `name` with every channel (root: the named layer), within the deadline."""
    with deadline():
        return _full_group(graph, _layer(model, name))


def importance_of(group) -> torch.Tensor:
    """Torch-Pruning's group L2 norm of each root channel (GroupMagnitudeImportance, p=2)."""
    import torch_pruning as tp

    scorer = tp.importance.GroupMagnitudeImportance(p=2)
    with torch.no_grad():
        return scorer(group).detach().float().cpu()


def parts_of(model: nn.Module, graph, group) -> Cells:
    """The equal-removal parts of a full group, as indices of its root layer's output channels."""
    names = {module: n for n, module in model.named_modules()}
    root = group[0].dep.target.module
    return group_cells(graph, group, names, graph.get_out_channels(root))


def group_importance(model: nn.Module, graph, name: str) -> torch.Tensor:
    """Importance of each output channel of group `name` (length c): Torch-Pruning's group L2 norm."""
    return importance_of(full_group(model, graph, name))


def least_important(importance: torch.Tensor, parts: Cells, per_part: int) -> set[int]:
    """The `per_part` least important channels of every part (exact ties: the lower index goes first)."""
    removed: set[int] = set()
    for part in parts.parts:
        index = torch.tensor(part, dtype=torch.long)
        removed.update(index[torch.argsort(importance[index], stable=True)[:per_part]].tolist())
    return removed


def depgraph_kept(model: nn.Module, graph, targets: dict[str, float], steps: Steps | None = None) -> Kept:
    """Kept output channels (ascending indices of the named layer) for every group with a ratio > 0.

    Each equal part of s channels loses its round(s * r) least important, at most s - 1; with one part
    that is k = round(c * r) of the whole group. `targets` must name prunable groups (checked by the
    caller). Raises ValueError for a group whose channels cannot be cut into equal parts (its reason),
    core.events.Cancelled when `steps`' cancel event is set (checked before each group).
    """
    kept: Kept = {}
    steps = steps or Steps()
    steps.expect(len(targets))
    for name, ratio in targets.items():
        steps.step(f"ranking {name.removesuffix('.weight')}")
        group = full_group(model, graph, name)
        importance, parts = importance_of(group), parts_of(model, graph, group)
        if parts.reason:
            raise ValueError(f"channel group '{name}' cannot be pruned: {parts.reason}")
        removed = least_important(importance, parts, remove_count(len(parts.parts[0]), ratio))
        kept[name] = [index for index in range(len(importance)) if index not in removed]
    return kept


def prune_group(graph, group) -> None:
    """Apply a Torch-Pruning group (with the indices to remove), grouped convs' inputs each group its own."""
    from torch_pruning.dependency.group import Group

    grouped = [item for item in group if is_grouped_in(graph, item.dep)]
    rest = Group()
    rest._DG = graph
    for item in group:
        if not any(item is other for other in grouped):
            rest.add_dep(item.dep, item.idxs)
    with torch.no_grad():
        rest.prune(record_history=False)
    for item in grouped:
        prune_grouped_in_channels(item.dep.target.module, item.idxs)
    shapes_changed(graph)


def _index(index) -> int:
    """A plain channel index (Torch-Pruning's items hold ints, or _HybridIndex while a group is built)."""
    return int(getattr(index, "idx", index))


def merged(graph, groups: list):
    """One Torch-Pruning group holding every item of `groups`, the indices of items that prune the same
    layer (or op) the same way joined: all computed on the unpruned graph, so in one numbering."""
    from torch_pruning.dependency.group import Group

    items: dict[tuple, list] = {}
    deps: dict[tuple, object] = {}
    for group in groups:
        for item in group:
            key = (id(item.dep.target), item.dep.handler)
            deps.setdefault(key, item.dep)
            items.setdefault(key, []).extend(item.idxs)
    together = Group()
    together._DG = graph
    for key, dep in deps.items():
        unique: dict[int, object] = {}
        for index in items[key]:
            unique.setdefault(_index(index), index)
        together.add_dep(dep, list(unique.values()))
    return together


def apply_depgraph_kept(model: nn.Module, graph, kept: Kept, steps: Steps | None = None) -> nn.Module:
    """Remove, in place, every channel of each group not in `kept` (with all its coupled layers).

    `graph` must be built on this very `model`. Every group is built first, on the unpruned graph, and
    all are removed in one pass (`merged`): a layer whose inputs several groups reach (a concatenation's
    consumer) is cut once, in one numbering, and Torch-Pruning never maps indices again between groups
    (densenet169's 168 groups one after the other: 126 s of index mapping on one CPU thread). Returns the
    model. Raises ValueError when a grouped conv would lose different numbers of channels in its
    groups; core.events.Cancelled when `steps`' cancel event is set (checked before each group is built,
    the model untouched until all are).
    """
    steps = steps or Steps()
    steps.expect(len(kept))
    groups = []
    for name, keep in kept.items():
        steps.step(f"pruning {name.removesuffix('.weight')}")
        layer = _layer(model, name)
        channels = graph.get_out_channels(layer)
        remove = sorted(set(range(channels)) - set(keep))
        if remove:
            pruner = graph.get_pruner_of_module(layer)
            groups.append(graph.get_pruning_group(layer, pruner.prune_out_channels, remove))
    if groups:
        prune_group(graph, merged(graph, groups))
    return model


def prune_copy_by_groups(model: nn.Module, example_input: torch.Tensor, kept: Kept) -> nn.Module:
    """A pruned deep copy of `model` (the original untouched), in the original's train/eval mode."""
    smaller = copy.deepcopy(model)
    graph = build_graph(smaller, example_input)
    return apply_depgraph_kept(smaller, graph, kept)
