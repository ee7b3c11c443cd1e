"""The fast scan gives the plain (lab) loop's grid, on several architectures and on every code path.

With channels_last off and the loader's batch size, the fast path runs the very same kernels on the very
same tensors as the plain loop, so its grid is identical. channels_last (the CPU default) sums in
another order: logits move in the last bits, which can flip a prediction only where two logits tie to
~1e-6, hence "within one image per point" for the default options.
"""

import threading

import pytest
import torch
import torchvision
from conftest import tiny_cnn
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from prunetui.core.accel import Acceleration
from prunetui.core.evaldata import hold_eval_data, standard_error
from prunetui.core.evaluate import evaluate
from prunetui.core.events import ScanPoint
from prunetui.core.sensitivity import ScanOptions, scan
from prunetui.sources import load_data, load_model
from prunetui.sources.vgg import VGG

PLAIN = ScanOptions(fast=False)
GRID = [0.5, 0.9]


def exact(batch_size: int, **kwargs) -> ScanOptions:
    """Fast-path options under which every kernel matches the plain loop's."""
    return ScanOptions(batch_size=batch_size, accel=Acceleration(channels_last=False), **kwargs)


def planned(budget: int | None) -> ScanOptions:
    """The batch size chosen for the activation budget (bytes; core.scan_memory), channels_last off."""
    return ScanOptions(activation_budget=budget, accel=Acceleration(channels_last=False))


@torch.no_grad()
def calibrated(model: nn.Module, images: torch.Tensor) -> nn.Module:
    """BatchNorm statistics measured on `images`, so a random network's predictions vary by image."""
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.momentum = None
    model.train()(images)
    return model.eval()


@torch.no_grad()
def teacher_loader(model: nn.Module, images: torch.Tensor, batch_size: int) -> DataLoader:
    """Labels are the model's own predictions: dense accuracy 100%, and each point counts how many
    predictions survive pruning, so a wrong image anywhere shows."""
    return DataLoader(TensorDataset(images, model.eval()(images).argmax(1)), batch_size=batch_size)


def state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def unchanged(model: nn.Module, before: dict[str, torch.Tensor]) -> bool:
    return all(torch.equal(v, before[k]) and v.is_contiguous() for k, v in model.state_dict().items())


def counts(result, images: int) -> dict[str, list[int]]:
    return {name: [round(a * images / 100) for a in row] for name, row in result.layers.items()}


def within_one_image(a, b, images: int) -> bool:
    ca, cb = counts(a, images), counts(b, images)
    return ca.keys() == cb.keys() and all(
        abs(x - y) <= 1 for n in ca for x, y in zip(ca[n], cb[n], strict=True)
    )


@pytest.fixture(scope="module")
def vgg_case():
    torch.manual_seed(0)
    images = torch.randn(16, 3, 16, 16)  # 16x16 still passes the lab VGG's four poolings
    model = calibrated(VGG(), images)
    return model, teacher_loader(model, images, 8)


def test_lab_vgg_fast_grid_is_the_plain_grid(vgg_case):
    model, loader = vgg_case
    before = state(model)
    plain = scan(model, loader, GRID, options=PLAIN)
    fast = scan(model, loader, GRID, options=exact(8))
    assert fast.path == "split" and plain.path == "plain"
    assert fast.layers == plain.layers and fast.base_accuracy == plain.base_accuracy == 100.0
    assert min(min(row) for row in fast.layers.values()) < 90  # the grid is not trivially flat
    assert unchanged(model, before)


def test_lab_vgg_default_options_within_one_image(vgg_case):
    model, loader = vgg_case
    before = state(model)
    plain = scan(model, loader, GRID, options=PLAIN)
    fast = scan(model, loader, GRID)  # channels_last and the CPU batch size
    assert fast.images == 16 and within_one_image(fast, plain, 16)
    assert unchanged(model, before)  # values and the usual memory layout both back


def test_lab_vgg_grid_is_the_same_whatever_the_budget(vgg_case):
    model, loader = vgg_case
    layers = ["backbone.conv0.weight", "backbone.conv4.weight", "classifier.weight"]
    plain = scan(model, loader, GRID, layers, options=PLAIN)
    roomy = scan(model, loader, GRID, layers, options=planned(None))
    assert roomy.layers == plain.layers and roomy.memory["batch_size"] == 16
    plans = []
    for budget in (roomy.memory["planned_peak"] // 4, 1):  # 1 byte: one image a batch, one batch held
        result = scan(model, loader, GRID, layers, options=planned(budget))
        assert result.path == "split" and result.layers == plain.layers
        plans.append((result.memory["batch_size"], result.memory["batches_per_chunk"]))
    assert 1 < plans[0][0] < 16 and plans[1] == (1, 1)


def test_demo_fast_grid_is_the_plain_grid():
    model, _ = load_model("demo")
    eval_loader = load_data("digits").eval  # 450 images, one batch of 512
    layers = ["backbone.conv0.weight", "backbone.conv3.weight", "classifier.weight"]
    plain = scan(model, eval_loader, GRID, layers, options=PLAIN)
    assert scan(model, eval_loader, GRID, layers, options=exact(512)).layers == plain.layers
    fast = scan(model, eval_loader, GRID, layers)
    assert fast.path == "split" and within_one_image(fast, plain, 450)


def test_tiny_sequential_cnn_every_budget(model, splits):
    plain = scan(model, splits.eval, GRID, options=PLAIN)
    for budget in (None, 1):  # 1 byte: one batch per chunk, the prefix recomputed for each
        assert (
            scan(model, splits.eval, GRID, options=exact(16, activation_budget=budget)).layers == plain.layers
        )
    streamed = scan(model, splits.eval, GRID, options=exact(16, data_budget=1))
    assert streamed.layers == plain.layers and streamed.images == 96


def test_resnet18_residual_branches():
    torch.manual_seed(0)
    images = torch.randn(8, 3, 32, 32)
    model = calibrated(torchvision.models.resnet18(weights=None, num_classes=10), images)
    loader = teacher_loader(model, images, 8)
    # layer2.0.downsample.0 is first read after bn2, so the state holds both branches of the block;
    # the others split inside a residual block (the skip input cached too) and at the classifier.
    layers = ["layer1.0.conv2.weight", "layer2.0.downsample.0.weight", "fc.weight"]
    plain = scan(model, loader, GRID, layers, options=PLAIN)
    fast = scan(model, loader, GRID, layers, options=exact(8))
    assert fast.path == "split" and fast.layers == plain.layers


class Untraceable(nn.Module):
    """Data-dependent control flow: torch.fx cannot trace it."""

    def __init__(self):
        super().__init__()
        self.net = tiny_cnn()

    def forward(self, x):
        if x.sum() > 0:
            x = x * 1.0
        return self.net(x)


def test_untraceable_model_runs_the_full_path(splits):
    model = Untraceable()
    plain = scan(model, splits.eval, GRID, options=PLAIN)
    fast = scan(model, splits.eval, GRID, options=exact(16))
    assert fast.path == "full" and fast.layers == plain.layers


class SharedAndInPlace(nn.Module):
    """One conv used twice, an in-place op on the input, and one on a value computed before a split and
    read after it: neither the held data nor a cached state may carry a change into the next point."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.stem = nn.Conv2d(1, 8, 3, padding=1)
        self.shared = nn.Conv2d(8, 8, 3, padding=1)
        self.head = nn.Linear(8 * 8 * 8, 4)

    def forward(self, x):
        h = self.stem(x.mul_(2.0))
        y = self.shared(torch.relu(self.shared(torch.relu(h))))
        h.mul_(-1.0)  # h is cached when `shared` is scanned
        return self.head((y + h).flatten(1))


def test_shared_module_and_in_place_ops(splits):
    model = SharedAndInPlace()
    loader = teacher_loader(model, splits.eval.dataset.tensors[0].clone(), 16)
    plain = scan(model, loader, GRID, options=PLAIN)
    assert min(min(row) for row in plain.layers.values()) < 90
    for options in (exact(16), exact(16, activation_budget=1), planned(1)):
        # 1 byte: every chunk (of one batch; of one image when the plan chooses) starts from the images
        fast = scan(model, loader, GRID, options=options)
        assert fast.path == "split" and fast.layers == plain.layers


def test_cancel_keeps_finished_layers_and_restores_weights(model, splits):
    before = state(model)
    cancel = threading.Event()

    def report(event):
        if isinstance(event, ScanPoint) and event.layer == "3.weight":
            cancel.set()

    result = scan(model, splits.eval, [0.5, 0.7, 0.9], report=report, cancel=cancel)
    assert result.cancelled and result.path == "split"
    assert list(result.layers) == ["0.weight"] and len(result.layers["0.weight"]) == 3
    assert unchanged(model, before)


def test_eval_subset_and_standard_error(model, splits):
    result = scan(model, splits.eval, GRID, ["3.weight"], options=exact(16, eval_size=20))
    first_20 = [(x[:20], y[:20]) for x, y in [next(iter(DataLoader(splits.eval.dataset, batch_size=20)))]]
    assert result.images == 20
    assert result.base_accuracy == evaluate(model, first_20)
    assert result.standard_error() == pytest.approx(standard_error(result.base_accuracy, 20))
    assert standard_error(90.0, 100) == pytest.approx(3.0)
    assert scan(model, splits.eval, GRID, ["3.weight"], options=PLAIN).images == 96


def test_held_data_is_rebatched_and_cut_to_the_subset(splits):
    held = hold_eval_data(splits.eval, torch.device("cpu"), batch_size=40, limit=90)
    assert [len(y) for _, y in held] == [40, 40, 10]
    streamed = hold_eval_data(splits.eval, torch.device("cpu"), batch_size=40, limit=90, max_bytes=1)
    assert streamed.held is None and sum(len(y) for _, y in streamed) == 90


def test_autocast_bf16_runs_on_cpu(model, splits):
    result = scan(model, splits.eval, GRID, ["3.weight"], options=ScanOptions(accel=Acceleration(amp="bf16")))
    assert result.path == "split" and len(result.layers["3.weight"]) == 2
