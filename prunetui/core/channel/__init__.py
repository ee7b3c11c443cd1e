"""Structured (channel) pruning: whole output channels removed, so the model gets smaller and faster.

- `lab_vgg`: the lab's part 2 on its VGG, exactly (sort by the next conv's input-channel L2 norm, keep
  the first round(c * (1 - r))).
- `depgraph`: any traceable model, by Torch-Pruning's dependency groups (Fang et al., CVPR 2023);
  `trace` builds the graph (train mode too for auxiliary heads), `guards` bound and fix Torch-Pruning's
  index mapping, `cells` cuts groups into equal parts (grouped convs, GroupNorm, chunk), `verify` marks
  groups whose pruned copy does not run or computes something else as not prunable.
- `prune`: picks the algorithm, validates targets, returns the smaller copy and the kept indices.
- `saved`: checkpoints of kept indices + state_dict (no pickles) and `rebuild`.
- `export`: a deployable ONNX (or `.pt2`) file.
"""

from prunetui.core.channel.groups import ChannelGroup, Kept, keep_count, remove_count
from prunetui.core.channel.prune import (
    ALGORITHMS,
    DEPGRAPH,
    LAB_VGG,
    ChannelResult,
    algorithm_for,
    apply_kept,
    channel_groups,
    kept_counts,
    plan_kept,
    prune_channels,
)
from prunetui.core.channel.saved import (
    channel_checkpoint,
    is_channel_checkpoint,
    load_channel_checkpoint,
    rebuild,
    save_channel_checkpoint,
)

__all__ = [
    "ALGORITHMS",
    "DEPGRAPH",
    "LAB_VGG",
    "ChannelGroup",
    "ChannelResult",
    "Kept",
    "algorithm_for",
    "apply_kept",
    "channel_checkpoint",
    "channel_groups",
    "is_channel_checkpoint",
    "keep_count",
    "kept_counts",
    "load_channel_checkpoint",
    "plan_kept",
    "prune_channels",
    "rebuild",
    "remove_count",
    "save_channel_checkpoint",
]
