import os
import pickle
from pathlib import Path

import pytest
import torch
from torch import nn

from prunetui.errors import UserError
from prunetui.sources import load_checkpoint
from prunetui.sources.demo import DemoNet
from prunetui.sources.vgg import VGG


class RunsCode:
    """Unpickling this would create `marker`: the proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def filled(model: nn.Module, value: float) -> nn.Module:
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.fill_(value)
    return model


def same_weights(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_lab_format_checkpoint_of_the_lab_vgg_loads_strictly(tmp_path):
    trained = VGG()
    with torch.no_grad():
        trained.classifier.weight.normal_()
        trained.backbone.bn3.running_mean.uniform_()
    path = tmp_path / "vgg.cifar.pretrained.pth"
    torch.save({"state_dict": trained.state_dict(), "epoch": 200}, path)
    fresh = VGG()
    load_checkpoint(fresh, str(path))
    assert same_weights(fresh, trained)


@pytest.mark.parametrize(
    "wrap",
    [
        lambda sd: sd,
        lambda sd: {"state_dict": sd},
        lambda sd: {
            "state_dict": sd,
            "prunetui": {"profile": "run1", "sparsity": {"classifier.weight": 0.5}},
        },
        lambda sd: {f"module.{k}": v for k, v in sd.items()},
    ],
    ids=["plain", "lab", "prunetui-export", "data-parallel"],
)
def test_accepted_formats(tmp_path, wrap):
    source = filled(DemoNet(), 0.25)
    path = tmp_path / "demo.pt"
    torch.save(wrap(source.state_dict()), path)
    target = DemoNet()
    load_checkpoint(target, str(path))
    assert same_weights(target, source)


def test_half_precision_weights_are_cast_to_the_model_dtype(tmp_path):
    source = filled(DemoNet(), 0.5)
    path = tmp_path / "half.pt"
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in source.state_dict().items()}, path)
    target = DemoNet()
    load_checkpoint(target, str(path))
    assert target.classifier.weight.dtype == torch.float32
    assert torch.equal(target.classifier.weight, torch.full_like(target.classifier.weight, 0.5))


def test_missing_num_batches_tracked_is_tolerated(tmp_path):
    state = {k: v for k, v in filled(DemoNet(), 0.5).state_dict().items() if "num_batches_tracked" not in k}
    path = tmp_path / "old.pt"
    torch.save(state, path)
    target = DemoNet()
    load_checkpoint(target, str(path))
    assert torch.equal(target.backbone.conv2.weight, torch.full_like(target.backbone.conv2.weight, 0.5))


def test_wrong_architecture_names_the_first_keys(tmp_path):
    path = tmp_path / "demo.pt"
    torch.save({"state_dict": DemoNet().state_dict()}, path)
    with pytest.raises(UserError) as caught:
        load_checkpoint(VGG(), str(path))
    message = str(caught.value)
    assert message.startswith("checkpoint does not fit the model: missing backbone.conv5.weight")
    assert "more" in message
    assert (
        "shape mismatch backbone.conv0.weight (16, 1, 3, 3) in checkpoint vs (64, 3, 3, 3) in model"
        in message
    )
    assert "\n" not in message


def test_class_count_mismatch_and_unexpected_key(tmp_path):
    state = VGG(num_classes=100).state_dict()
    state["extra.weight"] = torch.zeros(2, 2)
    path = tmp_path / "vgg100.pt"
    torch.save(state, path)
    model = VGG()
    before = model.classifier.weight.clone()
    with pytest.raises(UserError) as caught:
        load_checkpoint(model, str(path))
    assert str(caught.value) == (
        "checkpoint does not fit the model: unexpected extra.weight; "
        "shape mismatch classifier.weight (100, 512) in checkpoint vs (10, 512) in model, "
        "classifier.bias (100,) in checkpoint vs (10,) in model"
    )
    assert torch.equal(model.classifier.weight, before)


@pytest.mark.parametrize(
    "write", [lambda obj, path: torch.save(obj, path), lambda obj, path: path.write_bytes(pickle.dumps(obj))]
)
def test_a_pickle_that_runs_code_is_refused_and_never_run(tmp_path, write):
    marker = tmp_path / "marker"
    path = tmp_path / "evil.pt"
    write({"state_dict": RunsCode(marker)}, path)
    with pytest.raises(UserError, match=r"refused to load checkpoint .*would run code.*weights_only=True"):
        load_checkpoint(DemoNet(), str(path))
    assert not marker.exists()
    pickle.loads(
        pickle.dumps(RunsCode(marker))
    )  # a plain unpickle does run it: the check above means something
    assert marker.exists()


def test_a_whole_pickled_module_is_refused_with_a_hint(tmp_path):
    path = tmp_path / "model.pt"
    torch.save(DemoNet(), path)
    with pytest.raises(UserError, match=r"DemoNet\).*save model.state_dict\(\) instead"):
        load_checkpoint(DemoNet(), str(path))


def test_missing_file(tmp_path):
    path = tmp_path / "nope.pt"
    with pytest.raises(UserError, match=f"^checkpoint not found: {path}$"):
        load_checkpoint(DemoNet(), str(path))


def test_directory(tmp_path):
    with pytest.raises(UserError, match="is a directory"):
        load_checkpoint(DemoNet(), str(tmp_path))


def truncated(path: Path) -> None:
    torch.save(DemoNet().state_dict(), path)
    path.write_bytes(path.read_bytes()[:1000])


@pytest.mark.parametrize(
    "write",
    [truncated, lambda p: p.write_text("hello, not a checkpoint"), lambda p: p.write_bytes(b"")],
    ids=["truncated", "text", "empty"],
)
def test_unreadable_file(tmp_path, write):
    path = tmp_path / "bad.pt"
    write(path)
    with pytest.raises(UserError, match=f"^cannot read checkpoint {path}: .+") as caught:
        load_checkpoint(DemoNet(), str(path))
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ([torch.zeros(1)], "holds no weights"),
        ({}, "holds no weights"),
        ({"model": {"w": torch.zeros(1)}, "epoch": 3}, "does not fit the model: missing .* unexpected w$"),
        (
            {"epoch": 3, "optimizer": {"state": {}, "param_groups": []}},
            "holds no weights: .* state_dict, model",
        ),
        ({"model": {"step": torch.tensor(3)}}, "holds no weights"),
    ],
)
def test_content_that_is_not_a_state_dict(tmp_path, content, expected):
    path = tmp_path / "other.pt"
    torch.save(content, path)
    with pytest.raises(UserError, match=expected):
        load_checkpoint(DemoNet(), str(path))
