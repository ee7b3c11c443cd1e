"""Channel checkpoints: kept indices + state_dict, loaded weights_only, rebuilt bit for bit; export."""

import pytest
import torch
from torch import nn

from prunetui.core.channel import (
    channel_checkpoint,
    channel_groups,
    load_channel_checkpoint,
    prune_channels,
    rebuild,
    save_channel_checkpoint,
)
from prunetui.core.channel.export import export_deployable, onnx_outputs
from prunetui.errors import UserError
from prunetui.sources.models import build_model

X = torch.zeros(1, 3, 32, 32)
SPECS = ["vgg-cifar", "torchvision:resnet18:10", "torchvision:mobilenet_v2:10"]


def pruned(spec: str):
    model = build_model(spec).eval()
    with torch.no_grad():  # trained-looking BN statistics, so a misplaced channel shows in the outputs
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 2.0)
    targets = {g.name: 0.3 + 0.05 * (i % 5) for i, g in enumerate(channel_groups(model, X)) if g.prunable}
    return prune_channels(model, X, targets)


@pytest.mark.parametrize("spec", SPECS)
def test_rebuilt_from_the_file_gives_identical_outputs(spec, tmp_path):
    result = pruned(spec)
    images = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        expected = result.model.eval()(images)
    path = save_channel_checkpoint(tmp_path / "pruned.pt", channel_checkpoint(result, X))
    raw = torch.load(path, weights_only=True)  # no pickled module: plain data and tensors only
    assert raw["kept"] == result.kept and all(isinstance(i, int) for k in raw["kept"].values() for i in k)
    fresh = build_model(spec).eval()
    smaller = rebuild(fresh, load_channel_checkpoint(path))
    with torch.no_grad():
        assert torch.equal(smaller(images), expected)
    assert [p.shape for p in smaller.parameters()] == [p.shape for p in result.model.parameters()]


def test_a_file_that_is_not_a_channel_checkpoint_is_a_user_error(tmp_path):
    path = tmp_path / "plain.pt"
    torch.save({"state_dict": {}}, path)
    with pytest.raises(UserError, match="not a prunetui channel checkpoint"):
        load_channel_checkpoint(path)


def test_rebuilding_on_the_wrong_architecture_is_a_user_error(tmp_path):
    saved = channel_checkpoint(pruned("vgg-cifar"), X)
    with pytest.raises(UserError):
        rebuild(build_model("torchvision:resnet18:10"), {**saved, "algorithm": "depgraph"})
    with pytest.raises(UserError, match="unknown channel algorithm"):
        rebuild(build_model("vgg-cifar"), {**saved, "algorithm": "magic"})


@pytest.mark.parametrize("spec", ["torchvision:resnet18:10", "torchvision:mobilenet_v2:10"])
def test_onnx_export_matches_pytorch(spec, tmp_path):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    model = pruned(spec).model.eval()
    exported = export_deployable(model, X, tmp_path / "model.onnx")
    assert exported.format == "onnx" and exported.checked
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]  # atomic: no temp file left
    images = torch.randn(4, 3, 32, 32)  # a batch other than the export's: the batch axis is dynamic
    with torch.no_grad():
        expected = model(images).numpy()
    got = onnx_outputs(exported.path, images)
    assert got.shape == expected.shape
    assert abs(got - expected).max() < 1e-4
