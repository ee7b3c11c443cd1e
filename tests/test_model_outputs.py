"""Models whose forward returns more than one logits tensor, or that cannot train (issue 13, kind 3).

Every working member holds the same weights as `plain` (which returns the logits tensor itself), so its
accuracies, finetune included, and its scan grid must be exactly plain's. Members that cannot be served
end in one `error:` line naming the model, exit 2, before any evaluation.
"""

import json
import subprocess
import sys
import textwrap
from types import SimpleNamespace

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from prunetui.cli import main
from prunetui.core.outputs import logits_of
from prunetui.core.sensitivity import ScanOptions, scan
from prunetui.errors import UserError
from prunetui.sources import load_data, load_model
from prunetui.sources.fit import check_model_fits_data, probe_batch, untrained_parameters

MODELS = textwrap.dedent(
    '''
    from collections import namedtuple

    import torch
    from torch import nn

    Outputs = namedtuple("Outputs", ["logits", "aux_logits"])


    class Plain(nn.Module):
        """conv-BN-ReLU, pooled, a linear head: the logits tensor itself."""

        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.features = nn.Sequential(
                nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
            )
            self.fc = nn.Linear(32, 4)

        def forward(self, x):
            return self.fc(self.features(x))


    class TupleNet(Plain):
        def forward(self, x):
            f = self.features(x)
            return self.fc(f), f


    class DictLogits(Plain):
        def forward(self, x):
            f = self.features(x)
            return {"features": f, "logits": self.fc(f)}


    class DictOut(Plain):
        def forward(self, x):
            return {"out": self.fc(self.features(x)), "aux": None}


    class Named(Plain):
        def forward(self, x):
            f = self.features(x)
            return Outputs(self.fc(f), f.sum(1))


    class GoogLeNetLike(Plain):
        """torchvision's GoogLeNet shape: (logits, aux_logits) in train mode only."""

        def __init__(self):
            super().__init__()
            self.aux = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 4))

        def forward(self, x):
            logits = self.fc(self.features(x))
            if self.training:
                return Outputs(logits, self.aux(x))
            return logits


    class Frozen(Plain):
        def __init__(self):
            super().__init__()
            self.requires_grad_(False)


    class Text(Plain):
        def forward(self, x):
            return "logits"


    class Nothing(Plain):
        def forward(self, x):
            self.fc(self.features(x))


    class NoLogitsKey(Plain):
        def forward(self, x):
            return {"scores": self.fc(self.features(x))}


    class TrainShape(Plain):
        """Logits for 4 classes in eval mode, 8 in train mode."""

        def forward(self, x):
            logits = self.fc(self.features(x))
            return torch.cat([logits, logits], 1) if self.training else logits


    class TwoClasses(Plain):
        def forward(self, x):
            return self.fc(self.features(x))[:, :2]


    def build(name):
        model = globals()[name]()
        torch.manual_seed(1)  # the same generator state after every factory: the same shuffles
        return model
    '''
)

WORKING = ["TupleNet", "DictLogits", "DictOut", "Named", "GoogLeNetLike"]
REFUSED = {
    "Frozen": "every parameter is frozen",
    "Text": "returns str",
    "Nothing": "returns NoneType",
    "NoLogitsKey": "dict with keys ['scores']",
    "TrainShape": "4 in eval mode but 2x8 in train mode",
    "TwoClasses": "has 2 outputs but tensor:data.pt has 4 classes",
}


def quadrant_data(n: int = 120) -> tuple[torch.Tensor, torch.Tensor]:
    """Four classes told apart by which quadrant is bright: learnable in one epoch."""
    g = torch.Generator().manual_seed(3)
    labels = torch.arange(n) % 4
    images = torch.rand(n, 3, 8, 8, generator=g) * 0.5
    for i, label in enumerate(labels.tolist()):
        r, c = divmod(label, 2)
        images[i, :, r * 4 : r * 4 + 4, c * 4 : c * 4 + 4] += 1.0
    return images, labels


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("outputs")
    factories = "\n".join(
        f"def {n.lower()}():\n    return build('{n}')\n" for n in ["Plain", *WORKING, *REFUSED]
    )
    (folder / "outmodels.py").write_text(MODELS + "\n\n" + factories)
    images, labels = quadrant_data()
    torch.save({"images": images, "labels": labels}, folder / "data.pt")
    (folder / "fc.toml").write_text('name = "fc"\n[sparsity]\n"fc.weight" = 0.5\n"features.3.weight" = 0.6\n')
    return folder


def spec(folder, name: str) -> str:
    return f"{folder / 'outmodels.py'}:{name.lower()}"


def prune_json(folder, name: str) -> dict:
    """`prunetui prune ... --finetune 1 --json` in a subprocess, in `folder`."""
    argv = [
        sys.executable,
        "-m",
        "prunetui",
        "prune",
        "--model",
        spec(folder, name),
        "--data",
        "tensor:data.pt",
    ]
    argv += ["--profile", "fc.toml", "--finetune", "1", "--json"]
    done = subprocess.run(argv, cwd=folder, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def plain_run(folder) -> dict:
    return prune_json(folder, "Plain")


def test_the_output_rule():
    x = torch.ones(2, 3)
    assert logits_of(x) is x
    assert logits_of((x, torch.zeros(1))) is x and logits_of([x]) is x
    assert logits_of({"aux": torch.zeros(1), "logits": x}) is x
    assert logits_of({"out": x, "aux": torch.zeros(1)}) is x
    for bad in ("x", None, (), ("x", x), {"scores": x}):
        with pytest.raises(UserError):
            logits_of(bad)


@pytest.mark.parametrize("name", WORKING)
def test_prune_and_finetune_give_the_plain_models_numbers(folder, plain_run, name):
    run = prune_json(folder, name)
    assert run["accuracy_before"] is not None and run["accuracy_after"] is not None
    for key in ("accuracy_dense", "accuracy_before", "accuracy_after"):
        assert run[key] == plain_run[key], key
    if name != "GoogLeNetLike":  # its aux head counts in its size
        assert run["sparse_size_mib"] == plain_run["sparse_size_mib"]
    assert [e["accuracy"] for e in run["epochs"]] == [e["accuracy"] for e in plain_run["epochs"]]


@pytest.fixture(scope="module")
def loaded(folder):
    data = load_data(f"tensor:{folder / 'data.pt'}", eval_batch_size=32)
    plain, _ = load_model(spec(folder, "Plain"))
    plain_grid = scan(plain, data.eval, [0.5, 0.9], options=ScanOptions(fast=False))
    return data, plain_grid


@pytest.mark.parametrize("name", WORKING)
def test_fast_scan_grid_is_the_plain_scan_and_the_plain_models(folder, loaded, name):
    data, plain_grid = loaded
    model, _ = load_model(spec(folder, name))
    fast = scan(model, data.eval, [0.5, 0.9])
    lab = scan(model, data.eval, [0.5, 0.9], options=ScanOptions(fast=False))
    assert fast.path == "split"  # fx traces tuple, dict and namedtuple outputs
    assert fast.layers == lab.layers
    assert {k: v for k, v in fast.layers.items() if k in plain_grid.layers} == plain_grid.layers
    aux_rows = [row for k, row in fast.layers.items() if k not in plain_grid.layers]
    assert all(a == fast.base_accuracy for row in aux_rows for a in row)  # unused in eval mode
    assert fast.base_accuracy == lab.base_accuracy == plain_grid.base_accuracy


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_refused_models_end_in_one_error_line_naming_them(folder, name, capsys, monkeypatch):
    monkeypatch.chdir(folder)
    argv = ["prune", "--model", spec(folder, name), "--data", "tensor:data.pt", "--profile", "fc.toml"]
    assert main([*argv, "--finetune", "1", "--json"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: model "), err
    assert name.lower() in lines[0].lower() and REFUSED[name] in lines[0], lines[0]


def test_frozen_model_is_refused_by_the_command_in_a_subprocess(folder):
    argv = [
        sys.executable,
        "-m",
        "prunetui",
        "scan",
        "--model",
        spec(folder, "Frozen"),
        "--data",
        "tensor:data.pt",
    ]
    done = subprocess.run(argv, cwd=folder, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith(f"error: model {spec(folder, 'Frozen')}: every parameter is frozen")
    assert "requires_grad_(True)" in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_the_check_leaves_the_model_exactly_as_it_was(folder):
    data = load_data(f"tensor:{folder / 'data.pt'}")
    model, _ = load_model(spec(folder, "GoogLeNetLike"))
    model.train()
    model.aux.eval()  # modes set module by module come back as they were
    with torch.no_grad():
        model.features[1].running_mean.fill_(0.25)
    model.fc.weight.grad = torch.full_like(model.fc.weight, 7.0)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    check_model_fits_data(model, data, torch.device("cpu"))
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    assert torch.equal(model.fc.weight.grad, torch.full_like(model.fc.weight, 7.0))
    assert all(p.grad is None for n, p in model.named_parameters() if n != "fc.weight")
    assert model.training and model.features.training and not model.aux.training


def test_a_model_trained_without_grads_is_refused(folder):
    """Some parameters trainable, but the logits reach none of them."""
    data = load_data(f"tensor:{folder / 'data.pt'}")
    model, _ = load_model(spec(folder, "Plain"))
    model.requires_grad_(False)
    model.register_parameter("unused", nn.Parameter(torch.zeros(1)))
    with pytest.raises(UserError, match="depend on no trainable parameter"):
        check_model_fits_data(model, data, torch.device("cpu"), label="outmodels.py:plain")


def test_the_check_reads_two_images_of_a_one_image_split():
    """BatchNorm in train mode refuses a batch of one: the single image is doubled."""
    images, labels = quadrant_data(1)
    data = SimpleNamespace(eval=DataLoader(TensorDataset(images, labels)), spec="one", num_classes=4)
    model = nn.Sequential(nn.Flatten(), nn.Linear(192, 8), nn.BatchNorm1d(8), nn.Linear(8, 4))
    check_model_fits_data(model, data, torch.device("cpu"))


def test_parameters_the_loss_leaves_untrained_are_the_aux_heads(folder):
    data = load_data(f"tensor:{folder / 'data.pt'}")
    images, labels = probe_batch(data)
    model, _ = load_model(spec(folder, "GoogLeNetLike"))
    assert untrained_parameters(model, images, labels) == [
        n for n, _ in model.aux.named_parameters(prefix="aux")
    ]
    plain, _ = load_model(spec(folder, "Plain"))
    assert untrained_parameters(plain, images, labels) == []
    assert all(p.grad is None for p in model.parameters())


def test_aux_heads_finetune_on_two_processes(folder):
    """DDP refuses parameters without a gradient at the second step unless told: three steps here."""
    images, labels = quadrant_data(360)
    torch.save({"images": images, "labels": labels}, folder / "data360.pt")
    argv = [sys.executable, "-m", "prunetui", "prune", "--model", spec(folder, "GoogLeNetLike")]
    argv += [
        "--data",
        "tensor:data360.pt",
        "--profile",
        "fc.toml",
        "--finetune",
        "1",
        "--nproc",
        "2",
        "--json",
    ]
    done = subprocess.run(argv, cwd=folder, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    run = json.loads(done.stdout)
    assert [e["epoch"] for e in run["epochs"]] == [1] and run["accuracy_after"] is not None
