"""Already-sparse weights stay sparse: zeros present at load are part of the starting state."""

from pathlib import Path

import pytest
import torch
from conftest import finetune_recipe, run_json
from torch.nn.utils import prune as torch_prune

from prunetui.sources.demo import DemoNet, demo_weights_path

PROFILES = Path(__file__).parents[1] / "profiles"
LISTED = "backbone.conv4.weight"  # the one layer the second round's profile lists


@pytest.fixture(autouse=True)
def in_tmp_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def own_export(capsys, tmp_path) -> Path:
    """prunetui's own export of a pruned and finetuned demo (the blog's iterative loop)."""
    out = tmp_path / "round1.pt"
    run_json(
        capsys, "prune", "--profile", str(PROFILES / "demo-gentle.toml"), "--finetune", "1", "--out", str(out)
    )
    return out


def torch_prune_file(capsys, tmp_path) -> Path:
    """torch.nn.utils.prune before prune.remove: weight_orig and weight_mask in the state_dict."""
    model = DemoNet()
    model.load_state_dict(torch.load(demo_weights_path(), weights_only=True))
    torch_prune.l1_unstructured(model.backbone.conv1, "weight", amount=0.6)
    torch_prune.l1_unstructured(model.classifier, "weight", amount=0.5)
    path = tmp_path / "torch_pruned.pt"
    torch.save(model.state_dict(), path)
    return path


def hand_zeroed_file(capsys, tmp_path) -> Path:
    """A plain state_dict whose weights someone zeroed by hand (every other input channel of conv2)."""
    state = torch.load(demo_weights_path(), weights_only=True)
    state["backbone.conv2.weight"][:, ::2] = 0
    path = tmp_path / "hand.pt"
    torch.save(state, path)
    return path


def zeros(path: Path) -> dict[str, float]:
    state = torch.load(path, weights_only=True)
    state = state.get("state_dict", state)
    return {
        k: float((v == 0).float().mean()) for k, v in state.items() if k.endswith("weight") and v.dim() > 1
    }


@pytest.mark.parametrize("make", [own_export, torch_prune_file, hand_zeroed_file])
def test_zeros_at_load_survive_a_new_prune_and_finetune(capsys, tmp_path, make):
    start = make(capsys, tmp_path)
    profile = tmp_path / "round2.toml"
    profile.write_text(f'name = "round2"\n[sparsity]\n"{LISTED}" = 0.8\n')
    out = tmp_path / "round2.pt"
    doc, err = run_json(capsys, "--checkpoint", str(start), "prune", "--profile", str(profile),
                        "--finetune", "1", "--out", str(out))  # fmt: skip
    before, after = zeros(start), zeros(out)  # a torch.nn.utils.prune file lists its pruned ones as _orig
    layers = {layer["name"]: layer for layer in doc["layers"]}
    for name, layer in layers.items():
        assert layer["sparsity"] >= layer["start_sparsity"] - 1e-9, name  # no zero grew back
        assert after[name] == pytest.approx(layer["sparsity"])
    assert layers[LISTED]["sparsity"] == pytest.approx(max(0.8, layers[LISTED]["start_sparsity"]), abs=1e-3)
    assert any(layer["start_sparsity"] > 0.3 for name, layer in layers.items() if name != LISTED)
    assert "already sparse at load" in err
    assert all(after[name] >= before[name] - 1e-9 for name in before)


def test_regrow_lets_the_zeros_grow_back(capsys, tmp_path):
    start = hand_zeroed_file(capsys, tmp_path)
    profile = tmp_path / "p.toml"
    profile.write_text(f'name = "p"\n[sparsity]\n"{LISTED}" = 0.5\n')
    doc, _ = run_json(capsys, "--checkpoint", str(start), "prune", "--profile", str(profile),
                      "--finetune", "1", "--regrow")  # fmt: skip
    conv2 = next(layer for layer in doc["layers"] if layer["name"] == "backbone.conv2.weight")
    assert conv2["start_sparsity"] == pytest.approx(0.5, abs=0.01)
    assert conv2["sparsity"] < 0.01  # trained back


def test_a_target_below_the_zeros_at_load_keeps_them_and_says_so(capsys, tmp_path):
    start = hand_zeroed_file(capsys, tmp_path)
    profile = tmp_path / "p.toml"
    profile.write_text('name = "p"\n[sparsity]\n"backbone.conv2.weight" = 0.3\n')
    doc, err = run_json(capsys, "--checkpoint", str(start), "prune", "--profile", str(profile))
    conv2 = next(layer for layer in doc["layers"] if layer["name"] == "backbone.conv2.weight")
    assert conv2["sparsity"] == pytest.approx(conv2["start_sparsity"])
    assert "Targets below the zeros at load (backbone.conv2.weight 0.30 < 0.50)" in err


def test_a_session_holds_the_zeros_without_any_prune(model, splits):
    from prunetui.core.session import Session

    with torch.no_grad():
        model[3].weight[:4] = 0
    session = Session(model, splits, "tiny")
    assert session.state.start_sparsity()["3.weight"] == pytest.approx(0.25)
    session.finetune(finetune_recipe(epochs=1))
    assert float((model[3].weight[:4] == 0).float().mean()) == 1.0
    session.reset()
    assert session.state.masks.keys() == {"3.weight"}
