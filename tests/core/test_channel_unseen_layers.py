"""A layer called through its weight (`F.conv2d(x, self.mix.weight)`, Swin's `F.linear(x, qkv.weight)`)
is invisible to Torch-Pruning's trace, so the inputs it reads are never cut: the group feeding it is
refused naming that layer, not a fixed-size view that is not there (core.channel.reasons)."""

import torch
import torch.nn.functional as F
from torch import nn

from prunetui.core.channel import channel_groups


class CalledThroughItsWeight(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv0 = nn.Conv2d(3, 8, 3, padding=1)
        self.mix = nn.Conv2d(8, 12, 1)
        self.fc = nn.Linear(12, 10)

    def forward(self, x):
        x = F.conv2d(torch.relu(self.conv0(x)), self.mix.weight, self.mix.bias)
        return self.fc(x.mean((2, 3)))


def test_the_unseen_layer_is_named():
    groups = {g.name: g for g in channel_groups(CalledThroughItsWeight().eval(), torch.zeros(1, 3, 8, 8))}
    reason = groups["conv0.weight"].reason
    assert not groups["conv0.weight"].prunable and "\n" not in reason
    assert "layers the trace cannot see read its channels (mix: called through their weights" in reason
    assert "x.flatten(1)" not in reason
