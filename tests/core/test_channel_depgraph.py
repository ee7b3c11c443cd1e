"""Channel pruning of any model by Torch-Pruning's dependency groups (resnet18, mobilenet_v2)."""

import pytest
import torch
from torch import nn

from prunetui.core.channel import DEPGRAPH, channel_groups, kept_counts, prune_channels
from prunetui.core.cost import count_macs, count_params
from prunetui.errors import UserError
from prunetui.sources.models import build_model

X = torch.zeros(1, 3, 32, 32)
SPECS = ["torchvision:resnet18:10", "torchvision:mobilenet_v2:10"]


def randomized(spec: str) -> nn.Module:
    model = build_model(spec).eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.running_mean.uniform_(-0.1, 0.1)
    return model


@pytest.fixture(scope="module")
def resnet() -> nn.Module:
    return randomized(SPECS[0])


@pytest.mark.parametrize("spec", SPECS)
def test_every_group_at_half_prunes_to_a_smaller_working_model(spec):
    model = randomized(spec)
    groups = channel_groups(model, X)
    targets = {g.name: 0.5 for g in groups if g.prunable}
    result = prune_channels(model, X, targets)
    assert result.algorithm == DEPGRAPH
    out = result.model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10)
    assert count_macs(result.model, X) < 0.5 * count_macs(model, X)
    assert count_params(result.model) < 0.5 * count_params(model)
    counts = kept_counts(groups, targets, DEPGRAPH)
    assert {name: len(kept) for name, kept in result.kept.items()} == {n: counts[n][0] for n in targets}


def test_resnet18_groups_couple_residual_partners(resnet):
    groups = {g.name: g for g in channel_groups(resnet, X)}
    assert groups["conv1.weight"].members == (
        "conv1.weight",
        "layer1.0.conv2.weight",
        "layer1.1.conv2.weight",
    )
    assert groups["layer2.0.conv2.weight"].members == (
        "layer2.0.conv2.weight",
        "layer2.0.downsample.0.weight",
        "layer2.1.conv2.weight",
    )
    assert groups["layer1.0.conv1.weight"].members == ("layer1.0.conv1.weight",)
    assert len(groups) == 13  # 12 prunable + the classifier


@torch.no_grad()
def test_a_group_loses_the_same_channels_in_every_member(resnet):
    result = prune_channels(resnet, X, {"layer2.0.conv2.weight": 0.25})
    kept = torch.tensor(result.kept["layer2.0.conv2.weight"])
    assert len(kept) == 96  # 128 - round(128 * 0.25)
    small = result.model
    for layer in ("layer2.0.conv2", "layer2.0.downsample.0", "layer2.1.conv2"):
        original = resnet.get_submodule(layer).weight
        assert torch.equal(small.get_submodule(layer).weight, original[kept]), layer
    for bn in ("layer2.0.bn2", "layer2.0.downsample.1", "layer2.1.bn2"):
        assert torch.equal(small.get_submodule(bn).running_mean, resnet.get_submodule(bn).running_mean[kept])
    # every reader of the residual stream lost the same input channels
    for layer in ("layer2.1.conv1", "layer3.0.conv1", "layer3.0.downsample.0"):
        assert torch.equal(small.get_submodule(layer).weight, resnet.get_submodule(layer).weight[:, kept]), (
            layer
        )
    assert small(torch.randn(1, 3, 32, 32)).shape == (1, 10)


@torch.no_grad()
def test_the_least_important_channels_go(resnet):
    from prunetui.core.channel.depgraph import build_graph, group_importance

    importance = group_importance(resnet, build_graph(resnet, X), "layer1.0.conv1.weight")
    kept = prune_channels(resnet, X, {"layer1.0.conv1.weight": 0.5}).kept["layer1.0.conv1.weight"]
    removed = sorted(set(range(64)) - set(kept))
    assert importance[removed].max() <= importance[kept].min()


@pytest.mark.parametrize("spec, classifier", [(SPECS[0], "fc"), (SPECS[1], "classifier.1")])
def test_the_classifier_outputs_are_never_pruned(spec, classifier):
    model = randomized(spec)
    groups = {g.name: g for g in channel_groups(model, X)}
    group = groups[f"{classifier}.weight"]
    assert not group.prunable and "model's outputs" in group.reason
    with pytest.raises(UserError, match="cannot be pruned"):
        prune_channels(model, X, {f"{classifier}.weight": 0.3})
    result = prune_channels(model, X, {name: 0.9 for name, g in groups.items() if g.prunable})
    assert result.model.get_submodule(classifier).out_features == 10
    assert result.model.get_submodule(classifier).in_features < model.get_submodule(classifier).in_features


def test_unknown_group_names_list_the_closest(resnet):
    with pytest.raises(UserError, match="closest: layer1.0.conv1.weight"):
        prune_channels(resnet, X, {"layer1.0.conv1.weigth": 0.3})
    with pytest.raises(UserError, match="no channel group 'layer1.0.conv2.weight'"):  # a member, not a name
        prune_channels(resnet, X, {"layer1.0.conv2.weight": 0.3})


def test_one_channel_always_stays(resnet):
    result = prune_channels(resnet, X, {"layer1.0.conv1.weight": 1.0})
    assert result.model.layer1[0].conv1.out_channels == 1
    assert result.model(torch.randn(1, 3, 32, 32)).shape == (1, 10)
