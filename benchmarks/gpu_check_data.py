"""Sections e (autocast and channels_last) and f (data on the device vs on the host) of
benchmarks/gpu_check.py."""

import copy

import torch
from gpu_common import (
    AMP_CONFIGS,
    DEVICE,
    SMALL,
    SMALL_AMP_CONFIGS,
    DeviceBatches,
    amp_name,
    clock,
    every_layer,
    masks_hold,
    row,
    size,
    teacher_setup,
)
from torch.utils.data import DataLoader, TensorDataset


# --- e. autocast and channels_last ---------------------------------------------------------------------
def accel() -> None:
    from prunetui.core.accel import Acceleration
    from prunetui.core.evaldata import hold_eval_data
    from prunetui.core.evaluate import evaluate
    from prunetui.core.finetune import FinetuneSettings
    from prunetui.core.finetune import finetune as core_finetune
    from prunetui.core.pruning import prune
    from prunetui.core.sensitivity import ScanOptions
    from prunetui.core.sensitivity import scan as core_scan

    dense, (train_x, train_y), (eval_x, eval_y) = teacher_setup(size(10_000, 16), size(10_000, 16))
    eval_loader = DataLoader(TensorDataset(eval_x, eval_y), batch_size=512)
    held = hold_eval_data(eval_loader, DEVICE, batch_size=1024)
    pruned = copy.deepcopy(dense)
    masks = prune(pruned, every_layer(pruned, 0.8))
    before = evaluate(pruned, held)
    train = DeviceBatches(train_x.to(DEVICE), train_y.to(DEVICE), 128, augment=False)
    warm = DeviceBatches(train_x[:256].to(DEVICE), train_y[:256].to(DEVICE), 128, augment=False)
    print(f"finetune: 80% of every layer pruned, accuracy before finetune {before:.2f}%", flush=True)
    configs = SMALL_AMP_CONFIGS if SMALL else AMP_CONFIGS
    base = None
    for amp, channels_last in configs:
        settings = FinetuneSettings(epochs=1, amp=amp, channels_last=channels_last)
        if not SMALL:
            core_finetune(copy.deepcopy(pruned), warm, held, masks, settings)  # untimed: kernel selection
        model = copy.deepcopy(pruned)
        torch.manual_seed(0)
        result, seconds = clock(core_finetune, model, train, held, masks, settings)
        base = base or seconds
        row(
            "e accel",
            f"finetune 1 epoch ({len(train_y)} images, batch 128), {amp_name(amp, channels_last)}",
            f"{seconds:.2f} s ({seconds / base:.2f}x fp32 NCHW)",
            f"accuracy {result.best_accuracy:.2f}% (before {before:.2f}%), masks held: {masks_hold(model, masks)}",
        )
    reference = None
    layers = ["backbone.conv7.weight", "classifier.weight"] if SMALL else None  # None: all 9
    for amp, channels_last in configs:
        options = ScanOptions(accel=Acceleration(amp=amp, channels_last=channels_last))
        if not SMALL:
            core_scan(dense, eval_loader, [0.5], ["classifier.weight"], options=options)  # untimed warm-up
        result, seconds = clock(core_scan, dense, eval_loader, layers=layers, options=options)
        reference = reference or (result, seconds)
        worst = max(
            abs(round((a - b) * len(eval_y) / 100))
            for name, row_ in reference[0].layers.items()
            for a, b in zip(row_, result.layers[name], strict=True)
        )
        row(
            "e accel",
            f"scan, {sum(map(len, result.layers.values()))} points x {len(eval_y)} images, "
            f"{amp_name(amp, channels_last)}",
            f"{seconds:.2f} s ({seconds / reference[1]:.2f}x fp32 NCHW)",
            f"dense {result.base_accuracy:.2f}%, grid within {worst} images of fp32 NCHW, path {result.path}",
        )


# --- f. data on the device vs on the host ---------------------------------------------------------------
PIXEL_MEAN, PIXEL_STD = 128 / 255, 50 / 255  # the teacher's inputs x as CIFAR pixels: (x * STD + MEAN) * 255


class TeacherInputs:
    """(images, labels) batches of ToTensor's pixels / 255 on the device as the teacher's inputs again,
    (images - MEAN) / STD: the same last step whichever loader made them."""

    def __init__(self, batches):
        self.batches = batches

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self):
        for images, labels in self.batches:
            yield (images.to(DEVICE, non_blocking=True) - PIXEL_MEAN) / PIXEL_STD, labels


def one_pass(batches) -> int:
    seen = 0
    for images, labels in batches:
        images = images.to(DEVICE, non_blocking=True)
        seen += len(labels)
    return seen


def data() -> None:
    from augment import fake_cifar, lab_loader  # benchmarks/augment.py

    from prunetui.core.evaldata import default_batch_size, hold_eval_data
    from prunetui.core.evaluate import evaluate
    from prunetui.core.finetune import FinetuneSettings
    from prunetui.core.finetune import finetune as core_finetune
    from prunetui.core.pruning import prune
    from prunetui.sources import load_data

    count = size(10_000, 64)
    model, (train_x, train_y), (eval_x, eval_y) = teacher_setup(count, count)
    host = DataLoader(TensorDataset(eval_x, eval_y), batch_size=512)  # the lab's test loader
    held, hold_seconds = clock(hold_eval_data, host, DEVICE, default_batch_size(DEVICE))
    evaluate(model, host)  # untimed warm-up of both
    evaluate(model, held)
    times = {"host": [], "held": []}
    accuracy = {}
    for which in ("host", "held", "held", "host"):
        accuracy[which], seconds = clock(evaluate, model, host if which == "host" else held)
        times[which].append(seconds)
    host_s, held_s = (sum(times[k]) / len(times[k]) for k in ("host", "held"))
    row(
        "f data",
        f"evaluate {count} images: held on the device / host DataLoader (batch 512)",
        f"**{held_s / host_s:.3f}** (held {held_s:.3f} s, host {host_s:.3f} s)",
        f"holding them once: {hold_seconds:.3f} s; accuracies {accuracy['held']:.2f}% / {accuracy['host']:.2f}%",
    )

    # The train images as CIFAR's uint8 pixels, written as a CIFAR-10 folder that torchvision's CIFAR10
    # (the lab's per-image transforms) and prunetui's cifar10: loader (uint8, crop+flip per batch) read;
    # TeacherInputs maps their pixels / 255 back to the teacher's inputs (to 1/50): its labels hold.
    pixels = (train_x.clamp(-2.5, 2.5) * 50 + 128).round().to(torch.uint8)
    worker_counts = (0, size(4, 2))
    with fake_cifar(pixels, train_y) as root:
        lab = {w: lab_loader(root, 128, w) for w in worker_counts}
        ours = {w: load_data(f"cifar10:{root}", 128, num_workers=w).train for w in worker_counts}
    on_device = DeviceBatches((pixels.float() / 255).to(DEVICE), train_y.to(DEVICE), 128)
    next(iter(on_device))  # untimed warm-up
    device_s = clock(one_pass, on_device)[1]
    row("f data", f"crop+flip {count} images on the device (core.augment)", f"{device_s:.3f} s")
    for workers in worker_counts:
        lab_s, ours_s = clock(one_pass, lab[workers])[1], clock(one_pass, ours[workers])[1]
        row(
            "f data",
            f"crop+flip {count} images on the host (torchvision, PIL), {workers} workers",
            f"{lab_s:.3f} s; device / host **{device_s / lab_s:.3f}**",
        )
        row(
            "f data",
            f"crop+flip {count} images on the host (prunetui's cifar10 loader, per batch), {workers} workers",
            f"{ours_s:.3f} s; prunetui / torchvision **{ours_s / lab_s:.3f}**",
        )
    loaders = {
        "device (core.augment)": on_device,
        "host, prunetui's cifar10 loader, 0 workers": ours[0],
        **{f"host, torchvision, {w} workers": lab[w] for w in worker_counts},
    }
    pruned = copy.deepcopy(model)
    masks = prune(pruned, every_layer(pruned, 0.5))
    settings = FinetuneSettings(epochs=1)
    warm = TeacherInputs(DeviceBatches(on_device.images[:256], on_device.labels[:256], 128))
    core_finetune(copy.deepcopy(pruned), warm, held, masks, settings)  # untimed warm-up
    epoch = {}
    for name, batches in loaders.items():
        inputs = TeacherInputs(batches)
        result, epoch[name] = clock(core_finetune, copy.deepcopy(pruned), inputs, held, masks, settings)
        row(
            "f data",
            f"finetune epoch fed by crop+flip on the {name}",
            f"{epoch[name]:.2f} s",
            f"accuracy {result.best_accuracy:.2f}%",
        )
    reference = f"host, torchvision, {worker_counts[-1]} workers"
    for name in list(loaders)[:2]:
        row("f data", f"finetune epoch: {name} / {reference}", f"**{epoch[name] / epoch[reference]:.3f}**")
