"""Structured (channel) pruning: whole output channels removed, so the model gets smaller and faster.

- `lab_vgg`: the lab's part 2 on its VGG, exactly (sort by the next conv's input-channel L2 norm, keep
  the first round(c * (1 - r))).
- `depgraph`: any traceable model, by Torch-Pruning's dependency groups (Fang et al., CVPR 2023);
  `trace` builds the graph (train mode too for auxiliary heads), `guards` bound and fix Torch-Pruning's
  index mapping, `cells` cuts groups into equal parts (grouped convs, GroupNorm, chunk), `verify` marks
  groups whose pruned copy does not run or computes something else as not prunable.
- `prune`: picks the algorithm, validates targets, returns the smaller copy and the kept indices.
- `export`: a deployable ONNX file (prunetui.core.onnx_export; this name re-exports it).
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

__all__ = [
    "ALGORITHMS",
    "DEPGRAPH",
    "LAB_VGG",
    "ChannelGroup",
    "ChannelResult",
    "Kept",
    "algorithm_for",
    "apply_kept",
    "channel_groups",
    "keep_count",
    "kept_counts",
    "plan_kept",
    "prune_channels",
    "remove_count",
]
