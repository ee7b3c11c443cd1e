"""A small model with resnet18's 21 layer names (conv1, layer1.0.conv1 ... layer4.0.downsample.0, fc):
a many-layer table that builds in milliseconds, the same at every run."""

import torch
from torch import nn

from prunetui.core.session import Session

from .conftest import tiny_splits

MANY_LABEL = "many"
CHANNELS = 4


class Block(nn.Module):
    def __init__(self, downsample: bool) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(CHANNELS, CHANNELS, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(CHANNELS, CHANNELS, 3, padding=1, bias=False)
        self.downsample = nn.Sequential(nn.Conv2d(CHANNELS, CHANNELS, 1, bias=False)) if downsample else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(torch.relu(self.conv1(x)))
        return torch.relu(out + (self.downsample(x) if self.downsample is not None else x))


class ManyNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, CHANNELS, 3, padding=1, bias=False)
        for stage in range(1, 5):
            blocks = [Block(downsample=stage > 1), Block(downsample=False)]
            setattr(self, f"layer{stage}", nn.Sequential(*blocks))
        self.fc = nn.Linear(CHANNELS, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv1(x))
        for stage in range(1, 5):
            x = getattr(self, f"layer{stage}")(x)
        return self.fc(x.mean(dim=(2, 3)))


def many_session() -> Session:
    torch.manual_seed(0)
    return Session(ManyNet(), tiny_splits(), label=MANY_LABEL)
