"""Exports that tell the truth: `--onnx x.onnx` writes ONNX that onnxruntime runs to PyTorch's outputs
at batch 1 and 16, or fails with one line and writes nothing (never another format, never over an
existing file); nothing the exporter prints reaches stdout."""

import json
import tempfile

import numpy as np
import pytest
import torch
from torch import nn

from prunetui.cli import main
from prunetui.core.onnx_export import CHECK_BATCH, averaging, export_onnx, onnx_outputs
from prunetui.errors import UserError

OLD = b"the earlier file"
MODELS = '''
import torch
from torch import nn


class Pooled(nn.Module):
    """Like torchvision's vgg below 224x224: a 2x2 map pooled to 7x7 (not a factor: the exporter refuses
    the op itself). `pool`: "avg" or "max"."""

    def __init__(self, pool="avg"):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, stride=4, padding=1)
        adaptive = nn.AdaptiveAvgPool2d if pool == "avg" else nn.AdaptiveMaxPool2d
        self.pool = adaptive((7, 7))
        self.fc = nn.Linear(4 * 49, 10)

    def forward(self, x):
        return self.fc(self.pool(torch.relu(self.conv(x))).flatten(1))


class BatchFromLen(nn.Module):
    """Right in PyTorch at every batch; the tracer bakes len(x) in."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 8 * 8, 10)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).view(len(x), -1))


class BatchOfOne(BatchFromLen):
    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).view(1, -1))


def avg():
    return Pooled("avg")


def max():
    return Pooled("max")


def from_len():
    return BatchFromLen()
'''


@pytest.fixture
def models(tmp_path, monkeypatch):
    """The models above as `models.py:NAME` specs and as a module; temp logs in tmp_path."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    (tmp_path / "models.py").write_text(MODELS)
    namespace: dict = {}
    exec(compile(MODELS, "models.py", "exec"), namespace)
    return namespace


def outputs(model: nn.Module, images: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return model.eval()(images).numpy()


@pytest.mark.parametrize(("n", "out"), [(2, 7), (1, 6), (5, 3), (7, 7), (13, 4)])
def test_the_averaging_matrices_are_pytorchs_adaptive_pooling(n, out):
    x = torch.randn(2, 3, n, n + 1)
    expected = nn.functional.adaptive_avg_pool2d(x, out)
    got = averaging(n, out) @ x @ averaging(n + 1, out).T
    torch.testing.assert_close(got, expected)


def test_adaptive_pooling_that_the_exporter_refuses_is_exported_exactly(models, tmp_path):
    torch.manual_seed(0)
    model = models["avg"]()
    exported = export_onnx(model, torch.rand(3, 3, 8, 8), tmp_path / "pooled.onnx")
    assert exported.checked and sorted(exported.differences) == [1, CHECK_BATCH]
    assert max(exported.differences.values()) < 1e-5
    images = torch.randn(5, 3, 8, 8)  # a batch size the export never saw
    np.testing.assert_allclose(
        onnx_outputs(exported.path, images), outputs(model, images), rtol=1e-5, atol=1e-6
    )
    assert type(model.pool).forward is nn.AdaptiveAvgPool2d.forward and "forward" not in vars(model.pool)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["models.py", "pooled.onnx"]


def test_a_forward_that_fixes_the_batch_is_refused_before_exporting(models, tmp_path):
    path = tmp_path / "one.onnx"
    path.write_bytes(OLD)
    with pytest.raises(UserError) as raised:
        export_onnx(models["BatchOfOne"](), torch.rand(1, 3, 8, 8), path)
    message = str(raised.value)
    assert message.startswith("cannot export as ONNX: at batch 16 its forward fails (")
    assert message.endswith(
        "so the model fixes its batch size (e.g. x.view(1, -1)) and an ONNX file with a batch axis would "
        "not match it; reshape with x.flatten(1) or x.view(x.size(0), -1); nothing written"
    )
    assert path.read_bytes() == OLD and sorted(p.name for p in tmp_path.iterdir()) == [
        "models.py",
        "one.onnx",
    ]


def test_a_batch_the_tracer_baked_in_is_found_by_onnxruntime(models, tmp_path):
    path = tmp_path / "len.onnx"
    with pytest.raises(UserError) as raised:
        export_onnx(models["from_len"](), torch.rand(4, 3, 8, 8), path)
    message = str(raised.value)
    assert message.startswith("the ONNX file does not run in onnxruntime at batch 1 (")
    assert "the traced forward fixed the batch size at 2" in message and message.endswith("nothing written")
    assert not path.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["models.py"]


def cli(capfd, *argv) -> tuple[int, str, str]:
    """`prunetui ARGV` with file descriptors 1 and 2 captured (native code writes there)."""
    code = main(list(argv))
    out, err = capfd.readouterr()
    return code, out, err


def test_a_failed_onnx_export_is_one_line_and_keeps_stdout_clean(models, tmp_path, capfd):
    (tmp_path / "p.toml").write_text('name = "p"\n[sparsity]\n')
    (tmp_path / "x.onnx").write_bytes(OLD)
    argv = ["prune", "--model", "models.py:max", "--data", "random:8:3x8x8", "--profile", "p.toml"]
    code, out, err = cli(capfd, *argv, "--onnx", "x.onnx", "--force", "--json")
    assert code == 2 and out == ""  # the exporter's graph dump went to the log, not to stdout
    line = err.splitlines()[-1]  # the line after "Prune finished": nothing from the exporter before it
    assert err.splitlines()[-2].startswith("Prune finished in ")
    assert line.startswith(
        "error: cannot export as ONNX (opset 17, TorchScript exporter): Unsupported: ONNX export of "
        "operator adaptive_max_pool2d, output size that are not factor of input size; nothing written; "
        f"the exporter's output in {tmp_path}/prunetui-onnx-"
    )
    assert "Torch IR graph" not in err and "Traceback" not in err
    assert "Torch IR graph" in next(tmp_path.glob("prunetui-onnx-*.log")).read_text()
    assert (tmp_path / "x.onnx").read_bytes() == OLD
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".log")) == [
        ".prunetui", "models.py", "p.toml", "x.onnx"
    ]  # fmt: skip  # no x.pt2, no temp file


def test_an_onnx_export_through_the_cli_says_what_was_checked(models, tmp_path, capfd):
    (tmp_path / "p.toml").write_text('name = "p"\n[sparsity]\n"conv.weight" = 0.5\n')
    argv = ["prune", "--model", "models.py:avg", "--data", "random:8:3x8x8", "--profile", "p.toml"]
    code, out, err = cli(capfd, *argv, "--onnx", "x.onnx", "--json")
    assert code == 0 and json.loads(out)["profile"] == "p"  # exactly one JSON document
    assert "Exported x.onnx (ONNX opset 17, batch axis dynamic; checked by onnx)" in err
    assert "onnxruntime outputs match PyTorch's at batch 1 and 16 within " in err


def test_a_model_written_as_many_tensor_files_is_put_in_place_as_one_data_file(models, tmp_path):
    """What the exporter writes for a model over 2 GiB (a file per tensor beside the model; made here
    with onnx from a small export) becomes `<name>.data` beside the target, and still runs."""
    import onnx

    from prunetui.core.onnx_export import _single_data_file

    model = models["avg"]()
    small = export_onnx(model, torch.rand(2, 3, 8, 8), tmp_path / "small.onnx").path
    folder = tmp_path / "staged"
    folder.mkdir()
    proto = onnx.load(str(small))
    onnx.save_model(
        proto, str(folder / "big.onnx"), save_as_external_data=True, all_tensors_to_one_file=False,
        size_threshold=0,
    )  # fmt: skip
    assert len(list(folder.iterdir())) > 2
    staged, data = _single_data_file(folder, folder / "big.onnx", tmp_path / "big.onnx")
    assert data.name == "big.onnx.data" and staged.parent == data.parent
    images = torch.randn(3, 3, 8, 8)
    np.testing.assert_allclose(onnx_outputs(staged, images), outputs(model, images), rtol=1e-5, atol=1e-6)


def test_a_vision_transformer_exports_through_attentions_plain_path(tmp_path):
    """torchvision's ViT (here a small one) takes MultiheadAttention's fused kernel under no_grad; that
    kernel has no ONNX export, its plain path has."""
    from torchvision.models import VisionTransformer

    torch.manual_seed(0)
    model = VisionTransformer(16, 8, num_layers=2, num_heads=2, hidden_dim=16, mlp_dim=32, num_classes=4)
    nn.init.normal_(model.heads.head.weight)  # torchvision zeroes the head: outputs would all be 0
    exported = export_onnx(model, torch.rand(2, 3, 16, 16), tmp_path / "vit.onnx")
    assert exported.checked and max(exported.differences.values()) < 1e-5
    assert torch.backends.mha.get_fastpath_enabled()  # put back
    images = torch.randn(5, 3, 16, 16)
    np.testing.assert_allclose(
        onnx_outputs(exported.path, images), outputs(model, images), rtol=1e-5, atol=1e-5
    )
