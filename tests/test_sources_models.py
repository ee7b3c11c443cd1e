import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

from prunetui.errors import UserError
from prunetui.sources import MODEL_HELP, load_data, load_model
from prunetui.sources.demo import DemoNet, demo_weights_path

VGG_PARAMETERS = [
    *(
        f"backbone.{kind}{i}.{what}"
        for i in range(8)
        for kind, what in [("conv", "weight"), ("bn", "weight"), ("bn", "bias")]
    ),
    "classifier.weight",
    "classifier.bias",
]


def block(i: int) -> list[str]:
    return [f"conv{i}", f"bn{i}", f"relu{i}"]


VGG_BACKBONE = [*block(0), *block(1), "pool0", *block(2), *block(3), "pool1"]
VGG_BACKBONE += [*block(4), *block(5), "pool2", *block(6), *block(7), "pool3"]


@pytest.fixture
def no_downloads(monkeypatch):
    """Any attempt by torchvision to fetch weights fails the test."""
    import torchvision.models._api as api

    def refuse(*args, **kwargs):
        raise AssertionError("tried to download weights")

    monkeypatch.setattr(api, "load_state_dict_from_url", refuse)


def accuracy(model: nn.Module, loader) -> float:
    correct = total = 0
    with torch.inference_mode():
        for images, labels in loader:
            correct += int((model(images).argmax(1) == labels).sum())
            total += len(labels)
    return 100.0 * correct / total


def test_demo_loads_its_shipped_weights_and_is_accurate():
    model, label = load_model()
    assert label == "demo"
    assert not model.training
    assert accuracy(model, load_data("digits").eval) >= 97.0


def test_demo_architecture_has_prunable_layers_of_very_different_sizes():
    sizes = {name: p.numel() for name, p in DemoNet().named_parameters() if p.dim() > 1}
    assert len(sizes) >= 6
    assert max(sizes.values()) >= 10 * min(sizes.values())
    assert list(sizes)[0] == "backbone.conv0.weight" and list(sizes)[-1] == "classifier.weight"
    assert DemoNet()(torch.zeros(2, 1, 8, 8)).shape == (2, 10)


def test_demo_weights_are_small_plain_float32_tensors():
    assert demo_weights_path().stat().st_size < 1_000_000
    state = torch.load(demo_weights_path(), weights_only=True)
    assert state.keys() == DemoNet().state_dict().keys()
    assert all(t.dtype == torch.float32 for k, t in state.items() if "num_batches_tracked" not in k)


def test_demo_with_a_checkpoint_uses_that_checkpoint(tmp_path):
    state = DemoNet().state_dict()
    state["classifier.bias"] = torch.arange(10.0)
    path = tmp_path / "demo.pt"
    torch.save(state, path)
    model, _ = load_model("demo", str(path))
    assert torch.equal(model.classifier.bias, torch.arange(10.0))


def test_vgg_cifar_is_the_lab_vgg():
    model, label = load_model("vgg-cifar")
    assert label == "vgg-cifar"
    assert [name for name, _ in model.named_parameters()] == VGG_PARAMETERS
    assert list(model.backbone._modules) == VGG_BACKBONE
    assert sum(p.numel() for p in model.parameters()) == 9_228_362
    assert all(model.backbone.get_submodule(f"conv{i}").bias is None for i in range(8))
    assert model(torch.zeros(1, 3, 32, 32)).shape == (1, 10)


def test_torchvision_model_builds_offline_with_a_class_count(no_downloads):
    model, label = load_model("torchvision:resnet18:10")
    assert label == "torchvision:resnet18:10"
    assert model.fc.out_features == 10
    assert not model.training


def test_torchvision_default_class_count(no_downloads):
    model, _ = load_model("torchvision:squeezenet1_1")
    assert model(torch.zeros(1, 3, 64, 64)).shape == (1, 1000)


def test_torchvision_detection_model_does_not_download_a_backbone(no_downloads):
    model, _ = load_model("torchvision:fasterrcnn_mobilenet_v3_large_320_fpn:3")
    assert model.roi_heads.box_predictor.cls_score.out_features == 3


def test_unknown_torchvision_name_suggests_close_names():
    with pytest.raises(UserError, match=r"unknown torchvision model 'resnet81'; did you mean resnet18"):
        load_model("torchvision:resnet81")


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("torchvision:", "expected torchvision:NAME or torchvision:NAME:CLASSES"),
        ("torchvision:resnet18:1:2", "expected torchvision:NAME or torchvision:NAME:CLASSES"),
        ("torchvision:resnet18:ten", "CLASSES must be a positive integer, got 'ten'"),
        ("torchvision:resnet18:0", "CLASSES must be a positive integer, got '0'"),
        ("torchvision:raft_small:5", "cannot build torchvision model 'raft_small'"),
        ("torchvision:zzzzzz", "see torchvision.models.list_models"),
    ],
)
def test_bad_torchvision_specs(spec, expected):
    with pytest.raises(UserError, match=expected):
        load_model(spec)


@pytest.mark.parametrize("spec", ["", "nonsense", "vgg", "vgg-cifar:3", "a b:make", "module:1factory"])
def test_unknown_spec(spec):
    with pytest.raises(UserError, match=r"^unknown model spec .*expected demo, vgg-cifar, torchvision:NAME"):
        load_model(spec)


FACTORIES = """
from torch import nn

def make():
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())

def not_a_model():
    return 42

def broken():
    raise ValueError("no GPU here")

constant = 3
"""


@pytest.fixture
def user_package(tmp_path, monkeypatch):
    package = tmp_path / "user_models_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "nets.py").write_text(FACTORIES)
    (package / "crashes.py").write_text("import does_not_exist_anywhere\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return package


def test_module_factory(user_package):
    model, label = load_model("user_models_pkg.nets:make")
    assert label == "user_models_pkg.nets:make"
    assert isinstance(model[0], nn.Conv2d)
    assert not model.training


def test_file_factory(tmp_path):
    path = tmp_path / "my model.py"
    path.write_text(FACTORIES)
    model, label = load_model(f"{path}:make")
    assert label == f"{path}:make"
    assert isinstance(model[0], nn.Conv2d)


def test_file_factory_with_checkpoint(tmp_path):
    path = tmp_path / "tiny.py"
    path.write_text("from torch import nn\n\ndef make():\n    return nn.Linear(3, 2)\n")
    torch.save({"weight": torch.ones(2, 3), "bias": torch.zeros(2)}, tmp_path / "tiny.pt")
    model, _ = load_model(f"{path}:make", str(tmp_path / "tiny.pt"))
    assert torch.equal(model.weight, torch.ones(2, 3))


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("user_models_pkg.nets:not_a_model", r"not_a_model\(\) returned int, not an nn.Module"),
        ("user_models_pkg.nets:broken", r"broken\(\) failed: ValueError: no GPU here"),
        ("user_models_pkg.nets:missing", "no attribute 'missing'"),
        ("user_models_pkg.nets:constant", "'constant' is not callable"),
        ("user_models_pkg.absent:make", "cannot import module 'user_models_pkg.absent'"),
        ("user_models_pkg.crashes:make", "importing 'user_models_pkg.crashes' failed: No module named"),
    ],
)
def test_bad_module_factories(user_package, spec, expected):
    with pytest.raises(UserError, match=expected):
        load_model(spec)


def test_bad_file_factories(tmp_path):
    (tmp_path / "syntax.py").write_text("def make(:\n")
    (tmp_path / "nets.py").write_text(FACTORIES)
    with pytest.raises(UserError, match="model file not found"):
        load_model(f"{tmp_path}/absent.py:make")
    with pytest.raises(UserError, match="loading .*syntax.py failed: SyntaxError"):
        load_model(f"{tmp_path}/syntax.py:make")
    with pytest.raises(UserError, match=r"not_a_model\(\) returned int"):
        load_model(f"{tmp_path}/nets.py:not_a_model")


def test_help_lists_every_spec_form():
    for form in ["demo", "vgg-cifar", "torchvision:NAME", "module.path:factory", "file.py:factory"]:
        assert form in MODEL_HELP


def test_importing_sources_does_not_import_torchvision_or_sklearn():
    code = textwrap.dedent(
        """
        import sys
        import prunetui.sources
        print(sorted(m for m in ("torchvision", "sklearn") if m in sys.modules))
        """
    )
    repo = Path(__file__).resolve().parents[1]
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_the_torch_free_spec_check_knows_every_builtin_model():
    """prunetui.model_specs names the built-in models without importing them: the same set."""
    from prunetui.model_specs import BUILTIN_MODELS
    from prunetui.sources.lenet import LENETS

    assert set(BUILTIN_MODELS) == {"demo", "vgg-cifar", *LENETS}
