"""What the sections of benchmarks/gpu_check.py share: where they run, how big, how a results row is
written, and the small models and data they measure on. Environment: see gpu_check.py."""

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch import nn

BENCHMARKS = Path(__file__).resolve().parent
DEVICE = torch.device(os.environ.get("GPU_CHECK_DEVICE", "cuda"))
SMALL = os.environ.get("GPU_CHECK_SMALL") == "1"
CUDA = DEVICE.type == "cuda"
AMP_CONFIGS = [(amp, cl) for amp in (None, "bf16", "fp16") for cl in (False, True)]
SMALL_AMP_CONFIGS = [(None, False), ("bf16", True), ("fp16", False)]  # each precision and layout once


def size(full: int, small: int) -> int:
    return small if SMALL else full


# --- output --------------------------------------------------------------------------------------------
def row(section: str, measure: str, result: str, note: str = "") -> None:
    """One results row: printed, and appended to GPU_CHECK_ROWS at once."""
    cells = [str(c).replace("|", "\\|").replace("\n", " ") for c in (section, measure, result, note)]
    line = "| " + " | ".join(cells) + " |"
    print(line, flush=True)
    rows = os.environ.get("GPU_CHECK_ROWS")
    if rows:
        with open(rows, "a", encoding="utf-8") as f:
            f.write(line + "\n")


def sync() -> None:
    if CUDA:
        torch.cuda.synchronize(DEVICE)


def clock(run, *args, **kwargs) -> tuple[object, float]:
    """(run(...), wall seconds), the device synchronised before and after."""
    sync()
    started = time.perf_counter()
    result = run(*args, **kwargs)
    sync()
    return result, time.perf_counter() - started


def amp_name(amp: str | None, channels_last: bool) -> str:
    return f"{amp or 'fp32'}, {'channels_last' if channels_last else 'NCHW'}"


def masks_hold(model: nn.Module, masks: dict) -> bool:
    params = dict(model.named_parameters())
    return all(bool(torch.all(params[n][~m.to(params[n].device)] == 0)) for n, m in masks.items())


def every_layer(model: nn.Module, sparsity: float) -> dict[str, float]:
    return {name: sparsity for name, p in model.named_parameters() if p.dim() > 1}


def run_script(args: list[str]) -> str:
    """Run a benchmark script (or pytest) in a child process, its output into this log; its output."""
    command = [sys.executable, *args]
    print("$", " ".join(command), flush=True)
    done = subprocess.run(command, capture_output=True, text=True, cwd=BENCHMARKS.parent)
    print(done.stdout + done.stderr, flush=True)
    if done.returncode != 0:
        raise SystemExit(f"{args[0]} exited with {done.returncode}")
    return done.stdout


def find(pattern: str, text: str, default: str = "?") -> str:
    match = re.search(pattern, text, re.MULTILINE)
    return match.group(1) if match else default


def cifar_like(count: int, seed: int) -> torch.Tensor:
    return torch.randn(count, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


def teacher_setup(train: int, evals: int):
    """The lab's VGG, random weights, BatchNorm calibrated on random CIFAR-sized train images, labels its
    own predictions (as in scan_vs_lab.py): train and eval (images, labels) on the host."""
    from scan_vs_lab import calibrated_vgg, teacher_labels

    train_images, eval_images = cifar_like(train, 1), cifar_like(evals, 2)
    model = calibrated_vgg(train_images, DEVICE)
    train_labels = teacher_labels(model, train_images, DEVICE)
    eval_labels = teacher_labels(model, eval_images, DEVICE)
    return model, (train_images, train_labels), (eval_images, eval_labels)


class DeviceBatches:
    """Training batches of images and labels held on the device, reshuffled every pass, each batch put
    through core.augment's crop+flip there when `augment`: what a loader that keeps CIFAR on the GPU does."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int, augment: bool = True):
        self.images, self.labels, self.batch_size, self.augment = images, labels, batch_size, augment

    def __len__(self) -> int:
        return -(-len(self.labels) // self.batch_size)

    def __iter__(self):
        from prunetui.core.augment import random_crop_flip

        order = torch.randperm(len(self.labels), device=self.labels.device)
        for start in range(0, len(order), self.batch_size):
            index = order[start : start + self.batch_size]
            images = self.images[index]
            yield (random_crop_flip(images) if self.augment else images), self.labels[index]
