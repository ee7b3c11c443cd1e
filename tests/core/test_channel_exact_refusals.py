"""What channel pruning refuses, and how: one line naming the group, the reason and the fix, decided by
the dependency graph or by the first forward of a pruned copy, before any training."""

import pytest
import torch
import torchvision
from torch import nn

from prunetui.core.channel import DEPGRAPH, apply_kept, channel_groups, prune_channels, verify
from prunetui.errors import UserError

X8 = torch.randn(1, 3, 8, 8, generator=torch.Generator().manual_seed(3))


class FixedView(nn.Module):
    """A view with the width written in: x.view(-1, 16 * 4 * 4)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, padding=1)
        self.bn = nn.BatchNorm2d(16)
        self.fc = nn.Linear(16 * 4 * 4, 10)

    def features(self, x):
        return nn.functional.max_pool2d(torch.relu(self.bn(self.conv(x))), 2)

    def forward(self, x):
        return self.fc(self.features(x).view(-1, 16 * 4 * 4))


class SizeView(FixedView):
    """x.view(x.size(0), 256)."""

    def forward(self, x):
        return self.fc(self.features(x).view(x.size(0), 256))


class Split(nn.Module):
    """torch.split into fixed sizes, each part to its own conv."""

    def __init__(self, sizes):
        super().__init__()
        self.sizes = sizes
        first = sizes[0] if isinstance(sizes, list) else sizes
        self.conv = nn.Conv2d(3, 16, 3, padding=1)
        self.a = nn.Conv2d(first, 4, 1)
        self.b = nn.Conv2d(16 - first, 4, 1)
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        a, b = torch.split(torch.relu(self.conv(x)), self.sizes, 1)
        return self.fc(torch.cat([self.a(a), self.b(b)], 1).mean((2, 3)))


class Shuffle(nn.Module):
    """A channel shuffle (ShuffleNet): view(b, 2, c/2, h, w) -> transpose -> view(b, c, h, w)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 8, 1)
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        x = torch.relu(self.conv1(x))
        b, c, h, w = x.shape
        x = x.view(b, 2, c // 2, h, w).transpose(1, 2).contiguous().view(b, -1, h, w)
        return self.fc(torch.relu(self.conv2(x)).mean((2, 3)))


class GroupNormNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1)
        self.gn = nn.GroupNorm(4, 16)
        self.conv2 = nn.Conv2d(16, 8, 1)
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        return self.fc(torch.relu(self.conv2(torch.relu(self.gn(self.conv1(x))))).mean((2, 3)))


class DepthMultiplier(nn.Module):
    """A grouped conv with one input channel per group and two outputs (groups = in_channels)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.gconv = nn.Conv2d(8, 16, 3, padding=1, groups=8)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        return self.fc(torch.relu(self.gconv(torch.relu(self.conv1(x)))).mean((2, 3)))


def groups_of(model: nn.Module, x: torch.Tensor = X8) -> dict:
    return {group.name: group for group in channel_groups(model.eval(), x)}


@pytest.mark.parametrize("model", [FixedView(), SizeView()], ids=["view(-1, 256)", "view(x.size(0), 256)"])
def test_fixed_size_views_are_refused_with_the_flatten_fix(model):
    group = groups_of(model)["conv.weight"]
    assert not group.prunable
    assert "fails to run" in group.reason and "x.flatten(1)" in group.reason
    with pytest.raises(
        UserError, match=r"channel group 'conv.weight' cannot be pruned: .*x\.flatten\(1\)"
    ) as info:
        prune_channels(model, X8, {"conv.weight": 0.3})
    assert "\n" not in str(info.value)


def test_unequal_and_fixed_size_splits_are_refused_and_their_branches_stay_prunable():
    unequal = groups_of(Split([4, 12]))
    assert not unequal["conv.weight"].prunable and "unequal parts [4, 12]" in unequal["conv.weight"].reason
    fixed = groups_of(Split(8))  # torch.split(x, 8): two parts of 8 now, 8 and 6 once pruned
    assert not fixed["conv.weight"].prunable and "torch.chunk" in fixed["conv.weight"].reason
    for groups in (unequal, fixed):
        assert groups["a.weight"].prunable and groups["b.weight"].prunable
    assert prune_channels(Split(8).eval(), X8, {"a.weight": 0.5}).model(X8).shape == (1, 10)


def test_a_channel_shuffle_is_refused():
    group = groups_of(Shuffle())["conv1.weight"]
    assert not group.prunable and "leave it unpruned" in group.reason
    with pytest.raises(UserError, match="conv1.weight"):
        prune_channels(Shuffle().eval(), X8, {"conv1.weight": 0.5})


def test_vit_reshape_to_its_width_is_refused_its_mlp_is_not():
    vit = torchvision.models.VisionTransformer(
        image_size=16, patch_size=8, num_layers=1, num_heads=2, hidden_dim=16, mlp_dim=32, num_classes=10
    )
    x = torch.randn(1, 3, 16, 16)
    groups = groups_of(vit, x)
    assert not groups["conv_proj.weight"].prunable and "fails to run" in groups["conv_proj.weight"].reason
    mlp = "encoder.layers.encoder_layer_0.mlp.0.weight"
    assert groups[mlp].prunable
    result = prune_channels(vit, x, {mlp: 0.5})
    assert result.model.get_submodule(mlp.removesuffix(".weight")).out_features == 16
    assert result.model(torch.randn(2, 3, 16, 16)).shape == (2, 10)


def test_group_norm_groups_lose_the_same_count():
    model = GroupNormNet().eval()
    group = groups_of(model)["conv1.weight"]
    assert group.prunable and group.cells == 4
    result = prune_channels(model, X8, {"conv1.weight": 0.3})  # 4 parts of 4 -> 1 each
    kept = result.kept["conv1.weight"]
    assert [sum(1 for k in kept if k // 4 == g) for g in range(4)] == [3, 3, 3, 3]
    assert result.model.gn.num_channels == 12 and result.model(X8).shape == (1, 10)


def test_one_channel_per_group_cannot_be_removed():
    group = groups_of(DepthMultiplier())["conv1.weight"]
    assert not group.prunable and "groups=8" in group.reason and "one channel" in group.reason


def test_the_forward_check_runs_once_per_model(monkeypatch):
    calls = []
    problem = verify._problem
    monkeypatch.setattr(verify, "_problem", lambda *args: calls.append(1) or problem(*args))
    model = GroupNormNet().eval()
    channel_groups(model, X8)
    first = len(calls)
    channel_groups(model, X8)
    prune_channels(model, X8, {"conv1.weight": 0.5})
    assert first >= 1 and len(calls) == first


def test_a_pruned_model_that_does_not_run_is_refused_before_training():
    model = FixedView().eval()
    kept = {"conv.weight": list(range(12))}
    broken = apply_kept(FixedView().eval(), X8, kept, DEPGRAPH)  # pruned by hand, past the listing check
    with pytest.raises(
        UserError, match=r"channel group 'conv.weight' cannot be pruned to 12 channels: .*flatten"
    ):
        verify.verify_pruned(model, broken, X8, kept)
