"""Channel pruning never rewires a model: the pruned model computes what the dense one computes with the
removed channels zeroed, for every kind of coupling (plain, residual, depthwise, grouped, concat,
chunk, flatten -> linear, Conv1d, auxiliary heads).

The oracle (`zeroed`) knows nothing of Torch-Pruning: for each pruned group it zeroes the removed
output channels of every member layer, at the BatchNorm right after it (scale and shift) when there is
one, else the layer's own rows and bias. A zero channel stays zero through ReLU, pooling, residual adds
and concatenation, and a consumer reading zeros adds nothing, so a correctly pruned model must give the
same outputs (float tolerance).
"""

import copy

import pytest
import torch
import torchvision
from torch import nn

from prunetui.core.channel import DEPGRAPH, channel_groups, kept_counts, prune_channels
from prunetui.core.lineage import ChannelStage, channel_checkpoint, rebuild
from prunetui.errors import UserError

ATOL, RTOL = 1e-5, 1e-4


def randomized(model: nn.Module, seed: int = 0) -> nn.Module:
    """`model` in eval mode with BN statistics and affine terms far from identity (a misplaced channel shows)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                n = module.num_features
                module.running_mean.copy_(torch.rand(n, generator=generator) - 0.5)
                module.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
                module.weight.copy_(torch.rand(n, generator=generator) + 0.5)
                module.bias.copy_(torch.rand(n, generator=generator) - 0.5)
    return model.eval()


def zeroed(model: nn.Module, groups, kept: dict[str, list[int]]) -> nn.Module:
    """The oracle: a copy of the dense `model` with every removed channel of every member zeroed."""
    dense = copy.deepcopy(model)
    order = [name for name, _ in dense.named_modules()]
    by_name = {group.name: group for group in groups}
    with torch.no_grad():
        for name, keep in kept.items():
            group = by_name[name]
            removed = sorted(set(range(group.channels)) - set(keep))
            for member in group.members:
                layer_name = member.removesuffix(".weight")
                layer = dense.get_submodule(layer_name)
                follower = dense.get_submodule(order[order.index(layer_name) + 1])
                if (
                    isinstance(follower, nn.modules.batchnorm._BatchNorm)
                    and follower.num_features == group.channels
                ):
                    follower.weight[removed] = 0
                    follower.bias[removed] = 0
                else:
                    layer.weight[removed] = 0
                    if layer.bias is not None:
                        layer.bias[removed] = 0
    return dense


def assert_exact(model: nn.Module, x: torch.Tensor, targets: dict[str, float] | None = None, ratio=0.3):
    """Prune `model` at `targets` (default: every prunable group at `ratio`) and assert the oracle."""
    groups = channel_groups(model, x)
    if targets is None:
        targets = {group.name: ratio for group in groups if group.prunable}
    result = prune_channels(model, x, targets)
    assert result.algorithm == DEPGRAPH
    reference = zeroed(model, groups, result.kept)
    with torch.no_grad():
        pruned, expected, dense = result.model.eval()(x), reference(x), model(x)
    assert not torch.allclose(expected, dense, atol=1e-3), "the oracle must remove something"
    torch.testing.assert_close(pruned, expected, atol=ATOL, rtol=RTOL)
    counts = kept_counts(groups, targets, DEPGRAPH)
    assert {name: len(kept) for name, kept in result.kept.items()} == {n: counts[n][0] for n in result.kept}
    return result


def images(size: int, channels: int = 3) -> torch.Tensor:
    return torch.randn(2, channels, size, size, generator=torch.Generator().manual_seed(1))


class ConvBNConv(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(16)
        self.conv2 = nn.Conv2d(16, 12, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(12)
        self.fc = nn.Linear(12, 10)

    def forward(self, x):
        x = torch.relu(self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x))))))
        return self.fc(x.mean((2, 3)))


class GroupNet(nn.Module):
    """/work/shared/cases/h24: conv 3->32, grouped conv 32->32 (groups=4), conv 32->64, head."""

    def __init__(self, groups: int = 4):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(32)
        self.gconv = nn.Conv2d(32, 32, 3, padding=1, groups=groups, bias=False)
        self.bn2 = nn.BatchNorm2d(32)
        self.conv3 = nn.Conv2d(32, 64, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(64)
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = torch.relu(self.bn2(self.gconv(x)))
        x = torch.relu(self.bn3(self.conv3(x)))
        return self.fc(x.mean((2, 3)))


class DenseLike(nn.Module):
    """Concatenation, DenseNet style: conv2 reads [x, conv1(x)]."""

    def __init__(self):
        super().__init__()
        self.conv0 = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn0 = nn.BatchNorm2d(8)
        self.conv1 = nn.Conv2d(8, 6, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(6)
        self.conv2 = nn.Conv2d(14, 10, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(10)
        self.fc = nn.Linear(10, 10)

    def forward(self, x):
        x = torch.relu(self.bn0(self.conv0(x)))
        x = torch.cat([x, torch.relu(self.bn1(self.conv1(x)))], 1)
        return self.fc(torch.relu(self.bn2(self.conv2(x))).mean((2, 3)))


class ChunkNet(nn.Module):
    """torch.chunk into two branches, then concat: both halves must lose the same count."""

    def __init__(self, dim: int = 1):
        super().__init__()
        self.dim = dim
        self.conv0 = nn.Conv2d(3, 16, 3, padding=1, bias=False)
        self.bn0 = nn.BatchNorm2d(16)
        self.left = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.bn_left = nn.BatchNorm2d(8)
        self.right = nn.Conv2d(8, 8, 1, bias=False)
        self.bn_right = nn.BatchNorm2d(8)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        a, b = torch.relu(self.bn0(self.conv0(x))).chunk(2, dim=self.dim)
        a, b = torch.relu(self.bn_left(self.left(a))), torch.relu(self.bn_right(self.right(b)))
        return self.fc(torch.cat([a, b], 1).mean((2, 3)))


class RowChunk(nn.Module):
    """torch.chunk of the rows (dim -2): each branch reads every channel."""

    def __init__(self):
        super().__init__()
        self.conv0 = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn0 = nn.BatchNorm2d(8)
        self.top = nn.Conv2d(8, 4, 1)
        self.bottom = nn.Conv2d(8, 4, 1)
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        top, bottom = torch.relu(self.bn0(self.conv0(x))).chunk(2, dim=-2)
        return self.fc(torch.cat([self.top(top), self.bottom(bottom)], 1).mean((2, 3)))


class FlattenNet(nn.Module):
    """A linear after x.flatten(1): each channel is 4 x 4 = 16 of its input features."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, padding=1)
        self.bn = nn.BatchNorm2d(16)
        self.fc1 = nn.Linear(16 * 4 * 4, 32)
        self.fc2 = nn.Linear(32, 10)

    def forward(self, x):
        x = nn.functional.max_pool2d(torch.relu(self.bn(self.conv(x))), 2)
        return self.fc2(torch.relu(self.fc1(x.flatten(1))))


class Conv1dNet(nn.Module):
    """N x C x L: Conv1d -> BN1d, a grouped Conv1d (groups=2), flatten -> linear."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv1d(4, 12, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm1d(12)
        self.conv2 = nn.Conv1d(12, 8, 3, padding=1, groups=2)
        self.bn2 = nn.BatchNorm1d(8)
        self.fc = nn.Linear(8 * 10, 5)

    def forward(self, x):
        x = torch.relu(self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x))))))
        return self.fc(x.flatten(1))


def test_plain_conv_bn_conv():
    for ratio in (0.3, 0.5, 0.9):
        assert_exact(randomized(ConvBNConv()), images(8), ratio=ratio)


def test_residual_adds_resnet18():
    result = assert_exact(randomized(torchvision.models.resnet18(num_classes=10)), images(32))
    assert result.model.layer1[0].conv2.out_channels == result.model.layer1[1].conv2.out_channels == 45


def test_depthwise_mobilenet_v2():
    model = randomized(torchvision.models.mobilenet_v2(num_classes=10, width_mult=0.25))
    result = assert_exact(model, images(32))
    depthwise = [m for m in result.model.modules() if isinstance(m, nn.Conv2d) and m.groups > 1]
    assert depthwise and all(m.groups == m.in_channels == m.out_channels for m in depthwise)


@pytest.mark.parametrize("ratio", [0.3, 0.25, 0.6])  # 0.3 and 0.6 were uneven (crash), 0.25 regrouped
@pytest.mark.parametrize("target", ["conv1.weight", "gconv.weight"])
def test_grouped_conv_loses_the_same_count_in_every_group(ratio, target):
    model = randomized(GroupNet())
    groups = {g.name: g for g in channel_groups(model, images(8))}
    assert groups[target].cells == 4
    result = assert_exact(model, images(8), {target: ratio})
    kept = result.kept[target]
    per_group = [sum(1 for k in kept if k // 8 == g) for g in range(4)]
    assert len(set(per_group)) == 1 and per_group[0] == 8 - round(8 * ratio)
    gconv = result.model.gconv
    assert gconv.in_channels % 4 == 0 and gconv.out_channels % 4 == 0 and gconv.groups == 4


def test_grouped_conv_every_group_at_once():
    assert_exact(randomized(GroupNet()), images(8), ratio=0.4)


@pytest.mark.parametrize("name", ["regnet_x_400mf", "regnet_y_400mf"])
def test_grouped_convs_regnet(name):
    model = randomized(getattr(torchvision.models, name)(num_classes=10))
    result = assert_exact(model, images(32))
    grouped = [
        m for m in result.model.modules() if isinstance(m, nn.Conv2d) and 1 < m.groups < m.out_channels
    ]
    assert grouped and all(m.in_channels % m.groups == 0 == m.out_channels % m.groups for m in grouped)


def test_grouped_convs_resnext50_one_block():
    model = randomized(torchvision.models.resnext50_32x4d(num_classes=10))
    x = images(32)
    targets = {"layer1.0.conv1.weight": 0.5, "layer1.0.conv2.weight": 0.3}  # 128 channels, 32 groups of 4
    result = assert_exact(model, x, targets)
    assert result.model.layer1[0].conv2.in_channels == 64 and result.model.layer1[0].conv2.out_channels == 96


def test_concat_densenet_like():
    assert_exact(randomized(DenseLike()), images(8), ratio=0.5)


@pytest.mark.parametrize("dim", [1, -3])
def test_chunk_halves_lose_the_same_count(dim):
    model = randomized(ChunkNet(dim))
    group = {g.name: g for g in channel_groups(model, images(8))}["conv0.weight"]
    assert group.prunable and group.cells == 2
    result = assert_exact(model, images(8), {"conv0.weight": 0.3})
    assert result.model.left.in_channels == result.model.right.in_channels == 6


def test_a_chunk_of_rows_passes_every_channel_to_both_branches():
    model = randomized(RowChunk())
    group = {g.name: g for g in channel_groups(model, images(8))}["conv0.weight"]
    assert group.prunable and group.cells == 1
    result = assert_exact(model, images(8), {"conv0.weight": 0.5})
    assert result.model.top.in_channels == result.model.bottom.in_channels == 4


def test_linear_after_flatten():
    result = assert_exact(randomized(FlattenNet()), images(8), {"conv.weight": 0.25, "fc1.weight": 0.5})
    assert result.model.fc1.in_features == 12 * 16


def test_conv1d_networks():
    model = randomized(Conv1dNet())
    x = torch.randn(2, 4, 10, generator=torch.Generator().manual_seed(2))
    result = assert_exact(model, x, {"conv1.weight": 0.3, "conv2.weight": 0.5})
    assert result.model.conv2.in_channels == 8 and result.model.fc.in_features == 4 * 10


def test_squeezenet_keeps_its_class_count():
    model = randomized(torchvision.models.squeezenet1_0(num_classes=10))
    x = images(64)
    classifier = {g.name: g for g in channel_groups(model, x)}["classifier.1.weight"]
    assert not classifier.prunable and "model's outputs" in classifier.reason
    result = assert_exact(model, x)
    assert result.model(x).shape == (2, 10)


def test_shufflenet_prunes_what_it_can_and_refuses_the_rest_in_one_line():
    model = randomized(torchvision.models.shufflenet_v2_x0_5(num_classes=10))
    x = images(64)
    groups = channel_groups(model, x)
    refused = [g for g in groups if not g.prunable]
    prunable = [g for g in groups if g.prunable]
    assert prunable and refused
    assert all(g.reason and "\n" not in g.reason for g in refused)
    assert any("reshape Torch-Pruning cannot map" in g.reason for g in refused)  # the channel shuffle
    with pytest.raises(UserError, match=f"channel group '{refused[0].name}' cannot be pruned: "):
        prune_channels(model, x, {refused[0].name: 0.3})
    assert_exact(model, x)


def test_googlenet_aux_heads_are_pruned_with_their_trunk():
    model = randomized(torchvision.models.googlenet(num_classes=10, aux_logits=True, init_weights=False))
    x = images(64)
    result = assert_exact(model, x)
    small = result.model
    assert small.aux1.conv.conv.in_channels == sum(
        small.inception4a.get_submodule(b).out_channels
        for b in ("branch1.conv", "branch2.1.conv", "branch3.1.conv", "branch4.1.conv")
    )
    small.train()
    logits, aux2, aux1 = small(x)
    assert logits.shape == aux1.shape == aux2.shape == (2, 10)
    # the export reopens: kept indices replayed on a fresh model, state_dict loaded strictly
    fresh = torchvision.models.googlenet(num_classes=10, aux_logits=True, init_weights=False)
    rebuilt = rebuild(fresh, channel_checkpoint([ChannelStage.of(result, x[:1])], small)).eval()
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(x), small.eval()(x))
