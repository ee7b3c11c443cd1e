"""The lab's channel pruning of its VGG (EfficientML.ai lab 1, part 2), reproduced exactly."""

import copy

import pytest
import torch
from torch import nn

from prunetui.core.channel import LAB_VGG, channel_groups, kept_counts, prune_channels
from prunetui.core.channel.lab_vgg import apply_channel_sorting
from prunetui.core.cost import count_macs, count_params
from prunetui.errors import UserError
from prunetui.sources.vgg import VGG

X = torch.zeros(1, 3, 32, 32)
UNIFORM_03 = {f"backbone.conv{i}.weight": 0.3 for i in range(7)}


def randomized_vgg(seed: int = 0) -> nn.Module:
    """A VGG whose BN statistics and affine terms are not the identity (so slicing them matters)."""
    torch.manual_seed(seed)
    model = VGG().eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 2.0)
    return model


@torch.no_grad()
def lab_reference(model: nn.Module, ratio: float) -> nn.Module:
    """The lab's two steps as the lab writes them: sort every pair in place, then keep the first n."""
    model = copy.deepcopy(model)
    convs = [m for m in model.backbone if isinstance(m, nn.Conv2d)]
    bns = [m for m in model.backbone if isinstance(m, nn.BatchNorm2d)]
    for prev, bn, nxt in zip(convs, bns, convs[1:], strict=False):
        importance = torch.stack([torch.norm(nxt.weight[:, c]) for c in range(nxt.in_channels)])
        order = torch.argsort(importance, descending=True)
        prev.weight.copy_(prev.weight.index_select(0, order))
        for t in (bn.weight, bn.bias, bn.running_mean, bn.running_var):
            t.copy_(t.index_select(0, order))
        nxt.weight.copy_(nxt.weight.index_select(1, order))
    for prev, bn, nxt in zip(convs, bns, convs[1:], strict=False):
        n = int(round(prev.out_channels * (1.0 - ratio)))
        prev.weight.set_(prev.weight.detach()[:n])
        for t in (bn.weight, bn.bias, bn.running_mean, bn.running_var):
            t.set_(t.detach()[:n])
        nxt.weight.set_(nxt.weight.detach()[:, :n])
    return model


def test_uniform_03_gives_the_labs_macs_and_params():
    result = prune_channels(randomized_vgg(), X, UNIFORM_03)
    assert result.algorithm == LAB_VGG
    assert count_macs(result.model, X) == 305_388_064
    assert count_params(result.model) == 5_013_666


def test_same_weights_as_the_labs_sort_then_slice():
    model = randomized_vgg(1)
    ours = prune_channels(model, X, UNIFORM_03).model.state_dict()
    theirs = lab_reference(model, 0.3).state_dict()
    assert ours.keys() == theirs.keys()
    for name in ours:
        assert torch.equal(ours[name], theirs[name]), name


def test_sorting_alone_keeps_the_outputs():
    model = randomized_vgg(2)
    images = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        before = model(images)
        sorted_model = apply_channel_sorting(copy.deepcopy(model))
        after = sorted_model(images)
    assert not torch.equal(sorted_model.backbone.conv0.weight, model.backbone.conv0.weight)  # it did permute
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-5)  # float summation order only


def test_conv7_and_classifier_are_never_pruned():
    model = randomized_vgg()
    groups = {g.name: g for g in channel_groups(model, X)}
    assert [g.prunable for g in groups.values()] == [True] * 7 + [False, False]
    assert "classifier" in groups["backbone.conv7.weight"].reason
    for name in ("backbone.conv7.weight", "classifier.weight"):
        with pytest.raises(UserError, match="cannot be pruned"):
            prune_channels(model, X, {name: 0.5})
    smaller = prune_channels(model, X, UNIFORM_03).model
    assert smaller.backbone.conv7.out_channels == 512 and smaller.classifier.out_features == 10


def test_bad_targets_are_user_errors_and_the_model_is_untouched():
    model = randomized_vgg()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(UserError, match="closest: backbone.conv3.weight"):
        prune_channels(model, X, {"backbone.conv3.weigth": 0.3})
    with pytest.raises(UserError, match=r"\[0, 1\]"):
        prune_channels(model, X, {"backbone.conv3.weight": 1.5})
    prune_channels(model, X, UNIFORM_03)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_kept_counts_follow_the_labs_rounding():
    model = randomized_vgg()
    counts = kept_counts(channel_groups(model, X), {"backbone.conv0.weight": 0.3}, LAB_VGG)
    assert counts["backbone.conv0.weight"] == (45, 64)  # round(64 * 0.7) = round(44.8)
    assert counts["backbone.conv1.weight"] == (128, 128)
    smaller = prune_channels(model, X, {"backbone.conv0.weight": 0.3}).model
    assert smaller.backbone.conv0.out_channels == 45 and smaller.backbone.conv1.in_channels == 45
