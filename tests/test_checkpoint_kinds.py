"""Checkpoints as training scripts write them (issue 13, kind 1): every member loads the right weights,
or is refused with one line naming the file or tensor."""

import argparse
import os
import struct
from dataclasses import dataclass

import pytest
import torch
from safetensors.torch import save_file
from torch import nn
from torch.nn.utils import prune

from prunetui.cli import main
from prunetui.errors import UserError
from prunetui.sources import load_checkpoint, open_model, read_checkpoint
from prunetui.sources.demo import DemoNet, demo_weights_path


@dataclass
class TrainConfig:
    """A training script's own config class: not a plain data holder torch knows, so refused."""

    lr: float


def trained() -> DemoNet:
    model = DemoNet()
    model.load_state_dict(torch.load(demo_weights_path(), weights_only=True))
    return model


def same_weights(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def noisy(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v + 1.0 if v.is_floating_point() else v for k, v in state.items()}


def training_extras(model: nn.Module) -> dict:
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.zeros(2, 1, 8, 8)).sum().backward()
    optimizer.step()  # momentum buffers: tensors in the optimizer state, not weights
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 30)
    return {
        "optimizer": optimizer.state_dict(),
        "lr_scheduler": scheduler.state_dict(),
        "epoch": 89,
        "best_acc1": torch.tensor(99.1),
        "metrics": {"top1": 99.1, "loss": 0.03},
        "args": argparse.Namespace(model="demo", lr=0.1, epochs=90, data_path="/data/digits"),
    }


@pytest.mark.parametrize("key", ["model", "state_dict", "model_state_dict", "net", "network", "weights"])
def test_weights_nested_under_a_usual_key_beside_training_state(tmp_path, key):
    source = trained()
    path = tmp_path / "checkpoint.pth"
    torch.save({key: source.state_dict(), **training_extras(DemoNet())}, path)
    target = DemoNet()
    loaded = load_checkpoint(target, str(path))
    assert same_weights(target, source)
    assert loaded.chosen_key == key
    assert loaded.note == ""  # one weight set: nothing to choose


def test_a_namespace_is_the_only_class_let_through(tmp_path):
    path = tmp_path / "counter.pth"
    torch.save({"model": trained().state_dict(), "config": TrainConfig(0.1)}, path)
    with pytest.raises(UserError, match=r"refused to load checkpoint .*would run code \(.*TrainConfig\)"):
        load_checkpoint(DemoNet(), str(path))


def pruned_wrapped(state: dict) -> dict:
    return {f"module._orig_mod.{k}": v for k, v in state.items()}


@pytest.mark.parametrize(
    "wrap",
    [
        lambda m: nn.DataParallel(m),
        lambda m: torch.compile(m),
        lambda m: nn.DataParallel(torch.compile(m)),
        lambda m: torch.compile(nn.DataParallel(m)),
        lambda m: torch.optim.swa_utils.AveragedModel(m),  # torchvision reference's EMA: n_averaged too
    ],
    ids=["dataparallel", "compile", "dp-of-compiled", "compiled-dp", "averaged-model"],
)
def test_wrapper_prefixes_in_any_combination(tmp_path, wrap):
    source = trained()
    state = wrap(source).state_dict()
    assert any(k.startswith(("module.", "_orig_mod.")) for k in state)
    path = tmp_path / "wrapped.pt"
    torch.save({"state_dict": state, "epoch": 3}, path)
    target = DemoNet()
    load_checkpoint(target, str(path))
    assert same_weights(target, source)


def test_a_compiled_submodule_inside_the_model(tmp_path):
    source = trained()
    source.backbone = torch.compile(source.backbone)
    path = tmp_path / "sub.pt"
    torch.save(source.state_dict(), path)  # backbone._orig_mod.conv0.weight ...
    target = DemoNet()
    load_checkpoint(target, str(path))
    assert torch.equal(target.backbone.conv0.weight, source.backbone._orig_mod.conv0.weight)


def prune_half(model: nn.Module) -> list[str]:
    names = []
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d | nn.Linear):
            prune.l1_unstructured(module, "weight", amount=0.5)
            names.append(f"{name}.weight")
    return names


@pytest.mark.parametrize("wrap", [lambda sd: sd, lambda sd: {"model": sd, "epoch": 1}, pruned_wrapped])
def test_torch_prune_files_fold_to_the_product_and_keep_the_masks(tmp_path, wrap):
    model = trained()
    names = prune_half(model)
    path = tmp_path / "torch_pruned.pt"
    torch.save(wrap(model.state_dict()), path)
    expected_masks = {name: model.get_submodule(name.rsplit(".", 1)[0]).weight_mask.bool() for name in names}
    for name in names:
        prune.remove(model.get_submodule(name.rsplit(".", 1)[0]), "weight")
    target = DemoNet()
    loaded = load_checkpoint(target, str(path))
    assert same_weights(target, model)
    assert loaded.masks.keys() == expected_masks.keys()
    assert all(torch.equal(loaded.masks[n], expected_masks[n]) for n in names)
    assert all(loaded.masks[n].dtype == torch.bool for n in names)
    assert "torch.nn.utils.prune" in loaded.note


def test_safetensors_by_suffix_and_by_content(tmp_path):
    source = trained()
    for name in ("model.safetensors", "model.bin"):
        path = tmp_path / name
        save_file(source.state_dict(), str(path))
        target = DemoNet()
        assert load_checkpoint(target, str(path)).chosen_key is None
        assert same_weights(target, source)


def test_safetensors_of_a_data_parallel_model(tmp_path):
    source = trained()
    path = tmp_path / "dp.safetensors"
    save_file(nn.DataParallel(source).state_dict(), str(path))
    target = DemoNet()
    load_checkpoint(target, str(path))
    assert same_weights(target, source)


def test_damaged_safetensors_is_one_line(tmp_path):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(struct.pack("<Q", 40) + b'{"w": {"dtype": "F32", "shape": [9]')
    with pytest.raises(
        UserError, match=rf"^cannot read checkpoint {path}: not a valid .safetensors file"
    ) as e:
        load_checkpoint(DemoNet(), str(path))
    assert "\n" not in str(e.value)


@pytest.mark.parametrize(
    ("keys", "default"),
    [
        (("state_dict", "state_dict_ema"), "state_dict_ema"),
        (("model", "model_ema"), "model_ema"),
        (("model", "ema"), "ema"),
        (("net", "weights"), "net"),
    ],
)
def test_several_weight_sets_default_said_and_choosable(tmp_path, keys, default):
    good, other = trained(), DemoNet()
    content = {key: (good if key == default else other).state_dict() for key in keys}
    path = tmp_path / "two.pt"
    torch.save({**content, "epoch": 5}, path)
    target = DemoNet()
    loaded = load_checkpoint(target, str(path))
    assert same_weights(target, good)
    assert loaded.chosen_key == default
    assert f"using the weights under '{default}'" in loaded.note and "--checkpoint-key" in loaded.note
    (chosen,) = [k for k in keys if k != default]
    target = DemoNet()
    assert load_checkpoint(target, str(path), key=chosen).chosen_key == chosen
    assert same_weights(target, other)


def test_an_unknown_key_lists_the_real_ones(tmp_path):
    path = tmp_path / "two.pt"
    torch.save({"state_dict": DemoNet().state_dict(), "state_dict_ema": DemoNet().state_dict()}, path)
    with pytest.raises(
        UserError, match=r"no weights under 'ema': use --checkpoint-key state_dict_ema or state_dict"
    ):
        read_checkpoint(str(path), key="ema")


def test_a_key_for_a_bare_state_dict(tmp_path):
    path = tmp_path / "plain.pt"
    torch.save(DemoNet().state_dict(), path)
    with pytest.raises(UserError, match="bare state_dict .* leave out --checkpoint-key"):
        read_checkpoint(str(path), key="model")


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_nan_or_inf_weights_are_refused_naming_the_tensors(tmp_path, bad):
    state = trained().state_dict()
    state["backbone.conv1.weight"][0, 0, 0, 0] = bad
    state["classifier.bias"][3] = bad
    path = tmp_path / "diverged.pt"
    torch.save({"model": state}, path)
    model = DemoNet()
    before = model.classifier.weight.clone()
    with pytest.raises(UserError, match=r"NaN or inf values in backbone.conv1.weight, classifier.bias"):
        load_checkpoint(model, str(path))
    assert torch.equal(model.classifier.weight, before)


def test_a_timm_shaped_checkpoint_through_the_cli(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    good = trained().state_dict()
    content = {"epoch": 89, "arch": "demo", "state_dict": noisy(good), "version": 2, "metric": 99.3}
    content |= {"args": argparse.Namespace(model="demo"), "state_dict_ema": good}
    torch.save(content, "timm_ckpt.pth.tar")
    assert main(["info", "--checkpoint", "timm_ckpt.pth.tar", "--json"]) == 0
    err = capsys.readouterr().err
    assert "note: checkpoint timm_ckpt.pth.tar: using the weights under 'state_dict_ema'" in err
    assert main(["info", "--checkpoint", "timm_ckpt.pth.tar", "--checkpoint-key", "ema", "--json"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: checkpoint timm_ckpt.pth.tar has no weights under 'ema'")
    assert err.count("\n") == 1


def test_open_model_with_a_key_and_no_checkpoint():
    with pytest.raises(UserError, match="--checkpoint-key goes with --checkpoint"):
        open_model("demo", None, "state_dict")


def test_nothing_in_the_file_is_run_or_written(tmp_path):
    path = tmp_path / "ckpt.pt"
    torch.save({"model": trained().state_dict(), **training_extras(DemoNet())}, path)
    before = sorted(os.listdir(tmp_path))
    read_checkpoint(str(path))
    assert sorted(os.listdir(tmp_path)) == before
