"""The structured `channel` method: groups, apply, projected cost, group-aware scan."""

import threading

import torch
from torch import nn

from prunetui.core.cost import count_params, measure_cost
from prunetui.core.methods import Plan
from prunetui.core.methods.channel import Channel, scan_groups
from prunetui.sources.models import build_model

X = torch.zeros(1, 3, 32, 32)


def test_projected_cost_is_the_cost_of_the_applied_plan():
    method = Channel()
    model = build_model("vgg-cifar").eval()
    plan = Plan("channel", {f"backbone.conv{i}.weight": 0.3 for i in range(7)})
    projected = method.projected_cost(model, plan, X)
    assert (projected.macs, projected.params) == (305_388_064, 5_013_666)
    assert projected == measure_cost(method.apply(model, plan, X).model, X)
    assert method.projected_cost(model, Plan("channel", {}), X).macs == 606_164_480
    assert method.structured and method.name == "channel"


def test_kept_counts_for_the_table():
    method = Channel()
    model = build_model("torchvision:resnet18:10").eval()
    groups = method.groups(model, X)
    counts = method.kept_counts(model, groups, Plan("channel", {"conv1.weight": 0.3}))
    assert counts["conv1.weight"] == (45, 64)  # 64 - round(19.2)
    assert counts["fc.weight"] == (10, 10)


def test_scan_prunes_each_group_alone_on_a_copy():
    model = build_model("torchvision:resnet18:10").eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    seen = []

    def evaluate(candidate: nn.Module) -> float:
        seen.append(count_params(candidate))
        return float(len(seen))

    progress = []
    results = scan_groups(
        model,
        X,
        ["conv1.weight", "layer1.0.conv1.weight"],
        [0.0, 0.5],
        evaluate,
        progress=lambda d, t: progress.append((d, t)),
    )
    assert results == {"conv1.weight": [1.0, 2.0], "layer1.0.conv1.weight": [3.0, 4.0]}
    assert seen[0] == seen[2] > seen[1] and seen[3] < seen[2]
    assert progress[-1] == (4, 4)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    cancel = threading.Event()
    cancel.set()
    assert scan_groups(model, X, ["conv1.weight"], [0.5], evaluate, cancel=cancel) == {}


def test_fine_grained_pruning_composes_on_the_smaller_model():
    from prunetui.core.pruning import prune

    model = build_model("vgg-cifar").eval()
    smaller = Channel().apply(model, Plan("channel", {"backbone.conv2.weight": 0.5}), X).model
    masks = prune(smaller, {"backbone.conv2.weight": 0.9, "backbone.conv3.weight": 0.5})
    weight = smaller.backbone.conv2.weight
    assert weight.shape[0] == 128 and masks["backbone.conv2.weight"].shape == weight.shape
    assert int((weight == 0).sum()) == round(weight.numel() * 0.9)  # the lab's k on the smaller tensor
    assert smaller(torch.randn(1, 3, 32, 32)).shape == (1, 10)
