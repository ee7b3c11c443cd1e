"""Models opened without weights (issue 13, kind 8): the same seeded weights at every launch, flagged as
random; timm models open like torchvision ones and timm's own checkpoint files load."""

import argparse
import subprocess
import sys

import pytest
import torch
from torch import nn

from prunetui.cli import main
from prunetui.errors import UserError
from prunetui.sources import open_model
from prunetui.sources.models import RANDOM_WEIGHTS_NOTE

FINGERPRINT = (
    "import torch; from prunetui.sources import open_model; m = open_model({spec!r}).model; "
    "print(repr(sum(float(p.double().abs().sum()) for p in m.state_dict().values())))"
)


def same_weights(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("spec", ["vgg-cifar", "torchvision:resnet18:10", "torchvision:mobilenet_v2:10"])
def test_models_without_a_checkpoint_are_the_same_at_every_open_and_flagged(spec):
    first, second = open_model(spec), open_model(spec)
    assert same_weights(first.model, second.model)
    assert first.random_weights and RANDOM_WEIGHTS_NOTE in first.notes
    assert "random weights (no --checkpoint)" in RANDOM_WEIGHTS_NOTE


def test_the_same_weights_in_another_process():
    code = FINGERPRINT.format(spec="vgg-cifar")
    runs = [
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
        for _ in range(2)
    ]
    assert runs[0].returncode == 0, runs[0].stderr
    assert runs[0].stdout == runs[1].stdout


def test_building_leaves_the_callers_random_state_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    open_model("vgg-cifar")
    assert torch.equal(torch.rand(3), expected)


def test_weights_that_came_from_somewhere_are_not_flagged(tmp_path):
    assert not open_model("demo").random_weights  # the shipped weights
    path = tmp_path / "vgg.pt"
    torch.save(open_model("vgg-cifar").model.state_dict(), path)
    assert not open_model("vgg-cifar", str(path)).random_weights
    factory = tmp_path / "mine.py"
    factory.write_text("from torch import nn\n\ndef build():\n    return nn.Sequential(nn.Conv2d(1, 2, 3))\n")
    assert not open_model(f"{factory}:build").random_weights  # a factory may load weights itself


def test_the_cli_says_the_weights_are_random(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["info", "--model", "vgg-cifar", "--json"]) == 0
    assert f"note: {RANDOM_WEIGHTS_NOTE}" in capsys.readouterr().err


@pytest.fixture
def timm():
    return pytest.importorskip("timm", reason="timm is an optional extra: pip install 'prunetui[timm]'")


@pytest.mark.parametrize(("spec", "classes"), [("timm:resnet10t:10", 10), ("timm:test_efficientnet", 1000)])
def test_timm_models_open_like_torchvision_ones(timm, spec, classes):
    opened = open_model(spec)
    assert opened.random_weights and opened.label == spec
    assert opened.model(torch.zeros(2, 3, 32, 32)).shape == (2, classes)
    assert same_weights(opened.model, open_model(spec).model)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("timm:resnet19", r"unknown timm model 'resnet19'; did you mean .*resnet18"),
        ("timm:zzzz_qqqq", r"unknown timm model 'zzzz_qqqq'; see timm.list_models\(\)"),
        ("timm:resnet18:ten", "CLASSES must be a positive integer"),
        ("timm:", "expected timm:NAME or timm:NAME:CLASSES"),
    ],
)
def test_bad_timm_specs(timm, spec, expected):
    with pytest.raises(UserError, match=expected):
        open_model(spec)


def test_without_timm_installed_the_error_says_how_to_get_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "timm", None)  # what `import timm` meets when it is not installed
    with pytest.raises(UserError, match=r"needs the timm package: pip install 'prunetui\[timm\]'"):
        open_model("timm:resnet18")


def test_a_checkpoint_written_by_timms_checkpoint_saver_loads(timm, tmp_path):
    from timm.utils import CheckpointSaver, ModelEmaV3

    trained = timm.create_model("test_efficientnet", pretrained=False, num_classes=10)
    optimizer = torch.optim.SGD(trained.parameters(), lr=0.1, momentum=0.9)
    ema = ModelEmaV3(trained, decay=0.0)  # decay 0: after one update the EMA equals the model
    with torch.no_grad():
        for parameter in trained.parameters():
            parameter.add_(0.5)
    ema.update(trained)
    args = argparse.Namespace(model="test_efficientnet", lr=0.1, epochs=3)
    saver = CheckpointSaver(trained, optimizer, args=args, model_ema=ema, checkpoint_dir=str(tmp_path))
    saver.recovery_dir = str(tmp_path)
    saver.save_checkpoint(epoch=0, metric=71.5)
    path = str(tmp_path / "model_best.pth.tar")
    opened = open_model("timm:test_efficientnet:10", path)
    assert not opened.random_weights
    assert opened.checkpoint.chosen_key == "state_dict_ema"
    assert same_weights(opened.model, trained)
    assert "state_dict_ema" in opened.notes[0] and "--checkpoint-key" in opened.notes[0]
    by_key = open_model("timm:test_efficientnet:10", path, "state_dict")
    assert by_key.checkpoint.chosen_key == "state_dict" and same_weights(by_key.model, trained)
