"""Channels that must go in equal numbers: grouped convolutions, GroupNorm groups, chunk parts.

A grouped conv (`groups=G`, not depthwise) is G independent convs: group g reads input channels
[g * C_in/G, (g + 1) * C_in/G) and writes outputs [g * C_out/G, (g + 1) * C_out/G). It stays a G-group
conv only if every group loses the same number of channels (PyTorch needs C_in and C_out divisible by
G); which channels go may differ from group to group. The same holds for GroupNorm's groups and for the
parts of `torch.chunk` (the split point is recomputed from the width at run time).

Torch-Pruning's MetaPruner removes the same positions from every group (`ch_groups` in
torch_pruning/pruner/algorithms/base_pruner.py) because its `ConvPruner.prune_in_channels` keeps the
first group's positions for all groups: any other removal silently regroups the kept channels, and an
uneven one crashes. Here each group loses its own least important channels, and
`prune_grouped_in_channels` slices each group's inputs separately.

A dependency group's channels (indices of its root layer) are cut into `Cells.parts`: disjoint, equal
sizes, each losing the same count. With no such constraint there is one part, all channels.
"""

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class Cells:
    """The parts of a group's channels that each lose the same count, or why none can be removed.

    parts: root-layer channel indices, ascending within a part; equal sizes. reason: non-empty when
    the group cannot be pruned (then `parts` is empty).
    """

    parts: tuple[tuple[int, ...], ...]
    reason: str = ""


class _Refused(Exception):
    """A constraint no equal-count removal can satisfy; the message is the reason."""


def _conv_groups(graph, module: nn.Module, is_in: bool, label: str) -> tuple[int, int] | None:
    """(groups, channels per group) a grouped conv imposes on one side, None for none (groups=1, depthwise)."""
    from torch_pruning import ops

    if not isinstance(module, ops.TORCH_CONV) or module.groups == 1:
        return None
    if ops.module2type(module) == ops.OPTYPE.DEPTHWISE_CONV:
        if module.in_channels == module.out_channels:
            return None  # channel-wise: its inputs and outputs go together, no group to balance
        raise _Refused(
            f"{label} has {module.in_channels // module.groups} inputs per output channel "
            "(groups = out_channels): Torch-Pruning would prune it as depthwise"
        )
    if module.transposed:
        raise _Refused(f"{label} is a grouped transposed conv (groups={module.groups})")
    channels = module.in_channels if is_in else module.out_channels
    return module.groups, channels // module.groups


def _split_parts(module) -> tuple[int, int] | None:
    """(parts, channels per part) of a chunk/split node, None if it has one part or unknown sizes."""
    sizes = getattr(module, "split_sizes", None)
    if not sizes or len(sizes) < 2:
        return None
    if len(set(sizes)) > 1:
        raise _Refused(f"its channels are split into unequal parts {list(sizes)} (torch.split)")
    return len(sizes), sizes[0]


def _constraint(graph, item, label: str) -> tuple[int, int] | None:
    from torch_pruning import ops

    module = item.dep.target.module
    if isinstance(module, nn.GroupNorm) and module.num_groups > 1:
        return module.num_groups, module.num_channels // module.num_groups
    if item.dep.target.type == ops.OPTYPE.SPLIT:
        return _split_parts(module)
    return _conv_groups(graph, module, graph.is_in_channel_pruning_fn(item.dep.handler), label)


def _constraints(graph, group, names: dict) -> list[tuple[str, int, dict[int, int]]]:
    """(label, part count, root index -> part) for every member that needs equal removal per part."""
    found = []
    for item in group:
        module = item.dep.target.module
        label = names.get(module, "a chunk/split")
        shape = _constraint(graph, item, label)
        if shape is None:
            continue
        count, size = shape
        part_of = {
            root: idx // size for idx, root in zip(item.idxs, item.root_idxs, strict=True) if root is not None
        }
        if isinstance(module, nn.modules.conv._ConvNd):
            label = f"grouped conv {label} (groups={count})"
        elif isinstance(module, nn.GroupNorm):
            label = f"GroupNorm {label} (num_groups={count})"
        found.append((label, count, part_of))
    return found


def _check_balance(parts: list[list[int]], constraints) -> None:
    """Raise _Refused unless every part has the same size and every constrained group holds as many parts."""
    if len({len(part) for part in parts}) > 1:
        raise _Refused("its channels fall into parts of unequal sizes across grouped layers")
    for label, count, part_of in constraints:
        per_group = [0] * count
        for part in parts:
            if part[0] in part_of:
                per_group[part_of[part[0]]] += 1
        if len(set(per_group)) > 1:
            reached = sum(1 for n in per_group if n)
            raise _Refused(f"its channels reach {reached} of the {count} groups of {label} unevenly")
    if len(parts) > 1 and len(parts[0]) == 1:
        raise _Refused(f"each group of {constraints[0][0]} has one channel of it")


def group_cells(graph, group, names: dict, channels: int) -> Cells:
    """The equal-removal parts of a full Torch-Pruning group (indices of its root layer, 0..channels-1).

    `names`: module -> name, for reasons. A channel's part is the tuple of groups it falls in across
    every grouped conv, GroupNorm and chunk of the group; each part must then be as large as the others
    and every such layer's groups must hold the same number of parts.
    """
    try:
        constraints = _constraints(graph, group, names)
        signature: dict[tuple, list[int]] = {}
        for root in range(channels):
            key = tuple(part_of.get(root) for _, _, part_of in constraints)
            signature.setdefault(key, []).append(root)
        parts = list(signature.values())
        _check_balance(parts, constraints)
    except _Refused as refused:
        return Cells((), str(refused))
    return Cells(tuple(tuple(part) for part in parts))


def is_grouped_in(graph, dep) -> bool:
    """True for the input side of a grouped (not depthwise) conv, which `prune_grouped_in_channels` prunes."""
    from torch_pruning import ops

    module = dep.target.module
    return (
        isinstance(module, ops.TORCH_CONV)
        and module.groups > 1
        and ops.module2type(module) == ops.OPTYPE.CONV
        and graph.is_in_channel_pruning_fn(dep.handler)
    )


@torch.no_grad()
def prune_grouped_in_channels(conv: nn.modules.conv._ConvNd, idxs: list[int]) -> None:
    """Remove input channels `idxs` of a grouped conv in place, each group its own.

    weight: C_out x C_in/G x k... -> C_out x (C_in - len(idxs))/G x k...; output channel o (group
    o // (C_out/G)) keeps the columns of its group's kept inputs. Raises ValueError unless every group
    loses the same number of inputs and keeps at least one.
    """
    groups, per = conv.groups, conv.in_channels // conv.groups
    removed = set(int(i) for i in idxs)
    keep = [[p for p in range(per) if g * per + p not in removed] for g in range(groups)]
    if len({len(k) for k in keep}) != 1 or not keep[0]:
        raise ValueError(
            f"uneven removal from the {groups} groups of a grouped conv: kept {[len(k) for k in keep]}"
        )
    weight = conv.weight
    out_per = conv.out_channels // groups
    rows = torch.tensor([keep[o // out_per] for o in range(conv.out_channels)], device=weight.device)
    index = rows.view(*rows.shape, *([1] * (weight.dim() - 2))).expand(-1, -1, *weight.shape[2:])
    conv.weight = nn.Parameter(weight.gather(1, index), requires_grad=weight.requires_grad)
    conv.in_channels = len(keep[0]) * groups
