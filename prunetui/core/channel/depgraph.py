"""Channel pruning of any model by dependency groups, built on Torch-Pruning's DepGraph.

DepGraph (Fang et al., "DepGraph: Towards Any Structural Pruning", CVPR 2023) traces the model once and
couples every layer whose channels must go together: a conv and its BatchNorm, the next layers' inputs,
residual adds (all convs feeding one add), concatenations and depthwise convs. A group is removed as
one unit. Importance is Torch-Pruning's `GroupMagnitudeImportance` (the L2 norm of each channel over
every coupled weight, averaged over the group); the k = round(c * r) least important channels go
(the lab's k), at most c - 1. Tracing runs the model once in eval mode: BN statistics never move.
"""

import warnings
from collections.abc import Iterator

import torch
from torch import nn

from prunetui.core.channel.groups import ChannelGroup, Kept, remove_count

OUTPUT_REASON = "its outputs are the model's outputs"


def build_graph(model: nn.Module, example_input: torch.Tensor):
    """Torch-Pruning's DependencyGraph of `model`, traced on `example_input` (N x C x H x W).

    Raises UserError when the model cannot be traced (a forward that fails on the example).
    """
    import torch_pruning as tp

    from prunetui.errors import UserError

    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            graph = tp.DependencyGraph()
            return graph.build_dependency(model, example_inputs=example_input[:1], verbose=False)
    except Exception as error:  # noqa: BLE001 - any tracing failure is the model's, reported as such
        raise UserError(f"cannot trace the model for channel groups: {error}") from error
    finally:
        model.train(was_training)


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


def _raw_groups(model: nn.Module, graph) -> Iterator[tuple[nn.Module, list[nn.Module], bool]]:
    """(named layer, member layers, prunable) for each group, named after its earliest member."""
    order = {module: index for index, module in enumerate(model.modules())}
    outputs = _output_layers(graph)
    for group in graph.get_all_groups(root_module_types=_prunable_layers()):
        members = sorted(_out_members(graph, group), key=order.__getitem__)
        if members:
            yield members[0], members, not any(m in outputs for m in members)


def depgraph_groups(model: nn.Module, graph) -> list[ChannelGroup]:
    """Every channel group of `model` in model order; output layers listed as not prunable."""
    names = {module: name for name, module in model.named_modules()}
    order = {module: index for index, module in enumerate(model.modules())}
    found = []
    for named, members, prunable in _raw_groups(model, graph):
        channels = graph.get_out_channels(named)
        member_names = tuple(f"{names[m]}.weight" for m in members)
        reason = "" if prunable else OUTPUT_REASON
        if prunable and channels < 2:
            prunable, reason = False, "it has a single channel"
        found.append((order[named], ChannelGroup(member_names[0], channels, member_names, prunable, reason)))
    return [group for _, group in sorted(found, key=lambda item: item[0])]


def _layer(model: nn.Module, weight_name: str) -> nn.Module:
    return model.get_submodule(weight_name.removesuffix(".weight"))


def _full_group(graph, layer: nn.Module):
    pruner = graph.get_pruner_of_module(layer)
    channels = graph.get_out_channels(layer)
    return graph.get_pruning_group(layer, pruner.prune_out_channels, list(range(channels)))


def group_importance(model: nn.Module, graph, name: str) -> torch.Tensor:
    """Importance of each output channel of group `name` (length c): Torch-Pruning's group L2 norm."""
    import torch_pruning as tp

    scorer = tp.importance.GroupMagnitudeImportance(p=2)
    with torch.no_grad():
        return scorer(_full_group(graph, _layer(model, name))).detach().float().cpu()


def depgraph_kept(model: nn.Module, graph, targets: dict[str, float]) -> Kept:
    """Kept output channels (ascending indices of the named layer) for every group with a ratio > 0.

    The k = round(c * r) channels of lowest group importance are removed (exact ties: lower index first).
    """
    kept: Kept = {}
    for name, ratio in targets.items():
        importance = group_importance(model, graph, name)
        channels = len(importance)
        removed = set(torch.argsort(importance, stable=True)[: remove_count(channels, ratio)].tolist())
        kept[name] = [index for index in range(channels) if index not in removed]
    return kept


def apply_depgraph_kept(model: nn.Module, graph, kept: Kept) -> nn.Module:
    """Remove, in place, every channel of each group not in `kept` (with all its coupled layers).

    `graph` must be built on this very `model`. Groups never share output channels, so the indices of
    later groups stay valid while earlier ones are pruned. Returns the model.
    """
    for name, keep in kept.items():
        layer = _layer(model, name)
        channels = graph.get_out_channels(layer)
        remove = sorted(set(range(channels)) - set(keep))
        if not remove:
            continue
        pruner = graph.get_pruner_of_module(layer)
        group = graph.get_pruning_group(layer, pruner.prune_out_channels, remove)
        with torch.no_grad():
            group.prune(record_history=False)
    return model


def prune_copy_by_groups(model: nn.Module, example_input: torch.Tensor, kept: Kept) -> nn.Module:
    """A pruned deep copy of `model` (the original untouched), in the original's train/eval mode."""
    import copy

    smaller = copy.deepcopy(model)
    graph = build_graph(smaller, example_input)
    return apply_depgraph_kept(smaller, graph, kept)
