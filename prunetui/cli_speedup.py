"""`prunetui suggest --speedup 2x [--max-drop 1.0] [--batch 1,64] [--runtime torch|onnxruntime]
[--round-to N]`: channel widths planned on this device's measured latency (workflow.planning,
timed with the session's threads: --threads), then the model pruned to them, BN recalibrated,
measured and recorded as a run.

The flags are read and checked here without torch, so a bad one is one `error:` line at once.
"""

import argparse

from prunetui.errors import UserError

RUNTIMES = ("torch", "onnxruntime")  # core.timers.RUNTIMES, named here so --help loads no torch
ONLY_SIZE_GOALS = ("per_layer", "lock", "use_global", "cap")  # --recalibrate-bn: implied by --speedup


def add_flags(suggest: argparse.ArgumentParser, goal) -> None:
    """`--speedup` joins the goal group (`goal`: --budget's mutually exclusive group); the others are
    the speed-up's settings."""
    goal.add_argument(
        "--speedup",
        metavar="RATIO",
        help="measured speed-up over dense to reach, e.g. 2x: plans channel widths on this device's "
        "latency (with --max-drop: the tolerated accuracy loss in points, judged on held-out images)",
    )
    group = suggest.add_argument_group("speed-up goals (--speedup)")
    group.add_argument(
        "--batch",
        metavar="N[,N]",
        default="1",
        help="batch sizes that must each reach the speed-up (default 1)",
    )
    group.add_argument(
        "--runtime", choices=RUNTIMES, default="torch",
        help="where latency is measured: torch (eager) or onnxruntime (the exported ONNX model, CPU)",
    )  # fmt: skip
    group.add_argument(
        "--round-to", type=int, metavar="N",
        help="kept widths are multiples of N (default: 8 on CUDA, 1 on the CPU; Torch-Pruning's round_to)",
    )  # fmt: skip


def check_goal(args: argparse.Namespace) -> None:
    """`suggest` has one goal: --budget, --max-drop, or --speedup (which takes --max-drop as its
    tolerance); speed-up settings go with --speedup only. UserError otherwise."""
    if args.command != "suggest":
        return
    if args.speedup is None:
        if args.budget is None and args.max_drop is None:
            raise UserError("suggest needs a goal: --budget, --max-drop or --speedup")
        if args.budget is not None and args.max_drop is not None:
            raise UserError(
                "--max-drop and --budget are two goals: give one (--max-drop goes with --speedup)"
            )
        given = [f for f, d in (("--batch", "1"), ("--runtime", "torch")) if getattr(args, f[2:]) != d]
        given += ["--round-to"] if args.round_to is not None else []
        if given:
            raise UserError(f"{', '.join(given)} go with --speedup")
        return
    for name in ONLY_SIZE_GOALS:
        if getattr(args, name, None):
            flag = "--" + {"use_global": "global"}.get(name, name).replace("_", "-")
            raise UserError(f"{flag} goes with --budget or --max-drop, not --speedup")
    if getattr(args, "method", None) not in (None, "channel"):
        raise UserError("--speedup plans channel widths: drop --method or use --method channel")
    request(args)  # the goal and the batches parse


def request(args: argparse.Namespace):
    """The flags as a workflow.planning.SpeedupRequest (UserError naming the flag)."""
    from prunetui.workflow.goals import parse_batches, parse_goal
    from prunetui.workflow.planning import SpeedupRequest, check_request

    text = args.speedup.strip().lower()
    try:
        goal = parse_goal(text if text.endswith("x") else f"{text}x", 1.0)
        batches = parse_batches(args.batch)
    except ValueError as error:
        raise UserError(f"bad --speedup '{args.speedup}' or --batch '{args.batch}': {error}") from None
    if goal.kind != "speedup":
        raise UserError(f"bad --speedup '{args.speedup}': expected a ratio such as 2x")
    built = SpeedupRequest(
        goal, goal.batches or batches, args.max_drop, args.runtime, args.round_to, args.threads
    )
    check_request(built)
    return built


def suggest_speedup(opened, args: argparse.Namespace) -> dict:
    """Plan, then (when a profile measured faster than dense) prune to it with BN recalibration, measure
    its cost at the largest batch asked for, and write --out. The JSON: workflow.planning.planned_json's
    keys and the prune's (accuracy_before, accuracy_recalibrated, the cost keys, channels, run)."""
    from pathlib import Path

    from prunetui.cli_progress import progress_bar
    from prunetui.commands import _console, _run_number, _sayer
    from prunetui.core.profile import save_profile
    from prunetui.core.recipe import Recovery
    from prunetui.workflow import channel_steps, planning, steps

    session = opened.session
    built = request(args)
    if args.out and Path(args.out).exists():
        raise UserError(f"{args.out} exists (choose another name)")
    pruned = None
    with progress_bar(_console(args.json)) as (console, bar):
        say = _sayer(console)
        planned = planning.plan_speedup(session, built, say, bar)
        if planned.best is not None:
            session.set_method("channel")
            session.targets = {name: planned.targets.get(name, 0.0) for name in session.layer_names}
            session.profile_name = f"speedup {built.goal.value:g}x"
            session.cost.latency_batch = max(built.batches)
            recipe = session.recipe(recovery=Recovery(recalibrate_bn=True))
            pruned = steps.prune(session, say, bar, None, recipe)
            if args.out:
                save_profile(
                    session.profile(Path(args.out).stem, "planned by prunetui for a measured speed-up"),
                    args.out,
                )
                say(f"Wrote {args.out}")
    return {
        "model": session.label,
        "method": "channel",
        **planning.planned_json(planned),
        "accuracy_before": pruned.accuracy_before if pruned else None,
        "accuracy_recalibrated": pruned.accuracy_recalibrated if pruned else None,
        **(session.run_cost() if pruned else {}),
        **(channel_steps.channels_json(session) if pruned else {}),
        "run": _run_number(session, session.current_run) if pruned else None,
    }
