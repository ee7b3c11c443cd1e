"""The speed-up planner (`prunetui suggest --speedup`) measured: accuracy at a measured speed-up against two
baselines, the latency model's fidelity, and the planner's own time. Ratios within one run, one thread.

    .venv/bin/python benchmarks/speedup.py                      # all three parts (~30-40 min on 2 busy cores)
    .venv/bin/python benchmarks/speedup.py --part demo          # accuracy at 1.5x, 2x, 3x (batch 64)
    .venv/bin/python benchmarks/speedup.py --part fidelity      # resnet18 and the lab VGG, 20 profiles
    .venv/bin/python benchmarks/speedup.py --part time          # the planner's time on resnet18

- demo: the demo model on the real digits (its shipped weights). For each goal G (measured speed-up over
  dense at batch 64, CPU): the planner's profile; (a) one channel ratio on every group and (b) Torch-Pruning's
  global group-magnitude pruning (GroupMagnitudeImportance(p=2), global_pruning=True, the same groups:
  the classifier and the last conv ignored, as prunetui never prunes them), each at the least ratio whose
  measured speed-up reaches G (ratios 0.05 apart, each timed ABBA against dense with the planner's own
  harness). Accuracy on the held-out half of the digits test split (core.holdout, the images the planner
  never saw) after BN recalibration (20 training batches) and after a short finetune (--epochs, SGD
  0.01, momentum 0.9, cosine; the last epoch's weights: no choosing on the held-out images).
- fidelity: random weights (latency does not depend on them), 3x32x32 inputs; the latency model at batch
  1 and 64, then 20 random profiles (core.latency_model.random_profiles) measured whole (ABBA, 2 rounds):
  mean and largest |predicted - measured| / measured, and the same for the plain sum of the groups' own
  savings (the model without MAC cross terms), to show what the cross terms buy.
- time: `plan_speedup` for 2x at batch 64 on resnet18 (random weights, 512 random images), from an empty
  cache: the wall time of the whole plan, and of its latency model alone.
"""

import argparse
import copy
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from prunetui.core.channel import channel_groups, prune_channels  # noqa: E402
from prunetui.core.evaluate import evaluate  # noqa: E402
from prunetui.core.holdout import split_eval  # noqa: E402
from prunetui.core.latency_fit import random_profiles, relative_error  # noqa: E402
from prunetui.core.latency_model import measure_table, narrowed, setting_for  # noqa: E402
from prunetui.core.recalibrate import recalibrate_bn  # noqa: E402
from prunetui.core.timers import TorchTimer, measure_speedup  # noqa: E402
from prunetui.sources.models import build_model  # noqa: E402
from prunetui.workflow.goals import parse_goal  # noqa: E402
from prunetui.workflow.opening import Request, open_session  # noqa: E402
from prunetui.workflow.planning import SpeedupRequest, plan_speedup  # noqa: E402

RATIOS = [round(0.05 * i, 2) for i in range(1, 19)]


def say(text: str, style: str = "") -> None:
    print(f"  {text}", file=sys.stderr, flush=True)


# --- demo: accuracy at a measured speed-up ------------------------------------------------------------
def tp_global(base: nn.Module, example: torch.Tensor, ratio: float) -> nn.Module:
    """Torch-Pruning's global group-magnitude pruning of a copy at `ratio` (classifier and last conv kept)."""
    import torch_pruning as tp

    model = copy.deepcopy(base).eval()
    ignored = [model.classifier, model.backbone.conv4]
    pruner = tp.pruner.MagnitudePruner(
        model, example, importance=tp.importance.GroupMagnitudeImportance(p=2), global_pruning=True,
        pruning_ratio=ratio, ignored_layers=ignored,
    )  # fmt: skip
    pruner.step()
    return model.eval()


def least_reaching(make, goal: float, dense_run, timer, batch: int, rounds: int):
    """(ratio, model, Speedup) of the least ratio whose measured speed-up reaches `goal` (None if none)."""
    for ratio in RATIOS:
        model = make(ratio)
        measured = measure_speedup(dense_run, timer.prepare(model), [batch], rounds)[batch]
        if measured.ratio >= goal:
            return ratio, model, measured
    return None


def finetuned_accuracy(model: nn.Module, train, held_out, epochs: int) -> float:
    model = copy.deepcopy(model)
    steps = epochs * len(train)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    for _ in range(epochs):
        model.train()
        for images, labels in train:
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(images), labels).backward()
            optimizer.step()
            schedule.step()
    return evaluate(model, held_out)


def demo(args) -> None:
    torch.manual_seed(0)
    session = open_session(Request(model="demo", state_dir=tempfile.mkdtemp())).session
    base, example = session.state.base, session.example_input()
    groups = [g.name for g in channel_groups(base, example) if g.prunable]
    held_out = split_eval(session.data.eval).held_out
    timer = TorchTimer(example, args.threads, args.run_time)
    dense_run = timer.prepare(base)
    dense = evaluate(base, held_out)
    print(f"demo, held-out dense accuracy {dense:.2f}%, batch {args.batch}, {args.threads} thread(s)")
    print("| goal | method | ratio | measured speed-up (spread) | held-out, BN recalibrated | "
          f"held-out, finetuned {args.epochs} ep |\n|---|---|---|---|---|---|")  # fmt: skip
    for goal in args.goals:
        started = time.perf_counter()
        request = SpeedupRequest(parse_goal(f"{goal}x", 1.0), (args.batch,), threads=args.threads)
        planned = plan_speedup(session, request, say)
        plan_seconds = time.perf_counter() - started
        found = {}
        if planned.best is not None:
            model = narrowed(base, example, planned.best.widths, planned.table.channels)
            found["planner"] = (
                "-",
                model,
                measure_speedup(dense_run, timer.prepare(model), [args.batch], 3)[args.batch],
            )
        uniform = least_reaching(lambda r: prune_channels(base, example, dict.fromkeys(groups, r)).model,
                                 goal, dense_run, timer, args.batch, 2)  # fmt: skip
        tp = least_reaching(lambda r: tp_global(base, example, r), goal, dense_run, timer, args.batch, 2)
        for name, result in (("uniform", uniform), ("tp-global", tp)):
            if result is not None:
                found[name] = result
        for name in ("planner", "uniform", "tp-global"):
            if name not in found:
                print(f"| {goal}x | {name} | | not reached | | |", flush=True)
                continue
            ratio, model, measured = found[name]
            model = copy.deepcopy(model)
            recalibrate_bn(model, session.train)
            recalibrated = evaluate(model, held_out)
            tuned = finetuned_accuracy(model, session.train, held_out, args.epochs)
            note = f" (planned in {plan_seconds:.0f} s)" if name == "planner" else ""
            print(f"| {goal}x | {name}{note} | {ratio} | {measured.ratio:.2f}x ({measured.low:.2f}-{measured.high:.2f}) "
                  f"| {recalibrated:.2f} | {tuned:.2f} |", flush=True)  # fmt: skip


# --- fidelity ----------------------------------------------------------------------------------------
def fidelity(args) -> None:
    x = torch.zeros(1, 3, 32, 32)
    print(
        "| model | batch | dense ms | mean error | largest error | mean error, sum of groups alone | table s |"
    )
    print("|---|---|---|---|---|---|---|")
    for spec in args.models:
        torch.manual_seed(0)
        model = build_model(spec).eval()
        groups = [g for g in channel_groups(model, x) if g.prunable]
        timer = TorchTimer(x, args.threads, args.run_time)
        for batch in (1, 64):
            started = time.perf_counter()
            table = measure_table(model, x, groups, setting_for(model, timer, (batch,), 1), timer, sweeps=1)
            dense_run = timer.prepare(model)
            errors, plain = [], []
            checks = []
            for widths in random_profiles(table, args.profiles, seed=batch):
                pruned = narrowed(model, x, widths, table.channels)
                measured = measure_speedup(dense_run, timer.prepare(pruned), [batch], 2)[batch]
                checks.append(
                    {"widths": widths, "ratio": measured.ratio, "low": measured.low, "high": measured.high}
                )
                errors.append(relative_error(table.predict(widths, batch), measured.ratio))
                alone = 1 + sum(table.groups[n].fraction(w, batch) - 1 for n, w in widths.items())
                plain.append(relative_error(max(0.02, alone), measured.ratio))
            if args.dump:  # the table and the measurements, to compare prediction rules without timing again
                name = f"{spec.replace(':', '_')}-{batch}.json"
                (Path(args.dump) / name).write_text(json.dumps({"table": table.as_json(), "checks": checks}))
            print(f"| {spec} | {batch} | {table.dense_ms[batch]:.2f} | {statistics.mean(errors):.1%} | "
                  f"{max(errors):.1%} | {statistics.mean(plain):.1%} | {table.seconds:.0f} s "
                  f"(all {time.perf_counter() - started:.0f} s) |", flush=True)  # fmt: skip


# --- the planner's time --------------------------------------------------------------------------------
def planner_time(args) -> None:
    state = tempfile.mkdtemp()
    opened = open_session(
        Request(model="torchvision:resnet18:10", data="random:512:3x32x32", state_dir=state)
    )
    request = SpeedupRequest(parse_goal("2x", 1.0), (64,), threads=args.threads)
    started = time.perf_counter()
    planned = plan_speedup(opened.session, request, say)
    total = time.perf_counter() - started
    reached = ", ".join(f"{s.ratio:.2f}x" for s in planned.speedup.values()) or "none"
    print(
        f"| resnet18 (32x32, random weights) | 2x at batch 64 | {total:.0f} s | latency model "
        f"{planned.table.seconds:.0f} s | measured {reached} | {len(planned.search.candidates)} candidates |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["demo", "fidelity", "time", "all"], default="all")
    parser.add_argument("--goals", type=lambda t: [float(g) for g in t.split(",")], default=[1.5, 2.0, 3.0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=3, help="the short finetune")
    parser.add_argument("--run-time", type=float, default=0.1, help="seconds per baseline timing")
    parser.add_argument(
        "--models", type=lambda t: t.split(","), default=["torchvision:resnet18:10", "vgg-cifar"]
    )
    parser.add_argument("--profiles", type=int, default=20)
    parser.add_argument(
        "--dump", metavar="DIR", help="fidelity: write each table and its checks as JSON here"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), cpu", flush=True)
    if args.part in ("demo", "all"):
        demo(args)
    if args.part in ("fidelity", "all"):
        fidelity(args)
    if args.part in ("time", "all"):
        planner_time(args)


if __name__ == "__main__":
    main()
