"""The recovery flags of `prune`, `scan` and `suggest` (issue 16): BN recalibration, the AGP schedule,
distillation, global pruning and the measured refinement. Checked here, before torch is imported."""

import argparse

from prunetui.errors import UserError

MEASURES = 60  # prunetui.core.refine.MEASURES, named here so --help loads no torch


def add_recalibrate(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--recalibrate-bn",
        action="store_true",
        help=f"recalibrate the BatchNorm statistics on 20 training batches {what} (off: the lab's numbers)",
    )


def add_prune_flags(prune: argparse.ArgumentParser) -> None:
    add_recalibrate(prune, "after pruning, reported as its own line and JSON key")
    group = prune.add_argument_group("recovery while finetuning (with --finetune)")
    group.add_argument(
        "--schedule",
        choices=["oneshot", "agp"],
        default="oneshot",
        help="oneshot (default): prune, then finetune; agp: no one-shot prune, the finetune grows the "
        "masks to the targets on the cubic schedule of Zhu & Gupta 2017",
    )
    group.add_argument(
        "--agp-share",
        type=float,
        default=0.75,
        metavar="F",
        help="part of the finetune the AGP schedule takes",
    )
    group.add_argument(
        "--distill", action="store_true", help="learn from the dense model too (knowledge distillation)"
    )
    group.add_argument("--temperature", type=float, default=4.0, metavar="T", help="distillation temperature")
    group.add_argument(
        "--alpha", type=float, default=0.9, metavar="A", help="weight of the teacher's term, in [0, 1]"
    )


def add_suggest_flags(suggest: argparse.ArgumentParser) -> None:
    add_recalibrate(suggest, "for the scan, every measurement and the result")
    suggest.add_argument(
        "--global",
        dest="use_global",
        action="store_true",
        help="global pruning at the --budget instead: one magnitude threshold over every layer (no scan)",
    )
    suggest.add_argument(
        "--cap", type=float, metavar="S", help="with --global: no layer sparser than S (e.g. 0.95)"
    )
    suggest.add_argument(
        "--refine",
        type=int,
        default=MEASURES,
        metavar="N",
        help=f"measured moves that refine the suggestion (default {MEASURES}; 0: only the baselines)",
    )


def check(args: argparse.Namespace) -> None:
    """Flags that make no sense together, as one `error:` line."""
    if args.command == "prune":
        if args.schedule == "agp" and not args.finetune:
            raise UserError("--schedule agp prunes while finetuning: give --finetune EPOCHS")
        if args.distill and not args.finetune:
            raise UserError("--distill goes with --finetune EPOCHS")
        if not 0.0 < args.agp_share <= 1.0:
            raise UserError(f"--agp-share must be in (0, 1], got {args.agp_share}")
        if not args.temperature > 0:
            raise UserError(f"--temperature must be above 0, got {args.temperature}")
        if not 0.0 <= args.alpha <= 1.0:
            raise UserError(f"--alpha must be in [0, 1], got {args.alpha}")
    if args.command == "suggest":
        if args.cap is not None and not args.use_global:
            raise UserError("--cap goes with --global")
        if args.cap is not None and not 0.0 <= args.cap <= 1.0:
            raise UserError(f"--cap must be in [0, 1], got {args.cap}")
        if args.use_global and args.budget is None:
            raise UserError("--global needs --budget (a size to prune to)")
        if args.refine < 0:
            raise UserError(f"--refine must be 0 or more, got {args.refine}")
    if args.command == "scan" and args.recalibrate_bn and (args.nproc > 1 or args.nnodes > 1):
        raise UserError("--recalibrate-bn scans run in one process (drop --nproc)")


def recovery(args: argparse.Namespace):
    """`prune`'s flags as a workflow.recovery.Recovery."""
    from prunetui.workflow.recovery import Recovery

    return Recovery(
        recalibrate=args.recalibrate_bn,
        schedule=args.schedule,
        agp_share=args.agp_share,
        distill=args.distill,
        temperature=args.temperature,
        alpha=args.alpha,
    )
