"""Per-step host overhead of our finetune loop against a plain PyTorch loop, in microseconds a step.

    python benchmarks/finetune_overhead.py [--images 10000] [--rounds 8] [--device cpu] [--threads 1]

On a GPU as fast as an H200 a step of the lab VGG is a few milliseconds of kernels launched
asynchronously, so whatever Python and dispatch work a loop does per step shows in the epoch time.
This measures that work on any machine with a model whose arithmetic is negligible: an 8x8 average
pool (3x32x32 -> 48 values), then 9 linear layers 16 wide with ReLUs (as many masked layers as the lab
VGG). A step's time is then the dispatch of the same forward, backward and optimizer ops on both
sides, plus whatever only one side does.

Same data on both sides: `random:N:3x32x32` in batches of 64, as finetune_vs_plain.py, drawn once
from its DataLoader and held on the device (neither side times collation or copies). Every weight
layer pruned to 50%.
- Ours: `train_one_epoch` as `train_epochs` calls it (the run's scaler, its epoch count), with the
  TUI worker's report function (finetune_vs_plain.tui_report: progress throttled to ~10 messages/s)
  and a cancel event.
- Plain: the lab's step (zero_grad, forward, cross-entropy, backward, SGD step, cosine step) and the
  masks re-applied after it, one multiply per layer, as finetune_vs_plain.py's plain loop.
Each step is timed on its own: a clock read at its end (in ours by the report, which runs last in a
step; in plain by the loop), so a burst of load from another process spoils a few steps, not a round.
After an untimed epoch of each, rounds (one epoch each, on a fresh copy of the model) run in ABBA
order. Printed: each side's median microseconds a step over all its steps, and their difference, our
overhead a step. On CUDA the steps are launched, not waited for: that is the host's time a step.
"""

import argparse
import queue
import statistics
import threading
import time
from collections.abc import Callable

import torch
from finetune_vs_plain import tui_report
from timing import abba
from torch import nn

from prunetui.core.accel import grad_scaler
from prunetui.core.device import resolve_device
from prunetui.core.events import Event
from prunetui.core.finetune import FinetuneSettings, sgd_with_cosine, train_one_epoch
from prunetui.core.held_masks import hold_masks
from prunetui.core.pruning import prune
from prunetui.sources import load_data

LAYERS, WIDTH, SHRINK = 9, 16, 8
SETTINGS = FinetuneSettings(epochs=1, channels_last=False)  # lr, momentum, weight decay: both sides


def tiny_model(device: torch.device) -> tuple[nn.Module, dict]:
    """The same model each call: 8x8 average pool, then LAYERS linear layers WIDTH wide with ReLUs, 10
    classes; every weight layer pruned to 50% (masks: True = kept)."""
    torch.manual_seed(0)
    layers: list[nn.Module] = [nn.AvgPool2d(SHRINK), nn.Flatten()]
    width = 3 * (32 // SHRINK) ** 2
    for _ in range(LAYERS - 1):
        layers += [nn.Linear(width, WIDTH, bias=False), nn.ReLU(inplace=True)]
        width = WIDTH
    model = nn.Sequential(*layers, nn.Linear(width, 10)).to(device)
    masks = prune(model, {name: 0.5 for name, p in model.named_parameters() if p.dim() > 1})
    return model, masks


class StepClock:
    """Seconds each step took: `tick()` at the end of every step; `start()` before an epoch's first."""

    def __init__(self) -> None:
        self.steps: list[float] = []
        self._last = 0.0

    def start(self) -> None:
        self._last = time.perf_counter()

    def tick(self) -> None:
        now = time.perf_counter()
        self.steps.append(now - self._last)
        self._last = now


def plain_epoch(model: nn.Module, batches: list, masks: dict, clock: StepClock) -> Callable[[], None]:
    """One epoch of the lab's loop, ready to run (optimizer, schedule and masks made first, untimed)."""
    optimizer = torch.optim.SGD(
        model.parameters(), lr=SETTINGS.lr, momentum=SETTINGS.momentum, weight_decay=SETTINGS.weight_decay
    )
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, len(batches))
    criterion = nn.CrossEntropyLoss()
    params = dict(model.named_parameters())
    device = next(model.parameters()).device
    float_masks = {name: mask.to(device=device, dtype=torch.float32) for name, mask in masks.items()}

    def run() -> None:
        model.train()
        for inputs, targets in batches:
            inputs, targets = inputs.to(device), targets.to(device)
            optimizer.zero_grad()
            criterion(model(inputs), targets).backward()
            optimizer.step()
            scheduler.step()
            with torch.no_grad():
                for name, mask in float_masks.items():
                    params[name] *= mask
            clock.tick()

    return run


def our_epoch(model: nn.Module, batches: list, masks: dict, clock: StepClock) -> Callable[[], None]:
    """One `train_one_epoch` as `train_epochs` runs it, with the TUI's report and a cancel event."""
    optimizer, scheduler = sgd_with_cosine(model, SETTINGS, len(batches))
    held = hold_masks(model, masks)
    scaler = grad_scaler(SETTINGS.acceleration, next(model.parameters()).device)
    messages: queue.SimpleQueue = queue.SimpleQueue()
    tui, cancel = tui_report(messages.put), threading.Event()

    def report(event: Event) -> None:
        clock.tick()
        tui(event)

    def run() -> None:
        train_one_epoch(
            model,
            batches,
            optimizer,
            scheduler,
            held,
            1,
            report,
            cancel,
            accel=SETTINGS.acceleration,
            scaler=scaler,
            epochs=1,
        )

    return run


SIDES = {"reference": plain_epoch, "ours": our_epoch}


def run_epoch(which: str, batches: list, device: torch.device, clock: StepClock) -> None:
    """One epoch of `which` on a fresh model (setup untimed), its steps onto `clock`."""
    model, masks = tiny_model(device)
    run = SIDES[which](model, batches, masks, clock)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    clock.start()
    run()
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=10_000, help="random train images, 3x32x32")
    parser.add_argument("--rounds", type=int, default=8, help="plain/ours pairs of epochs, in ABBA order")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (tiny ops: 1 is steadiest)")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    data = load_data(f"random:{args.images}:3x32x32", batch_size=64)
    batches = [(images.to(device), labels.to(device)) for images, labels in data.train]
    print(
        f"{LAYERS} linear layers {WIDTH} wide on {device}, {args.images} random images of 3x32x32, batch 64 "
        f"({len(batches)} steps an epoch), {torch.get_num_threads()} threads, torch {torch.__version__}"
    )
    for which in SIDES:
        run_epoch(which, batches, device, StepClock())  # warm-up: first-call allocations, kernel choices
    clocks = {"reference": StepClock(), "ours": StepClock()}
    for which in abba(args.rounds):
        run_epoch(which, batches, device, clocks[which])
    plain = statistics.median(clocks["reference"].steps) * 1e6
    ours = statistics.median(clocks["ours"].steps) * 1e6
    steps = len(clocks["ours"].steps)
    print(f"plain loop: {plain:8.1f} us/step (median of {len(clocks['reference'].steps)} steps)")
    print(f"prunetui:   {ours:8.1f} us/step (median of {steps} steps)")
    print(f"overhead a step: {ours - plain:+.1f} us (ratio {ours / plain:.3f})")


if __name__ == "__main__":
    main()
