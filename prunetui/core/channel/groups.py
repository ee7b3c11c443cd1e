"""What the user sets in channel mode: a group of channels that are removed together.

A group is named after the weight of the conv (or linear) whose output channels it removes (e.g.
`layer1.0.conv1.weight`); its members are every layer whose outputs are coupled to it (residual
partners, depthwise convs), after Torch-Pruning's DepGraph (Fang et al., CVPR 2023). A group that
cannot be pruned (the classifier, whose outputs are the model's outputs) is listed with the reason.
The model's input channels are never a group: only output channels are ever removed.
"""

import difflib
from collections.abc import Mapping
from dataclasses import dataclass

from prunetui.errors import UserError

Kept = dict[str, list[int]]  # group name -> kept output-channel indices of the named layer, in order


@dataclass(frozen=True)
class ChannelGroup:
    """One unit of channel pruning.

    name: the weight of the layer whose outputs are removed. channels: its output channel count.
    members: weight names of every layer whose outputs are removed with it (name first).
    prunable: False for groups that must stay whole; `reason` then says why (one line).
    cells: the channels fall into this many equal parts that each lose the same count (the groups of
    a grouped conv, GroupNorm or chunk they meet; `prunetui.core.channel.cells`); 1 for none.
    """

    name: str
    channels: int
    members: tuple[str, ...]
    prunable: bool = True
    reason: str = ""
    cells: int = 1


def keep_count(channels: int, ratio: float) -> int:
    """The lab's `get_num_channels_to_keep`: round(c * (1 - r)), at least 1 (r = 1 would leave none)."""
    return max(1, min(channels, int(round(channels * (1.0 - ratio)))))


def remove_count(channels: int, ratio: float, cells: int = 1) -> int:
    """Channels removed from a dependency group: k = round(c * r), at most c - 1 (one always stays).

    With `cells` equal parts (grouped convs), each part of s = c / cells channels loses round(s * r),
    at most s - 1: k = cells * that.
    """
    size = channels // max(1, cells)
    return max(0, min(size - 1, int(round(size * ratio)))) * max(1, cells)


def check_targets(groups: list[ChannelGroup], targets: Mapping[str, float]) -> dict[str, float]:
    """The targets > 0, validated: values in [0, 1], names of prunable groups.

    Raises UserError for a value out of range, an unknown name (listing the closest group names) or a
    group that cannot be pruned (with its reason).
    """
    by_name = {group.name: group for group in groups}
    active: dict[str, float] = {}
    for name, ratio in targets.items():
        if not isinstance(ratio, int | float) or not 0.0 <= float(ratio) <= 1.0:
            raise UserError(f"channel ratio for '{name}' must be a number in [0, 1], got {ratio!r}")
        if name not in by_name:
            close = difflib.get_close_matches(name, list(by_name), n=3, cutoff=0.5) or list(by_name)[:3]
            raise UserError(f"no channel group '{name}'; closest: {', '.join(close)}")
        group = by_name[name]
        if ratio > 0 and not group.prunable:
            raise UserError(f"channel group '{name}' cannot be pruned: {group.reason}")
        if ratio > 0:
            active[name] = float(ratio)
    return active
