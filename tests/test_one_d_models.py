"""1-D models (issue #22 kind 6): Conv1d networks on N x C x L signals, from `tensor:FILE.pt` (images
N x C x L) and `random:N:CxL`, scanned, pruned (fine-grained and by channel), finetuned and exported as
images are. Members: a Conv1d + BatchNorm1d net with a mean over time, a grouped Conv1d net with a
flattening head; data from a file and synthetic.
"""

from pathlib import Path

import pytest
import torch
from conftest import run_json

from prunetui.core.augment import random_crop_flip
from prunetui.core.cost import count_macs
from prunetui.core.evaldata import hold_eval_data
from prunetui.core.evaluate import evaluate
from prunetui.core.layers import describe_layers
from prunetui.core.pruning import magnitude_mask
from prunetui.core.scan_memory import forward_transient
from prunetui.errors import UserError
from prunetui.sources.data import load_data
from prunetui.sources.models import load_model

SIGNALS = '''
import torch
from torch import nn


class Signal(nn.Module):
    """Which of two channels carries the louder tone: conv, BN, conv, mean over time, linear."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv1d(2, 8, 5, padding=2), nn.BatchNorm1d(8), nn.ReLU(),
            nn.Conv1d(8, 16, 3, padding=1), nn.BatchNorm1d(16), nn.ReLU(),
        )
        self.head = nn.Linear(16, 2)

    def forward(self, x):
        return self.head(self.features(x).mean(-1))


def signal():
    torch.manual_seed(0)
    return Signal()


def grouped():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv1d(2, 8, 5, padding=2), nn.ReLU(), nn.Conv1d(8, 16, 3, padding=1, groups=2), nn.ReLU(),
        nn.Flatten(), nn.Linear(16 * 32, 10),
    )
'''


def tones(n: int = 48, length: int = 32) -> dict[str, torch.Tensor]:
    """Class c: a sine of amplitude 2 on channel c, noise elsewhere."""
    g = torch.Generator().manual_seed(3)
    labels = torch.arange(n) % 2
    images = 0.3 * torch.randn(n, 2, length, generator=g)
    images[torch.arange(n), labels] += 2 * torch.sin(torch.arange(length) / 2.0)
    return {"images": images, "labels": labels}


@pytest.fixture
def folder(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "signals.py").write_text(SIGNALS)
    torch.save(tones(), tmp_path / "tones.pt")
    (tmp_path / "half.toml").write_text('[sparsity]\n"features.3.weight" = 0.5\n"head.weight" = 0.5\n')
    (tmp_path / "channel.toml").write_text('method = "channel"\n[sparsity]\n"features.0.weight" = 0.5\n')
    return tmp_path


SIGNAL = ["--model", "signals.py:signal", "--data", "tensor:tones.pt", "--device", "cpu"]


def test_signal_data_specs(tmp_path):
    torch.save(tones(), tmp_path / "tones.pt")
    data = load_data(f"tensor:{tmp_path / 'tones.pt'}")
    assert data.input_shape == (2, 32) and data.num_classes == 2
    assert torch.equal(next(iter(data.eval))[0], tones()["images"])
    synthetic = load_data("random:64:2x128")
    assert synthetic.input_shape == (2, 128)
    assert torch.equal(
        synthetic.eval.dataset.tensors[0], load_data("random:64:2x128").eval.dataset.tensors[0]
    )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("random:4:2x", "expected random:N:CxHxW, e.g. random:256:3x32x32, or random:N:CxL for 1-D"),
        ("random:4:0x8", "N and every size must be positive"),
        ("tensor:flat.pt", "'images' must be a float tensor N x C x H x W (images) or N x C x L"),
    ],
)
def test_bad_signal_specs_are_one_line(tmp_path, monkeypatch, spec, message):
    monkeypatch.chdir(tmp_path)
    torch.save({"images": torch.rand(4, 32), "labels": torch.zeros(4, dtype=torch.long)}, "flat.pt")
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_data(spec)


def test_layers_macs_and_memory_of_a_conv1d_model(folder):
    model, _ = load_model("signals.py:grouped")
    assert [(layer.kind, layer.shape) for layer in describe_layers(model)] == [
        ("Conv1d", (8, 2, 5)), ("Conv1d", (16, 4, 3)), ("Linear", (10, 512)),
    ]  # fmt: skip
    x = torch.zeros(3, 2, 32)
    assert count_macs(model, x) == 8 * 32 * 2 * 5 + 16 * 32 * 4 * 3 + 10 * 512  # C_out L C_in/groups k
    largest = 3 * 16 * 32 * 4  # bytes of the biggest module output: the grouped conv's, 3 x 16 x 32 float32
    assert forward_transient(model, x) == x.numel() * 4 + 3 * largest


def test_held_signals_keep_their_values_with_channels_last_asked():
    data = tones()
    batches = [(data["images"][i : i + 16], data["labels"][i : i + 16]) for i in range(0, 48, 16)]
    held = hold_eval_data(batches, torch.device("cpu"), 32, channels_last=True)
    assert [len(y) for _, y in held] == [32, 16]
    assert torch.equal(torch.cat([x for x, _ in held]), data["images"])


def test_signals_get_no_augmentation():
    with pytest.raises(ValueError, match="takes N x C x H x W images, not a 3-D batch"):
        random_crop_flip(torch.zeros(2, 2, 32))


def test_cli_scan_gives_the_accuracy_of_each_pruned_layer(capsys, folder):
    doc, _ = run_json(capsys, "scan", *SIGNAL, "--sparsities", "0.5,0.9")
    model, _ = load_model("signals.py:signal")
    data = load_data("tensor:tones.pt")
    assert doc["dense_accuracy"] == evaluate(model, data.eval)
    for name, row in doc["layers"].items():
        expected = []
        for sparsity in (0.5, 0.9):
            pruned, _ = load_model("signals.py:signal")
            weight = pruned.get_parameter(name)
            with torch.no_grad():
                weight.mul_(magnitude_mask(weight, sparsity))
            expected.append(evaluate(pruned, data.eval))
        assert row == pytest.approx(expected, abs=1e-9), name


@pytest.mark.parametrize("method", ["magnitude", "taylor"])
def test_cli_prunes_and_finetunes_a_conv1d_model(capsys, folder, method):
    argv = ["prune", *SIGNAL, "--profile", "half.toml", "--method", method, "--finetune", "1"]
    doc, _ = run_json(capsys, *argv, "--out", "pruned.pt")
    sparsity = {layer["name"]: layer["sparsity"] for layer in doc["layers"]}
    assert sparsity == {"features.0.weight": 0.0, "features.3.weight": 0.5, "head.weight": 0.5}
    assert len(doc["epochs"]) == 1 and doc["macs_dense"] == doc["macs"] > 0
    reopened, _ = run_json(capsys, "info", *SIGNAL, "--checkpoint", "pruned.pt")
    zeros = {layer["name"]: layer["zero_fraction"] for layer in reopened["layers"]}
    assert zeros["features.3.weight"] == zeros["head.weight"] == 0.5  # held through finetuning


def test_cli_channel_prunes_a_conv1d_model_and_exports_onnx(capsys, folder):
    onnxruntime = pytest.importorskip("onnxruntime", reason="the ONNX check needs onnxruntime")
    argv = ["prune", *SIGNAL, "--profile", "channel.toml", "--out", "small.pt", "--onnx", "small.onnx"]
    doc, _ = run_json(capsys, *argv)
    assert doc["params"] < doc["params_dense"] and doc["macs"] < doc["macs_dense"]
    info, _ = run_json(capsys, "info", *SIGNAL, "--checkpoint", "small.pt")
    assert [layer["shape"] for layer in info["layers"]] == [[4, 2, 5], [16, 4, 3], [2, 16]]
    model, _ = load_model("signals.py:signal", "small.pt")
    x = tones()["images"][:4]
    with torch.no_grad():
        expected = model.eval()(x).numpy()
    got = onnxruntime.InferenceSession("small.onnx").run(None, {"input": x.numpy()})[0]
    assert abs(got - expected).max() < 1e-5
