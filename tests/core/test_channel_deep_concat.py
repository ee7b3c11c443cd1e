"""A concatenation whose part widths Torch-Pruning cannot infer (past its recursion limit of 500 steps:
swin_s's patch merging) made the whole model untraceable (TypeError in its `sum(sizes)`); now only the
groups through that concatenation are refused, and the rest of the model prunes (core.channel.guards)."""

import torch
from torch import nn

from prunetui.core.channel import channel_groups, prune_channels

X = torch.zeros(1, 3, 8, 8)


class DeepConcat(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv0 = nn.Conv2d(3, 8, 3, padding=1)
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.mix = nn.Conv2d(16, 8, 1)
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        deep = self.conv1(x)
        for _ in range(600):  # 600 ops between conv1 and the concatenation
            deep = torch.relu(deep)
        x = self.mix(torch.cat([self.conv0(x), deep], 1))
        return self.fc(x.mean((2, 3)))


def test_only_the_groups_through_the_concatenation_are_refused():
    model = DeepConcat().eval()
    groups = {g.name: g for g in channel_groups(model, X)}
    assert not groups["conv0.weight"].prunable
    assert "a concatenation of parts of unknown width" in groups["conv0.weight"].reason
    assert groups["mix.weight"].prunable
    assert prune_channels(model, X, {"mix.weight": 0.5}).model.mix.out_channels == 4
