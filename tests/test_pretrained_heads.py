"""Pretrained heads (issue #22 kind 8): an ImageNet checkpoint (here: a freshly built 1000-class model's
state_dict, nothing downloaded) opened for 10 classes loads every weight but the classifier, which keeps
the model's seeded initialisation, and one note says so (sources/heads.py). Any other misfit stays an
error.

Members: torchvision resnet18 (fc), mobilenet_v3_small (classifier.3), squeezenet1_1 (a convolution,
classifier.1), googlenet (fc and the aux heads aux1.fc2, aux2.fc2); timm test_convnext (head.fc), test_vit
(head), deit_tiny_distilled (two heads, head and head_dist); a features-only checkpoint (no classifier);
a checkpoint nested under `state_dict` with DataParallel's `module.` prefix.
"""

import pytest
import torch
from conftest import run_json
from torch import nn

from prunetui.cli import main
from prunetui.errors import UserError
from prunetui.sources.heads import classifier_modules
from prunetui.sources.models import build_model, open_model

pytest.importorskip("timm", reason="the timm members need the timm extra")

MEMBERS = [
    ("torchvision:resnet18", ["fc"]),
    ("torchvision:mobilenet_v3_small", ["classifier.3"]),
    ("torchvision:squeezenet1_1", ["classifier.1"]),
    ("torchvision:googlenet", ["aux1.fc2", "aux2.fc2", "fc"]),
    ("timm:test_convnext", ["head.fc"]),
    ("timm:test_vit", ["head"]),
    ("timm:deit_tiny_distilled_patch16_224", ["head", "head_dist"]),
]


def imagenet_checkpoint(tmp_path, spec: str, wrap=lambda state: state) -> str:
    """The 1000-class model's state_dict, perturbed so that no weight equals a fresh build's."""
    state = {k: v + 0.5 if v.is_floating_point() else v for k, v in build_model(spec).state_dict().items()}
    path = tmp_path / "imagenet.pth"
    torch.save(wrap(state), path)
    return str(path)


def keys_under(state: dict, modules: list[str]) -> list[str]:
    return [k for k in state if any(k.startswith(f"{m}.") for m in modules)]


@pytest.mark.filterwarnings("ignore:The default weight initialization of GoogleNet")
@pytest.mark.parametrize(("spec", "heads"), MEMBERS, ids=[spec for spec, _ in MEMBERS])
def test_all_but_the_classifier_is_loaded(tmp_path, spec, heads):
    path = imagenet_checkpoint(tmp_path, spec)
    checkpoint = torch.load(path, weights_only=True)
    loaded = open_model(f"{spec}:10", path)
    fresh = build_model(f"{spec}:10").state_dict()
    state = loaded.model.state_dict()
    new = keys_under(state, heads)
    assert new and all(torch.equal(state[k], fresh[k]) for k in new)  # as a fresh 10-class build
    assert all(torch.equal(state[k], checkpoint[k]) for k in state if k not in new)
    assert loaded.notes == [
        f"checkpoint {path} is for 1000 classes, the model for 10: every other weight loaded, "
        f"{', '.join(heads)} re-initialised: finetune before trusting its accuracy"
    ]


def test_the_features_are_the_checkpoints(tmp_path):
    """Equal logits below the head: the 10-class model without its fc gives the 1000-class model's."""
    path = imagenet_checkpoint(tmp_path, "torchvision:resnet18")
    imagenet = build_model("torchvision:resnet18").eval()
    imagenet.load_state_dict(torch.load(path, weights_only=True))
    ten = open_model("torchvision:resnet18:10", path).model
    imagenet.fc = ten.fc = nn.Identity()
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(ten(x), imagenet(x))


def test_a_features_only_checkpoint_keeps_the_classifier_as_built(tmp_path):
    import timm

    path = tmp_path / "features.pth"
    torch.save(timm.create_model("test_convnext", num_classes=0).state_dict(), path)
    loaded = open_model("timm:test_convnext:10", str(path))
    assert loaded.notes == [
        f"checkpoint {path} holds no classifier (head.fc): every other weight loaded, head.fc "
        "re-initialised: finetune before trusting its accuracy"
    ]


def test_a_wrapped_checkpoint_too(tmp_path):
    wrap = lambda state: {"epoch": 3, "state_dict": {f"module.{k}": v for k, v in state.items()}}  # noqa: E731
    path = imagenet_checkpoint(tmp_path, "torchvision:resnet18", wrap)
    note = open_model("torchvision:resnet18:10", path).notes[-1]
    assert note.endswith("the model for 10: every other weight loaded, fc re-initialised: finetune before "
                         "trusting its accuracy")  # fmt: skip


def misfit_checkpoint(tmp_path, misfit: str) -> str:
    """A 1000-class resnet18 checkpoint with one more misfit than its classifier."""
    if misfit == "resnet34":
        state = build_model("torchvision:resnet34").state_dict()
    else:
        state = build_model("torchvision:resnet18").state_dict()
        if misfit == "stem":
            state["conv1.weight"] = torch.zeros(64, 3, 5, 5)
        if misfit == "extra":
            state["extra.weight"] = torch.zeros(3)
        if misfit == "no_bn":
            state = {k: v for k, v in state.items() if not k.startswith("bn1.")}
    torch.save(state, tmp_path / "misfit.pth")
    return str(tmp_path / "misfit.pth")


@pytest.mark.parametrize(
    ("misfit", "named"),
    [
        ("stem", "shape mismatch conv1.weight (64, 3, 5, 5) in checkpoint vs (64, 3, 7, 7) in model"),
        ("extra", "unexpected extra.weight"),
        ("no_bn", "missing bn1.weight, bn1.bias, bn1.running_mean"),
        ("resnet34", "unexpected layer1.2.conv1.weight"),
    ],
)
def test_any_other_misfit_stays_an_error(tmp_path, misfit, named):
    with pytest.raises(UserError) as error:
        open_model("torchvision:resnet18:10", misfit_checkpoint(tmp_path, misfit))
    assert str(error.value).startswith("checkpoint does not fit the model: ") and named in str(error.value)


def test_the_classifier_rule():
    import timm
    from torchvision import models

    assert classifier_modules(models.mnasnet0_5()) == ["classifier.1"]
    assert classifier_modules(models.shufflenet_v2_x0_5()) == ["fc"]
    assert classifier_modules(timm.create_model("test_efficientnet")) == ["classifier"]
    assert classifier_modules(nn.Sequential(nn.Conv2d(1, 2, 1), nn.ReLU())) == ["0"]
    assert classifier_modules(nn.ReLU()) == []


def test_cli_opens_an_imagenet_checkpoint_for_ten_classes(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = imagenet_checkpoint(tmp_path, "torchvision:resnet18")
    argv = ["info", "--model", "torchvision:resnet18:10", "--checkpoint", path, "--device", "cpu"]
    doc, err = run_json(capsys, *argv, "--data", "random:4:3x32x32")
    assert doc["layers"][-1]["name"] == "fc.weight" and doc["layers"][-1]["shape"] == [10, 512]
    assert f"note: checkpoint {path} is for 1000 classes, the model for 10: every other weight" in err


def test_the_warnings_advice_for_a_1000_class_model_now_works(capsys, tmp_path, monkeypatch):
    """The warning says torchvision:resnet18:10 builds a 10-class head; with the same checkpoint that
    spec now opens (it was a shape-mismatch error: the two messages sent the user in a circle)."""
    monkeypatch.chdir(tmp_path)
    path = imagenet_checkpoint(tmp_path, "torchvision:resnet18")
    argv = ["--checkpoint", path, "--data", "random:4:3x32x32", "--device", "cpu", "--json"]
    assert main(["info", "--model", "torchvision:resnet18", *argv]) == 0
    assert "torchvision:resnet18:10 builds a 10-class head" in capsys.readouterr().err
    assert main(["info", "--model", "torchvision:resnet18:10", *argv]) == 0


def test_a_zoo_spec_without_a_class_count_asks_for_the_checkpoints(tmp_path):
    """A 10-class checkpoint opened as torchvision:resnet18 (1000 classes by default) is most likely a
    forgotten :10, not a classifier to throw away: one line says both ways."""
    path = tmp_path / "ten.pth"
    torch.save(build_model("torchvision:resnet18:10").state_dict(), path)
    with pytest.raises(UserError) as error:
        open_model("torchvision:resnet18", str(path))
    assert str(error.value) == (
        f"checkpoint {path} is for 10 classes but torchvision:resnet18 builds 1000: open it as "
        "torchvision:resnet18:10 (or torchvision:resnet18:1000 to load all but its classifier)"
    )
    assert (
        open_model("torchvision:resnet18:1000", str(path))
        .notes[0]
        .startswith(
            f"checkpoint {path} is for 10 classes, the model for 1000: every other weight loaded, fc re-init"
        )
    )
