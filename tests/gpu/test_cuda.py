"""CUDA behaviour: masks, autocast, channels_last, device data and the scan grid on a real GPU.

Every test here is marked `cuda` (run them with `pytest -m cuda tests/gpu`; benchmarks/gpu_check.sh
does) and skipped with a reason where CUDA is not available, so the CPU suite collects and skips them.
Each runs in about a second on a GPU: the models and data are the suite's tiny ones.
"""

import copy

import pytest
import torch
from conftest import finetune_recipe
from torch.utils.data import DataLoader, TensorDataset

from prunetui.core.accel import Acceleration, autocast, grad_scaler
from prunetui.core.augment import random_crop_flip
from prunetui.core.device import resolve_device
from prunetui.core.evaldata import hold_eval_data
from prunetui.core.evaluate import count_correct
from prunetui.core.events import Progress
from prunetui.core.finetune import finetune
from prunetui.core.pruning import prune
from prunetui.core.sensitivity import ScanOptions, scan

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

CUDA = torch.device("cuda")
TARGETS = {"0.weight": 0.5, "3.weight": 0.8}  # the tiny CNN's two convs (tests/conftest.py)
AUTOCAST_TOLERANCE_IMAGES = 1  # accuracy under autocast vs fp32 on a trained model: at most 1 image apart


@pytest.fixture
def full_fp32():
    """Plain fp32 matmuls and convolutions on CUDA (no TF32) for the test, so CPU and CUDA differ only in
    the order of their sums; the settings are put back afterwards."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def teacher_data(model, count: int = 256) -> DataLoader:
    """Random images labelled with the model's own CPU predictions: the dense accuracy is 100% and every
    scan point counts the predictions that survive, so a wrong image anywhere shows."""
    images = torch.randn(count, 1, 8, 8, generator=torch.Generator().manual_seed(3))
    with torch.inference_mode():
        labels = model.eval()(images).argmax(1)
    return DataLoader(TensorDataset(images, labels), batch_size=64)


def test_auto_picks_cuda():
    assert resolve_device("auto").type == "cuda"
    assert resolve_device("cuda:0") == torch.device("cuda", 0)


@pytest.mark.parametrize("amp", [None, "bf16", "fp16"])
def test_cuda_finetune_keeps_masks_with_amp_and_channels_last(model, splits, amp):
    model = model.to(CUDA)
    masks = prune(model, TARGETS)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    layouts = []

    def report(event):
        if isinstance(event, Progress):  # every Progress of a finetune comes while it trains or evaluates
            layouts.append(model[3].weight.is_contiguous(memory_format=torch.channels_last))

    recipe = finetune_recipe(epochs=1, amp=amp)
    result = finetune(model, splits.train, splits.eval, masks, recipe, report, channels_last=True)
    params = dict(model.named_parameters())
    assert result.completed == 1 and result.best_accuracy is not None
    assert all(p.device.type == "cuda" and torch.isfinite(p).all() for p in params.values())
    for name, mask in masks.items():
        assert torch.all(params[name][~mask.to(CUDA)] == 0), f"{name}: a pruned weight came back"
    assert any(not torch.equal(params[n], before[n]) for n in params)  # it did train
    assert layouts and all(layouts)  # channels_last held while training
    assert all(p.is_contiguous() for p in params.values())  # and the usual layout given back
    assert grad_scaler(Acceleration(amp, True), CUDA).is_enabled() == (amp == "fp16")


def test_scan_grid_on_cuda_equals_cpu(model, full_fp32):
    batches = teacher_data(model)
    cpu = scan(model, batches, layers=list(TARGETS) + ["7.weight"])
    on_cuda = copy.deepcopy(model).to(CUDA)
    gpu = scan(on_cuda, batches, layers=list(TARGETS) + ["7.weight"])
    assert gpu.base_accuracy == cpu.base_accuracy == 100.0 and gpu.images == cpu.images == 256
    for name, row in cpu.layers.items():
        for a, b in zip(row, gpu.layers[name], strict=True):
            assert abs(round(a * 256 / 100) - round(b * 256 / 100)) <= 1, (name, row, gpu.layers[name])
    assert all(torch.equal(a.cpu(), b) for a, b in zip(on_cuda.parameters(), model.parameters(), strict=True))


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_evaluation_under_autocast_matches_fp32(model, splits, amp):
    model = model.to(CUDA)
    finetune(
        model, splits.train, splits.eval, {}, finetune_recipe(epochs=10, lr=0.05)
    )  # learns the quadrants
    fp32_correct, seen = count_correct(model, splits.eval)
    with autocast(Acceleration(amp=amp), CUDA):
        amp_correct, _ = count_correct(model, splits.eval)
    assert fp32_correct / seen > 0.5  # learnt something, so the comparison means something
    assert abs(amp_correct - fp32_correct) <= AUTOCAST_TOLERANCE_IMAGES


def test_eval_data_held_on_the_device(model, splits):
    held = hold_eval_data(splits.eval, CUDA, batch_size=32, channels_last=True)
    assert held.held is not None and len(held) == 3
    for images, labels in held:
        assert images.device.type == labels.device.type == "cuda"
        assert images.is_contiguous(memory_format=torch.channels_last)
    model = model.to(CUDA)
    result = scan(
        model, held, [0.5], ["0.weight"], options=ScanOptions(accel=Acceleration(channels_last=True))
    )
    assert result.images == 96 and result.layers["0.weight"][0] >= 0.0


def windows_of(image: torch.Tensor, padded: torch.Tensor) -> set[tuple[int, int, bool]]:
    """The (top, left, mirrored) 32x32 windows of `padded` (C x 40 x 40) equal to `image` (C x 32 x 32)."""
    found = set()
    for top in range(9):
        for left in range(9):
            window = padded[:, top : top + 32, left : left + 32]
            found |= {
                (top, left, m) for m in (False, True) if torch.equal(image, window.flip(-1) if m else window)
            }
    return found


@pytest.mark.parametrize("dtype", [torch.float32, torch.uint8])
def test_crop_flip_on_cuda_tensors_makes_the_labs_windows(dtype):
    images = torch.randint(1, 256, (16, 3, 32, 32), device=CUDA).to(dtype)  # no zeros: padding shows
    torch.cuda.manual_seed(0)
    out = random_crop_flip(images)  # torch's global CUDA generator, as the host loader uses the CPU one
    assert out.device.type == "cuda" and out.dtype == dtype and out.shape == images.shape
    padded = torch.nn.functional.pad(images, (4, 4, 4, 4)).cpu()
    windows = [windows_of(o, p) for o, p in zip(out.cpu(), padded, strict=True)]
    assert all(len(w) == 1 for w in windows)  # each one window of its zero-padded image, mirrored or not
    assert len(set().union(*windows)) > 1  # drawn per image
