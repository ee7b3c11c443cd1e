"""Channel pruning end to end through the command line: the lab's figures, profiles checked against the
model's groups, measured cost in every run's JSON, checkpoints that rebuild the smaller model exactly,
and ONNX files whose outputs match."""

import json

import numpy as np
import pytest
import torch
from torch import nn

from prunetui.cli import main
from prunetui.core.channel.export import onnx_outputs
from prunetui.sources import open_model

LAB_UNIFORM = "".join(f'"backbone.conv{i}.weight" = 0.3\n' for i in range(7))
COST_KEYS = ("macs_dense", "macs", "params_dense", "params", "latency_ms_dense", "latency_ms")


def write_profile(path, lines: str, method: str = "channel") -> str:
    path.write_text(f'name = "p"\nmethod = "{method}"\n[sparsity]\n{lines}')
    return str(path)


def run_json(capsys, argv: list[str]) -> dict:
    assert main([*argv, "--json"]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def test_the_labs_channel_figures(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    profile = write_profile(tmp_path / "uniform.toml", LAB_UNIFORM)
    out = run_json(capsys, ["prune", "--model", "vgg-cifar", "--profile", profile])
    assert out["method"] == "channel"
    assert (out["macs"], out["params"]) == (305388064, 5013666)
    assert (out["macs_dense"], out["params_dense"]) == (606164480, 9228362)
    assert out["latency_ms"] > 0 and out["latency_ms_dense"] > 0 and out["latency_batch"] == 1
    assert out["latency_threads"] >= 1 and out["latency_device"] == "cpu"
    assert out["channels"]["backbone.conv0.weight"] == {"kept": 45, "total": 64}
    assert out["channels"]["backbone.conv7.weight"] == {"kept": 512, "total": 512}
    row = run_json(capsys, ["runs", "--model", "vgg-cifar"])["runs"][-1]
    assert all(row[key] == out[key] for key in COST_KEYS)


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ('"backbone.conv7.weight" = 0.3\n', "backbone.conv7.weight cannot be pruned: its outputs feed"),
        ('"classifier.weight" = 0.3\n', "cannot be pruned: its outputs are the model's outputs"),
        ('"backbone.bn1.weight" = 0.3\n', "closest groups: backbone.conv1.weight"),
    ],
)
def test_channel_profiles_are_checked_against_the_groups(capsys, tmp_path, lines, message):
    profile = write_profile(tmp_path / "bad.toml", lines)
    assert main(["prune", "--model", "vgg-cifar", "--profile", profile]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and len(err.splitlines()) == 1


def test_a_coupled_layer_names_its_group(capsys, tmp_path):
    profile = write_profile(tmp_path / "dw.toml", '"features.1.conv.0.0.weight" = 0.3\n')
    assert main(["prune", "--model", "torchvision:mobilenet_v2:10", "--profile", profile]) == 2
    message = "features.1.conv.0.0.weight is pruned with the group features.0.0.weight"
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and len(err.splitlines()) == 1


def test_a_fine_grained_run_reports_dense_macs(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    profile = write_profile(tmp_path / "fine.toml", '"backbone.conv3.weight" = 0.9\n', "magnitude")
    out = run_json(capsys, ["prune", "--profile", profile])  # the demo, with its digits
    assert out["macs"] == out["macs_dense"] and out["params"] == out["params_dense"]
    assert out["latency_ms"] > 0 and out["latency_ms_dense"] > 0


@pytest.mark.parametrize(
    ("spec", "groups"),
    [
        ("vgg-cifar", ["backbone.conv2.weight", "backbone.conv5.weight"]),
        ("torchvision:resnet18:10", ["conv1.weight", "layer1.0.conv1.weight", "layer3.0.conv1.weight"]),
        ("torchvision:mobilenet_v2:10", ["features.0.0.weight", "features.4.conv.0.0.weight"]),
    ],
)
def test_pruned_checkpoint_and_onnx_rebuild_the_same_outputs(capsys, tmp_path, monkeypatch, spec, groups):
    monkeypatch.chdir(tmp_path)
    profile = write_profile(tmp_path / "p.toml", "".join(f'"{g}" = 0.5\n' for g in groups))
    data = "random:16:3x32x32"
    argv = ["prune", "--model", spec, "--data", data, "--profile", profile, "--finetune", "1"]
    out = run_json(capsys, [*argv, "--out", "pruned.pt", "--onnx", "pruned.onnx"])
    assert out["macs"] < out["macs_dense"] and out["params"] < out["params_dense"]
    saved = torch.load(tmp_path / "pruned.pt", weights_only=True)  # no pickled module
    assert saved["format"] == "prunetui.channel" and set(groups) <= set(saved["stages"][0]["kept"])
    model = open_model(spec, "pruned.pt").model
    for module in model.modules():  # the pruned (and finetuned) weights, in the smaller shapes
        if isinstance(module, nn.BatchNorm2d):
            assert module.running_var.shape[0] == module.num_features
    images = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        expected = model(images).numpy()
    reloaded = open_model(spec, "pruned.pt").model
    with torch.no_grad():
        assert torch.equal(reloaded(images), torch.from_numpy(expected))
    np.testing.assert_allclose(onnx_outputs(tmp_path / "pruned.onnx", images), expected, atol=1e-4, rtol=1e-4)
    info = run_json(capsys, ["info", "--model", spec, "--checkpoint", "pruned.pt"])
    assert info["sparse_size_mib"] == pytest.approx(out["sparse_size_mib"])
