"""Our sensitivity scan against a plain reimplementation of the lab's loop, in one process.

    python benchmarks/scan_vs_lab.py [--images 512] [--rounds 2] [--device cpu]

The model is the lab's VGG with random weights, its BatchNorm statistics measured on the random
images (so activations are well scaled and predictions vary from image to image), and the labels are
its own predictions. The dense accuracy is then 100% and every grid point counts how many of the
512 predictions survive pruning that layer: a grid comparison that would catch any wrong image.
(With random labels every point sits near 10% whatever a scan does, and a VGG trained a few steps on
random labels predicts one class everywhere.)

On the same weights and data it times the lab's `sensitivity_scan` loop (for each layer and
sparsity: prune in place, evaluate the whole model over the DataLoader of batch 512, restore) and
`prunetui.core.sensitivity.scan` as `prunetui scan` runs it, whole: holding the data, tracing and
the base accuracy evaluation included. After an untimed warm-up of both, rounds run in the order
lab, ours, ours, lab, ... so that a drift in the machine's load falls on both alike; wall and CPU
seconds are the means over rounds.
Then it times `prunetui scan` as a separate process on the same weights and data. While our scan
runs, a probe thread measures how late a 20 ms timer fires: what a key press in the TUI would wait.

`--lab-data pil` feeds both sides the lab's test pipeline as the lab wrote it: uint8 images turned
into PIL images and through `ToTensor()` one at a time in a DataLoader (batch 512, no workers, pinned
memory on CUDA), as torchvision's CIFAR10 does. The lab's loop reads it 54 times; ours reads it once.
On a GPU that per-image host work is most of the lab's time. `--tf32 off` turns TF32 convolutions
off for both sides (CUDA only; PyTorch's default has them on, which is what the lab ran with).
"""

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from timing import LatenessProbe, abba, means, timed
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from prunetui.core.accel import Acceleration
from prunetui.core.device import resolve_device
from prunetui.core.sensitivity import DEFAULT_SPARSITIES, ScanOptions, scan
from prunetui.sources.vgg import VGG


# --- the lab's code, as in lab 1 (fine_grained_prune, evaluate, sensitivity_scan), device-neutral ----
def lab_fine_grained_prune(tensor: torch.Tensor, sparsity: float) -> torch.Tensor:
    sparsity = min(max(0.0, sparsity), 1.0)
    if sparsity == 1.0:
        tensor.zero_()
        return torch.zeros_like(tensor)
    elif sparsity == 0.0:
        return torch.ones_like(tensor)
    num_elements = tensor.numel()
    num_zeros = round(num_elements * sparsity)
    importance = tensor.abs()
    threshold = importance.view(-1).kthvalue(num_zeros).values
    mask = torch.gt(importance, threshold)
    tensor.mul_(mask)
    return mask


@torch.inference_mode()
def lab_evaluate(model: nn.Module, dataloader, device) -> float:
    model.eval()
    num_samples = 0
    num_correct = 0
    for inputs, targets in dataloader:
        inputs, targets = inputs.to(device), targets.to(device)
        outputs = model(inputs).argmax(dim=1)
        num_samples += targets.size(0)
        num_correct += (outputs == targets).sum()
    return (num_correct / num_samples * 100).item()


@torch.no_grad()
def lab_sensitivity_scan(model: nn.Module, dataloader, sparsities, device) -> dict[str, list[float]]:
    accuracies = {}
    named_conv_weights = [(name, param) for (name, param) in model.named_parameters() if param.dim() > 1]
    for name, param in named_conv_weights:
        param_clone = param.detach().clone()
        accuracy = []
        for sparsity in sparsities:
            lab_fine_grained_prune(param.detach(), sparsity=sparsity)
            accuracy.append(lab_evaluate(model, dataloader, device))
            param.copy_(param_clone)
        accuracies[name] = accuracy
    return accuracies


# --- set-up ----------------------------------------------------------------------------------------
@torch.no_grad()
def calibrated_vgg(images: torch.Tensor, device) -> nn.Module:
    """The lab's VGG, random weights, BatchNorm running statistics measured on `images`."""
    torch.manual_seed(0)
    model = VGG().to(device)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.momentum = None  # a plain average over the batches below
    model.train()
    for batch in images.split(128):
        model(batch.to(device))
    return model.eval()


@torch.inference_mode()
def teacher_labels(model: nn.Module, images: torch.Tensor, device) -> torch.Tensor:
    return torch.cat([model(batch.to(device)).argmax(1).cpu() for batch in images.split(512)])


class LabTestImages(Dataset):
    """torchvision's CIFAR10 test split as the lab reads it: uint8 H x W x C arrays, each turned into a
    PIL image and through `ToTensor()` when asked for (values: uint8 / 255)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor):
        from torchvision import transforms

        self.arrays = (images * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
        self.labels = labels.tolist()
        self.transform = transforms.ToTensor()

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        from PIL import Image

        return self.transform(Image.fromarray(self.arrays[index])), self.labels[index]


def eval_images(count: int, lab_data: str) -> torch.Tensor:
    """N x 3 x 32 x 32 random images: normal, or for `pil` uint8 levels / 255 (what ToTensor gives)."""
    generator = torch.Generator().manual_seed(0)
    if lab_data == "pil":
        return torch.randint(0, 256, (count, 3, 32, 32), generator=generator).float() / 255
    return torch.randn(count, 3, 32, 32, generator=generator)


def lab_loader(images: torch.Tensor, labels: torch.Tensor, lab_data: str, device) -> DataLoader:
    """The lab's test DataLoader: batch 512, in order; `pil` reads through LabTestImages."""
    if lab_data == "pil":
        return DataLoader(LabTestImages(images, labels), batch_size=512, pin_memory=device.type == "cuda")
    return DataLoader(TensorDataset(images, labels), batch_size=512)


def within_one_image(ours: dict, lab: dict, images: int) -> tuple[bool, int]:
    """Whether every point's correct count differs by at most one image, and the largest difference."""
    worst = 0
    for name, accuracies in lab.items():
        for a, b in zip(accuracies, ours[name], strict=True):
            worst = max(worst, abs(round(a * images / 100) - round(b * images / 100)))
    return worst <= 1, worst


def cli_scan_seconds(data_file: Path, checkpoint: Path, device: str) -> tuple[float, float]:
    """`prunetui scan` as a whole process (no cache): wall seconds and the child's CPU seconds."""
    command = [sys.executable, "-m", "prunetui", "scan", "--model", "vgg-cifar", "--checkpoint"]
    command += [str(checkpoint), "--data", f"tensor:{data_file}", "--device", device, "--no-cache", "--json"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, cwd=data_file.parent, env=os.environ)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=512, help="random eval images, 3x32x32")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--rounds", type=int, default=2, help="lab/ours pairs, in ABBA order")
    parser.add_argument("--skip-lab", action="store_true", help="time only ours (for trying options)")
    parser.add_argument("--skip-cli", action="store_true", help="do not time `prunetui scan` as a process")
    parser.add_argument("--batch-size", type=int, help="our eval batch size (default: chosen for the device)")
    parser.add_argument("--channels-last", choices=["auto", "on", "off"], default="auto")
    parser.add_argument("--budget-mib", type=float, help="our activation budget (default: chosen)")
    parser.add_argument(
        "--lab-data", choices=["tensor", "pil"], default="tensor", help="the eval loader both sides read"
    )
    parser.add_argument(
        "--tf32", choices=["default", "off"], default="default", help="TF32 convolutions (CUDA)"
    )
    args = parser.parse_args()

    device = resolve_device(args.device)
    if args.tf32 == "off":
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
    images = eval_images(args.images, args.lab_data)
    model = calibrated_vgg(images, device)
    labels = teacher_labels(model, images, device)
    loader = lab_loader(images, labels, args.lab_data, device)
    sparsities = list(DEFAULT_SPARSITIES)
    channels_last = {"auto": None, "on": True, "off": False}[args.channels_last]
    budget = None if args.budget_mib is None else int(args.budget_mib * 2**20)
    options = ScanOptions(
        batch_size=args.batch_size, activation_budget=budget, accel=Acceleration(channels_last=channels_last)
    )
    print(
        f"lab VGG on {device}, {args.images} images of 3x32x32, {torch.get_num_threads()} threads, "
        f"{len(set(labels.tolist()))} classes predicted, lab data {args.lab_data}, "
        f"TF32 convolutions {torch.backends.cudnn.allow_tf32 if device.type == 'cuda' else 'n/a'}"
    )

    def ours_run():
        with LatenessProbe() as probe:
            result = scan(model, loader, sparsities, options=options)
        return result, probe

    # Untimed warm-up of both (first-call kernel selection and allocations), so no round runs cold.
    lab_evaluate(model, loader, device)
    scan(model, loader, sparsities, ["classifier.weight"], options=options)
    order = ["ours"] * args.rounds if args.skip_lab else abba(args.rounds)
    times = {"reference": [], "ours": []}
    lab = ours = probe = None
    for which in order:
        if which == "reference":
            lab, wall, cpu = timed(lab_sensitivity_scan, model, loader, sparsities, device)
        else:
            (ours, probe), wall, cpu = timed(ours_run)
        times[which].append((wall, cpu))
        print(
            f"  {'lab' if which == 'reference' else 'ours':<4} {wall:7.1f} s wall {cpu:7.1f} s CPU",
            flush=True,
        )

    ours_wall, ours_cpu = means(times["ours"])
    print(f"prunetui:  {ours_wall:7.1f} s wall, {ours_cpu:7.1f} s CPU (path {ours.path})")
    print(f"           {probe.summary()}")
    if lab is not None:
        lab_wall, lab_cpu = means(times["reference"])
        print(
            f"lab loop:  {lab_wall:7.1f} s wall, {lab_cpu:7.1f} s CPU ({sum(map(len, lab.values()))} evaluations)"
        )
        print(
            f"ratio prunetui / lab: {ours_wall / lab_wall:.3f} wall, {ours_cpu / lab_cpu:.3f} CPU (goal <= 0.40)"
        )
        same, worst = within_one_image(ours.layers, lab, args.images)
        print(f"grids equal within one image per point: {same} (largest difference: {worst} images)")
    if not args.skip_cli:
        with tempfile.TemporaryDirectory() as folder:
            data_file, checkpoint = Path(folder) / "data.pt", Path(folder) / "vgg.pt"
            torch.save({"images": images, "labels": labels}, data_file)
            torch.save({k: v.cpu() for k, v in model.state_dict().items()}, checkpoint)
            try:
                wall, cpu = cli_scan_seconds(data_file, checkpoint, args.device)
            except subprocess.CalledProcessError as error:  # the figures above stand; say why this failed
                tail = error.stderr.decode(errors="replace").strip().splitlines()[-3:]
                wall = cpu = None
                print(f"`prunetui scan` as a process: FAILED (exit {error.returncode}): {' / '.join(tail)}")
        if wall is not None:
            line = f"`prunetui scan` as a process: {wall:.1f} s wall, {cpu:.1f} s CPU"
            if lab is not None:
                line += f"; ratio to the lab loop {wall / lab_wall:.3f} wall, {cpu / lab_cpu:.3f} CPU"
            print(line)
    lowest = min(min(v) for v in ours.layers.values())
    print(f"accuracy range in the grid: {lowest:.2f}% .. {ours.base_accuracy:.2f}% (dense)")


if __name__ == "__main__":
    main()
