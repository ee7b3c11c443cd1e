"""Finetune as the TUI drives it against a plain PyTorch loop, same model, data, masks and epochs.

    python benchmarks/finetune_vs_plain.py [--images 512] [--epochs 2] [--rounds 2] [--device cpu]
                                           [--channels-last off] [--app [--app-threads N]]

Ours: `prunetui.core.finetune.finetune` in a worker thread with the TUI worker's own report function
(`prunetui.tui.jobs.JobContext.report`: progress throttled to ~10 messages/s, one message per epoch),
its messages posted to a queue that the main thread drains, as the app's event loop does; the main
thread also measures how late a 20 ms timer fires (what a key press waits). Plain: the lab's loop in
the main thread (SGD, cosine schedule per step, masks re-applied after every step, evaluation and a
copy of the best weights each epoch). The lab's VGG, 50% of every layer pruned, random 3x32x32 data.
After an untimed epoch of each, rounds run in ABBA order; the ratio is of mean epoch time (wall and CPU).
With --app, ours is the TUI itself, headless, driven by key presses, with the torch threads `run_app`
sets; a j/k key posted every 0.2 s is timed until the layer table's cursor moves.
"""

import argparse
import asyncio
import copy
import queue
import statistics
import tempfile
import threading
import time

import torch
from timing import LatenessProbe, abba, means, timed
from torch import nn

from prunetui.core.device import resolve_device
from prunetui.core.events import Progress
from prunetui.core.finetune import FinetuneSettings, finetune
from prunetui.core.pruning import prune
from prunetui.sources import load_data
from prunetui.sources.vgg import VGG


# --- the plain loop, as the lab writes it ----------------------------------------------------------
@torch.inference_mode()
def plain_evaluate(model: nn.Module, dataloader, device) -> float:
    model.eval()
    correct = seen = 0
    for inputs, targets in dataloader:
        inputs, targets = inputs.to(device), targets.to(device)
        correct += (model(inputs).argmax(dim=1) == targets).sum()
        seen += targets.size(0)
    return (correct / seen * 100).item()


def plain_finetune(model: nn.Module, data, masks: dict, settings: FinetuneSettings, device) -> float:
    optimizer = torch.optim.SGD(
        model.parameters(), lr=settings.lr, momentum=settings.momentum, weight_decay=settings.weight_decay
    )
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, settings.epochs * len(data.train))
    criterion = nn.CrossEntropyLoss()
    params = dict(model.named_parameters())
    float_masks = {name: mask.to(device=device, dtype=torch.float32) for name, mask in masks.items()}
    best_accuracy, best_state = 0.0, None
    for _ in range(settings.epochs):
        model.train()
        for inputs, targets in data.train:
            inputs, targets = inputs.to(device), targets.to(device)
            optimizer.zero_grad()
            criterion(model(inputs), targets).backward()
            optimizer.step()
            scheduler.step()
            with torch.no_grad():
                for name, mask in float_masks.items():
                    params[name] *= mask
        accuracy = plain_evaluate(model, data.eval, device)
        if accuracy > best_accuracy:
            best_accuracy, best_state = accuracy, copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    return best_accuracy


# --- ours, as the TUI runs it ------------------------------------------------------------------------
def tui_report(post):
    """The TUI worker's report function, `JobContext.report`; where Textual is not installed (a GPU box
    set up for benchmarks only) the same throttle, restated: progress at most every 0.1 s, the rest posted."""
    try:
        from prunetui.tui.jobs import JobContext
    except ImportError:
        last = [0.0]

        def report(event) -> None:
            if isinstance(event, Progress):
                now = time.monotonic()
                if now - last[0] < 0.1 and event.done != event.total:
                    return
                last[0] = now
            post(event)

        return report
    return JobContext(post, threading.Event()).report


def tui_finetune(model: nn.Module, data, masks: dict, settings: FinetuneSettings) -> tuple[float, str, int]:
    """(best accuracy, lateness summary, messages posted)."""
    messages: queue.SimpleQueue = queue.SimpleQueue()
    report = tui_report(messages.put)
    outcome = {}
    worker = threading.Thread(
        target=lambda: outcome.update(result=finetune(model, data.train, data.eval, masks, settings, report))
    )
    posted = 0
    with LatenessProbe() as probe:
        worker.start()
        while worker.is_alive() or not messages.empty():
            try:
                messages.get(timeout=0.02)
                posted += 1
            except queue.Empty:
                pass
        worker.join()
    return outcome["result"].best_accuracy, probe.summary(), posted


# --- ours, in the real app -------------------------------------------------------------------------
def app_finetune(
    data, settings: FinetuneSettings, device, threads: int | None = None
) -> tuple[float, float, float, list[float]]:
    """The TUI itself, headless: prune, then `f`, the epochs typed into the dialog, `enter`; torch threads
    set as `run_app` sets them unless `threads` is given. (best accuracy, wall seconds, CPU seconds, seconds each `j` pressed
    meanwhile took to be answered)."""
    from prunetui.core.session import Session
    from prunetui.tui.app import PruneApp

    torch.manual_seed(0)
    session = Session(VGG().to(device), data, "vgg-cifar")
    for name in session.layer_names:
        session.set_target(name, 0.5)
    session.prune()
    before = torch.get_num_threads()
    torch.set_num_threads(threads or before)  # run_app leaves torch's default: every core
    try:
        with tempfile.TemporaryDirectory() as workdir:
            return asyncio.run(_drive_app(PruneApp(session, workdir=workdir), settings.epochs))
    finally:
        torch.set_num_threads(before)


async def _drive_app(app, epochs: int) -> tuple[float, float, float, list[float]]:
    app.animation_level = "none"
    latencies = []
    async with app.run_test(size=(120, 40)) as pilot:
        while app.workbench.busy or app.workbench.session.accuracy is None:  # the dense evaluation at start
            await pilot.pause(0.05)
        await pilot.press("f")
        app.screen.query_one("#epochs").value = str(epochs)
        wall, cpu = time.perf_counter(), time.process_time()
        await pilot.press("enter")
        key = "j"
        while app.workbench.busy:
            latencies.append(await _key_answer_seconds(app, key))
            key = "k" if key == "j" else "j"
            await asyncio.sleep(0.2)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return app.workbench.session.accuracy, wall, cpu, latencies


async def _key_answer_seconds(app, key: str, timeout: float = 5.0) -> float:
    """From posting `key` (j/k: move the layer table's cursor) until the cursor has moved.

    (Pilot.press cannot time this: it waits until the whole process idles, which training never does.)
    """
    from prunetui.tui.widgets.layer_table import LayerTable

    table = app.query_one(LayerTable)
    row, pressed = table.cursor_row, time.perf_counter()
    app.simulate_key(key)
    while table.cursor_row == row and time.perf_counter() - pressed < timeout:
        await asyncio.sleep(0.001)
    return time.perf_counter() - pressed


def pruned_vgg(device, sparsity: float = 0.5) -> tuple[nn.Module, dict]:
    torch.manual_seed(0)
    model = VGG().to(device)
    masks = prune(model, {name: sparsity for name, p in model.named_parameters() if p.dim() > 1})
    return model, masks


def warm_up(data, settings: FinetuneSettings, device) -> None:
    """One untimed epoch of each (first-call kernel selection and allocations), so no round runs cold."""
    one_epoch = FinetuneSettings(epochs=1, channels_last=settings.channels_last)
    model, masks = pruned_vgg(device)
    plain_finetune(model, data, masks, one_epoch, device)
    model, masks = pruned_vgg(device)
    tui_finetune(model, data, masks, one_epoch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=512, help="random train images, 3x32x32")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2, help="plain/ours pairs, in ABBA order")
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--channels-last",
        choices=["auto", "off"],
        default="auto",
        help="off: our finetune runs the plain loop's kernels, so the ratio is the worker's own overhead",
    )
    parser.add_argument(
        "--app",
        action="store_true",
        help="ours: the real TUI, headless, driven by key presses, its thread count",
    )
    parser.add_argument(
        "--app-threads", type=int, help="with --app: torch threads (default: torch's, as in run_app)"
    )
    args = parser.parse_args()

    device = resolve_device(args.device)
    data = load_data(f"random:{args.images}:3x32x32", batch_size=64, eval_batch_size=256)
    settings = FinetuneSettings(
        epochs=args.epochs, channels_last=False if args.channels_last == "off" else None
    )
    print(
        f"lab VGG on {device}, {args.images} random images of 3x32x32, batch 64, {args.epochs} epochs, "
        f"{torch.get_num_threads()} threads, channels_last {args.channels_last}"
    )
    warm_up(data, settings, device)
    times = {"reference": [], "ours": []}
    for which in abba(args.rounds):
        model, masks = pruned_vgg(device)
        if which == "reference":
            accuracy, wall, cpu = timed(plain_finetune, model, data, masks, settings, device)
            extra = ""
        elif args.app:
            accuracy, wall, cpu, latencies = app_finetune(data, settings, device, args.app_threads)
            ms = sorted(x * 1000 for x in latencies)
            extra = f"; key `j` answered in median {statistics.median(ms):.0f} ms, max {ms[-1]:.0f} ms"
        else:
            (accuracy, lateness, posted), wall, cpu = timed(tui_finetune, model, data, masks, settings)
            extra = f"; {posted} messages; {lateness}"
        times[which].append((wall / args.epochs, cpu / args.epochs))
        name = "plain" if which == "reference" else "ours"
        print(
            f"  {name:<5} {wall / args.epochs:6.2f} s/epoch wall {cpu / args.epochs:6.2f} CPU, best {accuracy:.2f}%{extra}"
        )
    (plain_wall, plain_cpu), (ours_wall, ours_cpu) = means(times["reference"]), means(times["ours"])
    print(f"plain loop: {plain_wall:6.2f} s/epoch wall, {plain_cpu:6.2f} s/epoch CPU")
    print(f"prunetui:   {ours_wall:6.2f} s/epoch wall, {ours_cpu:6.2f} s/epoch CPU")
    print(
        f"ratio prunetui / plain: {ours_wall / plain_wall:.3f} wall, {ours_cpu / plain_cpu:.3f} CPU (goal <= 1.05)"
    )


if __name__ == "__main__":
    main()
