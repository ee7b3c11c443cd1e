"""The lab's VGG for CIFAR-10 (MIT EfficientML.ai lab 1): exact architecture and parameter names."""

from collections import OrderedDict, defaultdict

import torch
from torch import nn

ARCH: list[int | str] = [64, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"]


def make_backbone(arch: list[int | str], in_channels: int) -> nn.Sequential:
    """conv{i} + bn{i} + relu{i} for each number, pool{j} for each 'M', named as in the lab."""
    layers: list[tuple[str, nn.Module]] = []
    counts: defaultdict[str, int] = defaultdict(int)

    def add(kind: str, layer: nn.Module) -> None:
        layers.append((f"{kind}{counts[kind]}", layer))
        counts[kind] += 1

    for entry in arch:
        if entry == "M":
            add("pool", nn.MaxPool2d(2))
            continue
        add("conv", nn.Conv2d(in_channels, entry, 3, padding=1, bias=False))
        add("bn", nn.BatchNorm2d(entry))
        add("relu", nn.ReLU(inplace=True))
        in_channels = entry
    return nn.Sequential(OrderedDict(layers))


class VGG(nn.Module):
    """Backbone, global average pool over H and W, linear classifier."""

    def __init__(self, arch: list[int | str] = ARCH, in_channels: int = 3, num_classes: int = 10) -> None:
        super().__init__()
        self.backbone = make_backbone(arch, in_channels)
        widths = [entry for entry in arch if entry != "M"]
        self.classifier = nn.Linear(widths[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.backbone(x)
        x = x.mean([2, 3])
        return self.classifier(x)
