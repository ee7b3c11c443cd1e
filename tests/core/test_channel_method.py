"""The structured `channel` method through the lifecycle every method has: units, prune, projection,
group-aware scan; fine-grained pruning on top of it."""

import threading

import torch
from torch import nn

from prunetui.core.cost import count_params, measure_cost
from prunetui.core.methods import Plan, get_method
from prunetui.core.methods.channel import Channel, scan_groups
from prunetui.core.model_state import ModelState
from prunetui.sources.models import build_model

X = torch.zeros(1, 3, 32, 32)


def state_of(spec: str) -> ModelState:
    return ModelState(build_model(spec).eval(), example=X)


def test_the_projection_is_the_cost_of_the_pruned_model():
    method, state = Channel(), state_of("vgg-cifar")
    targets = {f"backbone.conv{i}.weight": 0.3 for i in range(7)}
    projected = method.projection(state, targets)
    assert (projected.cost.macs, projected.cost.params) == (305_388_064, 5_013_666)
    method.prune(state, Plan("channel", targets), "dense", None)
    assert projected.cost == measure_cost(state.model, X) and projected.size_mib == state.current_size()
    assert method.projection(state, {}).cost.macs == 606_164_480
    assert method.traits.structured and method.name == "channel"


def test_the_projection_starts_from_the_opened_weights_whatever_masks_are_held():
    """A channel prune restores the weights as opened first, so its projection ignores a magnitude
    prune's zeros: projected before, after and at the channel prune itself, the same size."""
    state = ModelState(build_model("demo").eval(), example=torch.zeros(1, 1, 8, 8))
    targets = {"backbone.conv1.weight": 0.5}
    before = Channel().projection(state, targets)
    get_method("magnitude").prune(state, Plan("magnitude", {"backbone.conv2.weight": 0.9}), "dense", None)
    assert Channel().projection(state, targets).size_mib == before.size_mib
    Channel().prune(state, Plan("channel", targets), "dense", None)
    assert state.current_size() == before.size_mib


def test_kept_counts_and_unprunable_units_for_the_table():
    method, state = Channel(), state_of("torchvision:resnet18:10")
    projection = method.projection(state, {"conv1.weight": 0.3})
    assert projection.kept["conv1.weight"] == (45, 64)  # 64 - round(19.2)
    assert projection.kept["fc.weight"] == (10, 10)
    assert "fc.weight" in projection.reasons and "fc.weight" not in method.unit_names(state)
    # a residual partner is set through its group: the reason the table shows names that group
    assert projection.reasons["layer1.0.conv2.weight"].startswith("pruned with the group conv1.weight")
    assert "layer2.0.conv1.weight" not in projection.reasons  # a group of its own


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
    state = state_of("vgg-cifar")
    Channel().prune(state, Plan("channel", {"backbone.conv2.weight": 0.5}), "dense", None)
    smaller = state.model
    further = Plan("magnitude", {"backbone.conv2.weight": 0.9, "backbone.conv3.weight": 0.5})
    get_method("magnitude").prune(state, further, "current", None)
    weight = smaller.backbone.conv2.weight
    assert state.model is smaller and len(state.stages) == 1
    assert weight.shape[0] == 128 and state.masks["backbone.conv2.weight"].shape == weight.shape
    assert int((weight == 0).sum()) == round(weight.numel() * 0.9)  # the lab's k on the smaller tensor
    assert smaller(torch.randn(1, 3, 32, 32)).shape == (1, 10)
    state.reset()
    assert state.model is state.base and not state.stages and state.base.backbone.conv2.out_channels == 256
