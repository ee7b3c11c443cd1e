"""Criteria that get no signal (issue #22 kind 4): the taylor method (|w * dL/dw|) on models whose layers
get no gradient, and on a train split of one image.

- frozen layers (requires_grad False: a frozen backbone, only the head trainable, a Parameter made
  frozen): scored exactly as the same model unfrozen, since the scorer's private copy turns gradients on;
- layers no gradient reaches (a backbone under torch.no_grad(), .detach(), set_grad_enabled(False), a
  layer the forward never uses): one UserError line naming them, before any weight is pruned, instead of
  all-zero scores that prune every weight at any target;
- one training image: kept (not dropped as a remainder of one), scored on, trained on; a model that cannot
  train on a batch of one (BatchNorm1d) is refused at open in one line.
"""

import pytest
import torch
from conftest import run_json
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from prunetui.cli import main
from prunetui.core.methods.base import Scoring
from prunetui.core.methods.taylor import Taylor
from prunetui.core.runs import RunStore
from prunetui.core.session import Origin, Session
from prunetui.errors import UserError
from prunetui.sources.data import load_data

BACKBONE = ["backbone.0.weight", "backbone.2.weight"]
NAMES = [*BACKBONE, "head.weight"]


class Net(nn.Module):
    """A two-conv backbone and a linear head on 1 x 8 x 8 images; `cut` says how the backbone is run."""

    def __init__(self, cut: str = "none"):
        super().__init__()
        torch.manual_seed(0)
        self.backbone = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 8, 3, padding=1))
        self.head = nn.Linear(8, 4)
        self.cut = cut

    def forward(self, x):
        if self.cut == "no_grad":
            with torch.no_grad():
                features = self.backbone(x)
        elif self.cut == "set_grad_enabled":
            with torch.set_grad_enabled(False):
                features = self.backbone(x)
        else:
            features = self.backbone(x)
        if self.cut == "detach":
            features = features.detach()
        return self.head(features.mean((2, 3)))


class Unused(Net):
    """An auxiliary conv the forward never runs (as GoogLeNet's aux heads in eval mode)."""

    def __init__(self):
        super().__init__()
        self.aux = nn.Conv2d(8, 8, 1)


def batches(n: int = 32, batch_size: int = 8) -> DataLoader:
    g = torch.Generator().manual_seed(1)
    images, labels = torch.rand(n, 1, 8, 8, generator=g), torch.arange(n) % 4
    return DataLoader(TensorDataset(images, labels), batch_size=batch_size, shuffle=True)


def scores(model: nn.Module, names=NAMES, data=None) -> dict[str, torch.Tensor]:
    return Taylor().scores(Scoring(model, model.state_dict(), names, batches() if data is None else data))


def _frozen(freeze) -> nn.Module:
    model = Net()
    freeze(model)
    return model


FROZEN = {
    "backbone": lambda m: m.backbone.requires_grad_(False),
    "all but the head": lambda m: (m.requires_grad_(False), m.head.requires_grad_(True)),
    "one Parameter": lambda m: m.backbone[0].weight.requires_grad_(False),
}


@pytest.mark.parametrize("freeze", FROZEN.values(), ids=FROZEN.keys())
def test_frozen_layers_are_scored_as_if_they_trained(freeze):
    free, frozen = scores(Net()), scores(_frozen(freeze))
    assert all(torch.equal(free[name], frozen[name]) for name in NAMES)
    assert all(float(frozen[name].sum()) > 0 for name in NAMES)


@pytest.mark.parametrize("cut", ["no_grad", "detach", "set_grad_enabled"])
def test_a_backbone_no_gradient_reaches_is_named(cut):
    with pytest.raises(UserError) as error:
        scores(Net(cut))
    message = str(error.value)
    assert message.startswith(f"taylor: no gradient reaches {', '.join(BACKBONE)} (a forward under")
    assert "head.weight" not in message and message.endswith("use --method magnitude")
    assert len(message.splitlines()) == 1


def test_a_layer_the_forward_never_uses_is_named():
    with pytest.raises(UserError, match=r"^taylor: no gradient reaches aux\.weight \("):
        scores(Unused(), [*NAMES, "aux.weight"])


def test_the_head_of_a_detached_backbone_is_still_scored():
    assert float(scores(Net("detach"), ["head.weight"])["head.weight"].sum()) > 0


def test_no_batch_at_all_is_refused():
    with pytest.raises(UserError, match="^taylor: the training split gave no batch to score with"):
        scores(Net(), data=[])


def test_one_training_image_is_kept_and_scored(tmp_path):
    image, label = torch.rand(1, 1, 8, 8), torch.tensor([2])
    torch.save({"images": image, "labels": label}, tmp_path / "one.pt")
    data = load_data(f"tensor:{tmp_path / 'one.pt'}")
    assert [len(y) for _, y in data.train] == [1]
    assert data.notes == [f"data spec 'tensor:{tmp_path / 'one.pt'}': the train split holds 1 image: taylor "
                          "scores and finetuning read that one"]  # fmt: skip
    model = Net()
    expected = scores(model, data=[(image, label)])
    assert all(torch.equal(scores(model, data=data.train)[n], expected[n]) for n in NAMES)
    session = Session(model, data, "net", Origin(data_spec="one"), RunStore(tmp_path))
    session.set_method("taylor")
    session.set_target("backbone.2.weight", 0.5)
    session.prune()
    assert float((session.model.backbone[2].weight == 0).float().mean()) == 0.5


@pytest.fixture
def h32(tmp_path, monkeypatch):
    """The h32 case's factories (shipped demo weights, backbone without gradient) and its profile."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "frozen2.py").write_text(
        "import torch\nfrom torch import nn\nfrom prunetui.sources.demo import DemoNet, demo_weights_path\n"
        "def _demo():\n    m = DemoNet()\n"
        "    m.load_state_dict(torch.load(demo_weights_path(), weights_only=True))\n    return m\n"
        "def frozen_backbone():\n    m = _demo()\n    m.backbone.requires_grad_(False)\n    return m\n"
        "class Detached(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
        "        d = _demo()\n        self.backbone, self.classifier = d.backbone, d.classifier\n"
        "    def forward(self, x):\n        with torch.no_grad():\n            f = self.backbone(x)\n"
        "        return self.classifier(f.mean((2, 3)) if f.dim() == 4 else f)\n"
        "def detached_backbone():\n    return Detached()\n"
    )
    (tmp_path / "t.toml").write_text('method = "taylor"\n[sparsity]\n"backbone.conv3.weight" = 0.5\n')
    return ["--data", "digits", "--device", "cpu"]


def test_cli_prunes_a_frozen_backbone_to_its_target(capsys, h32):
    doc, _ = run_json(capsys, "prune", "--model", "frozen2.py:frozen_backbone", *h32, "--profile", "t.toml")
    conv3 = next(layer for layer in doc["layers"] if layer["name"] == "backbone.conv3.weight")
    assert conv3["sparsity"] == 0.5 and doc["accuracy_before"] > 90


@pytest.mark.parametrize(
    "command", [["prune", "--profile", "t.toml"], ["scan", "--method", "taylor", "--sparsities", "0.5"]]
)
def test_cli_refuses_a_detached_backbone_in_one_line(capsys, h32, command):
    argv = [command[0], "--model", "frozen2.py:detached_backbone", *h32, *command[1:], "--json"]
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines()[-1].startswith("error: taylor: no gradient reaches backbone.conv0.weight, ")
    assert "Traceback" not in err and "Sparse model" not in err


def test_a_model_that_cannot_train_on_one_image_is_refused_at_open(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    torch.save({"images": torch.rand(1, 1, 8, 8), "labels": torch.tensor([3])}, "one.pt")
    (tmp_path / "bn1.py").write_text(
        "from torch import nn\ndef bn1():\n"
        "    return nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.BatchNorm1d(16), nn.Linear(16, 10))\n"
    )
    assert main(["info", "--model", "bn1.py:bn1", "--data", "tensor:one.pt", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "error: model bn1.py:bn1 cannot train on the 1 image of tensor:one.pt's train split (batches of one "
        "image): Expected more than 1 value per channel when training, got input size torch.Size([1, 16]); "
        "add training images"
    ]
