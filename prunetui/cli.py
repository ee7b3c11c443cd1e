"""Command line: bare `prunetui` opens the TUI; `info`, `scan`, `prune` run headless.

torch and the engine are imported lazily so `--help` and bad arguments answer at once.
"""

import argparse
import json
import math
import os
import sys
from collections.abc import Sequence
from functools import partial
from pathlib import Path

from prunetui import cli_recipe, cli_speedup
from prunetui.core.grid import parse_grid
from prunetui.core.recipe import METHODS
from prunetui.errors import JobFailed, UserError, write_crash_log

METHOD_NAMES = tuple(METHODS)  # core.recipe's registry: no torch for --help

EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 1
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a closed pipe


class Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one `error:` line and exit 2."""

    def error(self, message: str):
        raise UserError(message)


def _add_common(parser: argparse.ArgumentParser, top_level: bool) -> None:
    # Options may come before or after the command; a subcommand must not reset what the top level set.
    default = None if top_level else argparse.SUPPRESS
    parser.add_argument(
        "--model",
        default=default,
        metavar="SPEC",
        help="demo (default), vgg-cifar, lenet-300-100, lenet5, torchvision:NAME[:CLASSES], timm:NAME[:CLASSES], "
        "module.path:factory or file.py:factory",
    )
    parser.add_argument(
        "--checkpoint",
        default=default,
        metavar="PATH",
        help="a state_dict (.pt, .pth, .safetensors), a training checkpoint holding one (under "
        "state_dict, model, ...) or a prunetui export (loaded weights_only)",
    )
    parser.add_argument(
        "--checkpoint-key",
        default=default,
        metavar="KEY",
        help="which weights in a --checkpoint holding several (e.g. state_dict or state_dict_ema; "
        "default: the EMA copy, then state_dict, model, ...)",
    )
    parser.add_argument(
        "--data",
        default=default,
        metavar="SPEC",
        help="digits (demo default), mnist5k (pip install 'prunetui[mnist5k]'), cifar10:DIR, "
        "mnist:DIR, fashion-mnist:DIR, imagefolder:DIR, tensor:FILE.pt, random:N:CxHxW",
    )
    parser.add_argument(
        "--device",
        default=default,
        metavar="DEV",
        help="auto (default: CUDA, then MPS, else CPU), cpu, cuda[:N], mps",
    )
    if not top_level:
        parser.add_argument("--json", action="store_true", help="one JSON document on stdout")
    parser.add_argument("--profile", default=default, metavar="TOML", help="sparsity profile to load")
    parser.add_argument(
        "--threads",
        type=int,
        default=default,
        metavar="N",
        help="torch's CPU threads (default: $PRUNETUI_THREADS, else torch's: one per core)",
    )
    parser.add_argument(
        "--state-dir",
        default=default,
        metavar="DIR",
        help="where run records and scan caches live (default: $PRUNETUI_STATE_DIR, else .prunetui)",
    )
    parser.add_argument(
        "--method",
        default=default,
        choices=METHOD_NAMES,
        help="pruning method (overrides the profile's). "
        + "; ".join(f"{name}: {traits.summary}" for name, traits in METHODS.items()),
    )


def build_parser() -> Parser:
    parser = Parser(prog="prunetui", description="Interactive pruning workbench for PyTorch CNNs.")
    _add_common(parser, top_level=True)
    commands = parser.add_subparsers(dest="command", parser_class=Parser)

    info = commands.add_parser("info", help="layers, sizes and sparsity of the model")
    _add_common(info, top_level=False)

    scan = commands.add_parser("scan", help="sensitivity scan: accuracy with each layer alone pruned")
    _add_common(scan, top_level=False)
    scan.add_argument(
        "--sparsities", default="0.4:1.0:0.1", help="0.4,0.5 or start:stop:step (stop excluded)"
    )
    scan.add_argument(
        "--layers",
        help="comma-separated layer names, full or their unique end (conv0.weight, conv0) "
        "(default: every prunable layer)",
    )
    scan.add_argument("--eval-size", type=int, metavar="N", help="evaluate on the first N images only")
    scan.add_argument("--no-cache", action="store_true", help="scan again even if .prunetui/scans has it")
    _add_amp(scan)
    _add_activation_budget(scan)
    cli_recipe.add_recalibrate(scan, "before each point is measured (curves of what recovery gives)")
    cli_recipe.add_processes(scan)

    prune = commands.add_parser("prune", help="prune to a profile, optionally finetune, report and export")
    _add_common(prune, top_level=False)
    prune.add_argument(
        "--latency-batch",
        type=int,
        default=1,
        metavar="N",
        help="also time dense and pruned at batch N (latency at batch 1 is always measured)",
    )
    prune.add_argument(
        "--regrow",
        action="store_true",
        help="let finetuning regrow the weights that were already zero in --checkpoint (default: held)",
    )
    _add_amp(prune)
    cli_recipe.add_prune_flags(prune)

    runs = commands.add_parser("runs", help="the runs recorded in this directory for this model")
    _add_common(runs, top_level=False)

    resume = commands.add_parser("resume", help="go on with an interrupted finetune run")
    _add_common(resume, top_level=False)
    resume.add_argument("run_id", metavar="RUN", help="the run's number in `prunetui runs`, or its id")
    cli_recipe.add_outputs(resume)
    cli_recipe.add_processes(resume)

    replay = commands.add_parser("replay", help="run a recorded run again and compare every figure")
    _add_common(replay, top_level=False)
    replay.add_argument("run_id", metavar="RUN", help="the run's number in `prunetui runs`, or its id")

    suggest = commands.add_parser("suggest", help="propose targets for a size budget or a tolerated drop")
    _add_common(suggest, top_level=False)
    goal = suggest.add_mutually_exclusive_group()  # one goal: cli_speedup.check_goal
    goal.add_argument("--budget", help="largest size: a percent of dense (25%%) or MiB (4.5)")
    suggest.add_argument("--max-drop", type=float, metavar="POINTS", help="tolerated predicted accuracy drop")
    cli_speedup.add_flags(suggest, goal)
    suggest.add_argument("--per-layer", action="store_true", help="--max-drop applies to each layer alone")
    suggest.add_argument(
        "--lock",
        metavar="LAYERS",
        help="comma-separated layers kept at their --profile target (full names or a unique end, as --layers)",
    )
    suggest.add_argument(
        "--sparsities",
        default="0.4:1.0:0.1",
        help="scan grid (default 0.4:1.0:0.1: scan's and the workbench's, so both suggest the same)",
    )
    suggest.add_argument("--out", metavar="TOML", help="write the suggested profile here")
    _add_activation_budget(suggest)
    cli_recipe.add_suggest_flags(suggest)
    return parser


def parse_sparsities(text: str) -> list[float]:
    """`--sparsities`: core.recipe.parse_grid, the parser the workbench's scan settings use too."""
    try:
        return parse_grid(text)
    except ValueError as e:
        raise UserError(f"bad --sparsities '{text}': {e}") from None


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return run(args)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except JobFailed as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_INTERNAL
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`prunetui info --json | head`): not an error. Point stdout at
        # /dev/null so the interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except Exception:
        return _report_crash()


def _report_crash() -> int:
    print(write_crash_log(sys.exc_info()[1]), file=sys.stderr)
    return EXIT_INTERNAL


def _add_amp(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--amp", choices=["bf16", "fp16"], help="mixed precision (autocast); numbers may differ slightly"
    )


def _add_activation_budget(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--activation-budget",
        type=activation_budget,
        metavar="MIB",
        help="most MiB of activations a scan holds and creates at once, recomputing beyond it "
        "(default: a quarter of free CUDA memory, 1024 elsewhere)",
    )


def activation_budget(text: str) -> int:
    """--activation-budget MIB as bytes. Raises argparse.ArgumentTypeError for anything but a positive
    finite number, which the parser turns into one `error:` line (exit 2) before any work."""
    try:
        mib = float(text)
    except ValueError:
        mib = math.nan
    if not (math.isfinite(mib) and mib > 0):
        raise argparse.ArgumentTypeError(f"expected a positive number of MiB, got '{text}'")
    return max(1, round(mib * 2**20))


def run(args: argparse.Namespace) -> int:
    if args.command == "prune" and not args.profile:
        raise UserError("prune needs --profile")
    recipe = cli_recipe.recipe(args, args.method) if args.command == "prune" else None
    if args.command == "prune" and args.latency_batch < 1:
        raise UserError(f"--latency-batch must be a positive batch size, got {args.latency_batch}")
    sparsities = parse_sparsities(args.sparsities) if args.command in ("scan", "suggest") else None
    if args.command == "scan" and args.eval_size is not None and args.eval_size < 1:
        raise UserError(f"--eval-size must be a positive number of images, got {args.eval_size}")
    if args.command == "suggest" and args.per_layer and args.max_drop is None:
        raise UserError("--per-layer goes with --max-drop")
    if args.command in ("scan", "resume"):
        _check_processes(args)
    _check_data_given(args)
    _check_files_and_forms(args)
    cli_speedup.check_goal(args)
    cli_recipe.check_scan_and_suggest(args)
    if args.command is None:
        _check_terminal()

    if args.command is None:  # the workbench draws its first frame, then opens the model in a thread
        from prunetui.tui.app import run_app

        return run_app(partial(_open_quietly, args), model_spec=args.model or "demo")

    from prunetui import commands  # torch is imported from here on

    opened = commands.open_from_args(args)
    output = {
        "info": lambda: commands.info(opened, args.json),
        "scan": lambda: commands.scan(
            opened,
            sparsities,
            args.layers,
            args.json,
            processes=cli_recipe.processes(args),
            **commands.scan_options(args),
        ),
        "prune": lambda: commands.prune(opened, recipe, args.json, latency_batch=args.latency_batch),
        "runs": lambda: commands.runs(opened, args.json),
        "resume": lambda: commands.resume(
            opened, args.run_id, args.json, cli_recipe.processes(args), cli_recipe.outputs(args)
        ),
        "replay": lambda: commands.replay(opened, args.run_id, args.json),
        "suggest": lambda: (
            cli_speedup.suggest_speedup(opened, args)
            if args.speedup
            else commands.suggest(
                opened,
                (args.budget, args.max_drop, args.per_layer),
                sparsities,
                args.lock,
                args.out,
                args.json,
                recalibrate=args.recalibrate_bn,
                use_global=args.use_global,
                cap=args.cap,
                measures=args.refine,
                activation_budget=args.activation_budget,
            )
        ),
    }[args.command]()
    if args.json:
        print(json.dumps(output, indent=2))
    return 0


def _open_quietly(args: argparse.Namespace):
    """The TUI's opener (run in its thread): the notes go to the workbench's log, not to stderr."""
    from prunetui import commands  # imports torch

    return commands.open_from_args(args, print_notes=False)


def _check_data_given(args: argparse.Namespace) -> None:
    """Commands that measure accuracy need data; only the demo has a default (digits)."""
    needs = args.command in ("scan", "suggest", "resume") or (args.command == "prune" and args.finetune)
    model = args.model or "demo"
    if needs and args.data is None and model != "demo":
        what = "finetune" if args.command == "prune" else args.command
        raise UserError(f"{what} needs --data for model '{model}'")


def _check_files_and_forms(args: argparse.Namespace) -> None:
    """What can be checked without torch, before any long work (and before the workbench draws): the
    model spec's form and that the files named exist."""
    from prunetui.model_specs import check_model_spec

    check_model_spec(args.model or "demo")
    for flag in ("profile", "checkpoint"):
        path = getattr(args, flag, None)
        if path is not None and not Path(path).exists():  # the readers' own words, said before the app
            raise UserError(f"{flag} not found: {path}")


def _check_terminal() -> None:
    """The TUI needs a real terminal (see prunetui.terminal): refuse at once, before torch is imported."""
    from prunetui.terminal import current_terminal, workbench_problem

    problem = workbench_problem(current_terminal())
    if problem is not None:
        raise UserError(problem)


def _check_processes(args: argparse.Namespace) -> None:
    """--nproc, --nnodes, --rdzv-endpoint of `scan` and `resume`: the recipe's rules (a finetune's
    epochs aside: a scan has none, a resumed run has its own)."""
    from dataclasses import replace

    from prunetui.core.recipe import Finetune, Recipe

    cli_recipe.checked(replace(Recipe(finetune=Finetune(epochs=1)), processes=cli_recipe.processes(args)))
