"""Recovery and suggestions on the demo (issue 16): uniform, global magnitude and prunetui's suggestion at
25%, 15% and 10% of dense, each measured before finetuning, after BatchNorm recalibration, and after 2
epochs of finetuning (one-shot vs AGP, with and without distillation from the dense model; mean and
spread over 3 seeds). Prints a table of accuracy and time, then checks suggest >= global >= uniform.

    python benchmarks/recovery.py            # a few minutes on 2 CPU cores
    python benchmarks/recovery.py --seeds 1 --budgets 10
    python benchmarks/recovery.py --timing   # also times the recovery steps on vgg-cifar with random data

Every accuracy is on the same evaluation split with the same evaluation. The suggestion is made twice:
planned and measured without recalibration (the "before" column), and with it (every other column).
"""

import argparse
import statistics
import sys
import time

import torch

from prunetui.core.evaldata import standard_error
from prunetui.core.finetune import FinetuneSettings
from prunetui.core.session import Session
from prunetui.sources import load_data, load_model
from prunetui.workflow import recovery, steps
from prunetui.workflow.goals import parse_goal

GRID = [round(0.4 + 0.05 * i, 2) for i in range(12)]  # `prunetui suggest`'s default grid
TRAINING = {  # column -> (schedule, distill); "recal+oneshot": BN recalibration between prune and finetune
    "oneshot": ("oneshot", False),
    "recal+oneshot": ("recal", False),
    "oneshot+KD": ("oneshot", True),
    "agp": ("agp", False),
    "agp+KD": ("agp", True),
}


def suggestion(session: Session, budget: str, recalibrate: bool) -> tuple[dict, float]:
    """The targets `prunetui suggest --budget B [--recalibrate-bn]` chooses, and the seconds it took."""
    started = time.perf_counter()
    options = recovery.scan_options(recalibrate)
    scan = session.scan(GRID, options=options, use_cache=False)
    goal = parse_goal(budget, session.dense_size)
    proposal = steps.propose_targets(session, steps.scan_table(session, scan), goal, {})
    measured = recovery.measure_and_refine(session, proposal, goal, steps.say_nothing, {}, recalibrate)
    return measured.suggestion.targets, time.perf_counter() - started


def finetuned(session: Session, targets: dict, schedule: str, distill: bool, seed: int) -> float:
    torch.manual_seed(seed)
    session.targets = dict(targets)
    gradual = {n: s for n, s in targets.items() if s > 0} if schedule == "agp" else None
    if schedule == "agp":
        session.reset()
    else:
        session.prune(targets)
        if schedule == "recal":
            session.recalibrate()
    settings = FinetuneSettings(
        epochs=2,
        schedule="agp" if schedule == "agp" else "oneshot",
        gradual_targets=gradual,
        distill=distill,
    )
    result = session.finetune(settings)
    return result.best_accuracy


def row(session: Session, name: str, before_targets: dict, targets: dict, seeds: int, made_in: float) -> dict:
    out = {"profile": name, "size": session.percent(session.projected_size(targets))}
    with session.scratch():
        out["before"] = session.measure_targets(before_targets)
        out["recal"] = session.measure_targets(targets, recalibrate=True)
    out["seconds"] = made_in
    for column, (schedule, distill) in TRAINING.items():
        started, accuracies = time.perf_counter(), []
        for seed in range(seeds):
            accuracies.append(finetuned(session, targets, schedule, distill, seed))
        out[column] = accuracies
        out[f"{column} s"] = (time.perf_counter() - started) / seeds
    session.reset()
    return out


def cell(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:6.2f}"
    return f"{statistics.mean(values):6.2f}±{statistics.pstdev(values):.2f}"


def print_table(rows: list[dict], budget: str) -> None:
    print(f"\n### {budget} of dense\n")
    head = ["profile", "% dense", "before", "BN recal", *TRAINING, "made in s", "ft s (oneshot/agp)"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows:
        times = f"{r['oneshot s']:.1f}/{r['agp s']:.1f}"
        cells = [r["profile"], f"{r['size']:.2f}", f"{r['before']:.2f}", f"{r['recal']:.2f}"]
        cells += [cell(r[c]) for c in TRAINING] + [f"{r['seconds']:.1f}", times]
        print("| " + " | ".join(cells) + " |")


def check(rows: list[dict], images: int) -> bool:
    """suggest >= global >= uniform before and after recalibration; a shortfall within one standard
    error of the lower accuracy (both at chance, say) is reported as a tie, not hidden."""
    by = {r["profile"]: r for r in rows}
    ok = True
    for column in ("before", "recal"):
        for high, low in (("suggest", "global"), ("global", "uniform")):
            a, b = by[high][column], by[low][column]
            noise = standard_error(max(min(a, b), 1.0), images)
            verdict = "holds" if a >= b else ("tie within noise" if b - a <= noise else "FAILS")
            ok &= verdict != "FAILS"
            print(f"  {column:6} {high} {a:6.2f} >= {low} {b:6.2f}: {verdict} (±{noise:.2f})")
    return ok


def timing() -> None:
    """The recovery steps' cost on the lab's VGG with random data (numbers meaningless, time real)."""
    model, label = load_model("vgg-cifar")
    data = load_data("random:256:3x32x32")
    session = Session(model, data, label)
    budget = 0.25 * session.dense_size
    for name, call in [
        ("global targets", lambda: session.global_targets(budget)),
        ("uniform targets", lambda: session.uniform_targets(budget)),
    ]:
        started = time.perf_counter()
        targets = call()
        print(f"vgg-cifar {name}: {time.perf_counter() - started:.2f} s")
    with session.scratch():
        started = time.perf_counter()
        session.measure_targets(targets, recalibrate=True)
        print(f"vgg-cifar one measured candidate (prune + BN recalibration + evaluation, 256 random images): "
              f"{time.perf_counter() - started:.2f} s")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--budgets", default="25,15,10", help="percents of dense")
    parser.add_argument("--timing", action="store_true", help="also time the steps on vgg-cifar")
    args = parser.parse_args()
    torch.set_num_threads(1)
    model, label = load_model("demo")
    session = Session(model, load_data("digits"), label)
    session.evaluate()
    images = sum(len(labels) for _, labels in session.data.eval)
    print(f"demo, dense {session.dense_accuracy:.2f}%, {images} evaluation images, {args.seeds} seed(s)")
    ok, started = True, time.perf_counter()
    for percent in args.budgets.split(","):
        budget = f"{percent.strip()}%"
        mib = parse_goal(budget, session.dense_size).value
        plain, plain_s = suggestion(session, budget, recalibrate=False)
        recal, recal_s = suggestion(session, budget, recalibrate=True)
        uniform, global_ = session.uniform_targets(mib), session.global_targets(mib)
        rows = [
            row(session, "uniform", uniform, uniform, args.seeds, 0.0),
            row(session, "global", global_, global_, args.seeds, 0.0),
            row(session, "suggest", plain, recal, args.seeds, plain_s + recal_s),
        ]
        print_table(rows, budget)
        ok &= check(rows, images)
    print(f"\nwhole benchmark: {time.perf_counter() - started:.0f} s")
    if args.timing:
        timing()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
