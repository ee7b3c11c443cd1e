"""Channel checkpoints: every stage of kept indices + state_dict, loaded weights_only, rebuilt bit for
bit (core.lineage); export."""

import pytest
import torch
from torch import nn

from prunetui.core.atomic import write_atomic
from prunetui.core.channel import channel_groups, prune_channels
from prunetui.core.channel.export import export_deployable, onnx_outputs
from prunetui.core.lineage import ChannelStage, channel_checkpoint, rebuild, stages_of
from prunetui.errors import UserError
from prunetui.sources.models import build_model

X = torch.zeros(1, 3, 32, 32)
SPECS = ["vgg-cifar", "torchvision:resnet18:10", "torchvision:mobilenet_v2:10"]


def with_statistics(model: nn.Module) -> nn.Module:
    with torch.no_grad():  # trained-looking BN statistics, so a misplaced channel shows in the outputs
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 2.0)
    return model


def pruned(model: nn.Module, offset: int = 0):
    targets = {
        g.name: 0.3 + 0.05 * ((i + offset) % 5) for i, g in enumerate(channel_groups(model, X)) if g.prunable
    }
    return prune_channels(model, X, targets)


def saved_file(tmp_path, stages, model):
    path = tmp_path / "pruned.pt"
    write_atomic(path, lambda f: torch.save(channel_checkpoint(stages, model), f), binary=True)
    return path


@pytest.mark.parametrize("spec", SPECS)
def test_rebuilt_from_the_file_gives_identical_outputs(spec, tmp_path):
    result = pruned(with_statistics(build_model(spec).eval()))
    images = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        expected = result.model.eval()(images)
    path = saved_file(tmp_path, [ChannelStage.of(result, X)], result.model)
    raw = torch.load(path, weights_only=True)  # no pickled module: plain data and tensors only
    assert raw["stages"][0]["kept"] == result.kept
    assert all(isinstance(i, int) for k in raw["stages"][0]["kept"].values() for i in k)
    smaller = rebuild(build_model(spec).eval(), raw)
    with torch.no_grad():
        assert torch.equal(smaller(images), expected)
    assert [p.shape for p in smaller.parameters()] == [p.shape for p in result.model.parameters()]


@pytest.mark.parametrize("spec", ["vgg-cifar", "torchvision:resnet18:10"])
def test_two_rounds_of_channel_pruning_rebuild_from_the_spec(spec, tmp_path):
    first = pruned(with_statistics(build_model(spec).eval()))
    second = pruned(first.model, offset=2)  # the second round's indices are into the smaller model
    stages = [ChannelStage.of(first, X), ChannelStage.of(second, X)]
    path = saved_file(tmp_path, stages, second.model)
    images = torch.randn(2, 3, 32, 32)
    smaller = rebuild(build_model(spec).eval(), torch.load(path, weights_only=True))
    with torch.no_grad():
        assert torch.equal(smaller(images), second.model.eval()(images))
    assert sum(p.numel() for p in smaller.parameters()) < sum(p.numel() for p in first.model.parameters())


def test_a_version_1_file_is_read_as_one_stage():
    result = pruned(build_model("vgg-cifar").eval())
    stage = ChannelStage.of(result, X)
    old = {
        "format": "prunetui.channel",
        "version": 1,
        **stage.as_dict(),
        "state_dict": result.model.state_dict(),
    }
    assert stages_of(old) == (stage,)


def test_a_newer_version_or_the_wrong_architecture_is_a_user_error():
    saved = channel_checkpoint([ChannelStage.of(pruned(build_model("vgg-cifar").eval()), X)], nn.Linear(1, 1))
    with pytest.raises(UserError, match="newer"):
        stages_of({**saved, "version": 99})
    with pytest.raises(UserError):
        rebuild(build_model("torchvision:resnet18:10"), saved)
    magic = {**saved, "stages": [{**saved["stages"][0], "algorithm": "magic"}]}
    with pytest.raises(UserError, match="unknown channel algorithm"):
        rebuild(build_model("vgg-cifar"), magic)


@pytest.mark.parametrize("spec", ["torchvision:resnet18:10", "torchvision:mobilenet_v2:10"])
def test_onnx_export_matches_pytorch(spec, tmp_path):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    model = pruned(with_statistics(build_model(spec).eval())).model.eval()
    exported = export_deployable(model, X, tmp_path / "model.onnx")
    assert exported.format == "onnx" and exported.checked
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]  # atomic: no temp file left
    images = torch.randn(4, 3, 32, 32)  # a batch other than the export's: the batch axis is dynamic
    with torch.no_grad():
        expected = model(images).numpy()
    got = onnx_outputs(exported.path, images)
    assert got.shape == expected.shape
    assert abs(got - expected).max() < 1e-4
