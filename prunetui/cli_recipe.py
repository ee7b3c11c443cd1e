"""The command line's recipe: `prune`'s flags (finetune, recovery, processes, outputs) read into one
core.recipe.Recipe, whose defaults and cross-option rules are the only ones (no torch is imported here,
so a bad combination is refused at once). Also the recovery flags of `scan` and `suggest`."""

import argparse
from dataclasses import replace

from prunetui.core.recipe import (
    Finetune,
    Outputs,
    Plan,
    Processes,
    Quantization,
    Recipe,
    RecipeError,
    Recovery,
)

MEASURES = 60  # prunetui.core.refine.MEASURES, named here so --help loads no torch
RECOVERY, FINETUNE, QUANTIZATION = Recovery(), Finetune(), Quantization()


def add_recalibrate(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--recalibrate-bn",
        action="store_true",
        help=f"recalibrate the BatchNorm statistics on 20 training batches {what} (off: the lab's numbers)",
    )


def add_processes(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("several processes or machines (torchrun)")
    group.add_argument(
        "--nproc", type=int, default=1, metavar="N", help="processes on this machine, one per GPU (default 1)"
    )
    group.add_argument(
        "--nnodes",
        type=int,
        default=1,
        metavar="M",
        help="machines taking part; run the same command on each",
    )
    group.add_argument(
        "--rdzv-endpoint", metavar="HOST:PORT", help="where the machines meet (on one of them)"
    )


def add_outputs(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", metavar="PATH", help="write the pruned checkpoint here")
    parser.add_argument("--force", action="store_true", help="let --out and --onnx replace existing files")
    parser.add_argument(
        "--onnx", metavar="PATH", help="also write the pruned model as ONNX (deployable, no prunetui needed)"
    )
    parser.add_argument(
        "--compress",
        action="store_true",
        help="write --out as a .ptz file: sparse positions, codebooks and indices, LZMA-coded; reopened "
        "by --checkpoint and by prunetui/core/ptz.py alone (implied by an --out ending in .ptz)",
    )
    parser.add_argument(
        "--onnx-int8",
        metavar="PATH",
        help="also write an int8 ONNX model (weights and activations, onnxruntime static quantization "
        "calibrated on training images), checked and timed against the fp32 ONNX model",
    )


def add_quantization_flags(prune: argparse.ArgumentParser) -> None:
    group = prune.add_argument_group("quantization after pruning (masks kept; Deep Compression)")
    group.add_argument(
        "--quantize",
        choices=["kmeans", "int8"],
        help="kmeans: weight sharing, 2^bits values a layer (a profile's [bits] table or --bits imply it); "
        "int8: per-channel int8",
    )
    group.add_argument(
        "--bits",
        type=int,
        metavar="N",
        help="k-means bits of every layer the profile's [bits] table does not list (default: Han's 8 for "
        "convolutions, 5 for fully connected layers)",
    )
    group.add_argument("--centroid-finetune", type=int, default=QUANTIZATION.epochs, metavar="EPOCHS",
                       help="epochs finetuning the k-means centroids (default 0)")  # fmt: skip
    group.add_argument("--centroid-lr", type=float, default=QUANTIZATION.lr, metavar="LR",
                       help=f"centroid finetune learning rate (default {QUANTIZATION.lr:g})")  # fmt: skip


def add_prune_flags(prune: argparse.ArgumentParser) -> None:
    prune.add_argument("--finetune", type=int, default=FINETUNE.epochs, metavar="EPOCHS",
                       help="finetune epochs (default 0)")  # fmt: skip
    prune.add_argument(
        "--lr", type=float, default=FINETUNE.lr, help=f"finetune learning rate (default {FINETUNE.lr:g})"
    )
    prune.add_argument("--seed", type=int, metavar="N", help="the run's seed (default: drawn, and recorded)")
    add_outputs(prune)
    add_recalibrate(prune, "once pruning reaches the targets (after the prune; with agp, after the finetune)")
    group = prune.add_argument_group("recovery while finetuning (with --finetune)")
    group.add_argument(
        "--schedule",
        choices=["oneshot", "agp"],
        default=RECOVERY.schedule,
        help="oneshot (default): prune, then finetune; agp: no one-shot prune, the finetune grows the "
        "masks to the targets on the cubic schedule of Zhu & Gupta 2017 (magnitude and taylor)",
    )
    group.add_argument("--agp-share", type=float, default=RECOVERY.agp_share, metavar="F",
                       help=f"part of the finetune the AGP schedule takes (default {RECOVERY.agp_share:g})")  # fmt: skip
    group.add_argument(
        "--distill", action="store_true", help="learn from the model as opened too (knowledge distillation)"
    )
    group.add_argument("--temperature", type=float, default=RECOVERY.temperature, metavar="T",
                       help=f"distillation temperature (default {RECOVERY.temperature:g})")  # fmt: skip
    group.add_argument("--alpha", type=float, default=RECOVERY.alpha, metavar="A",
                       help=f"weight of the teacher's term, in [0, 1] (default {RECOVERY.alpha:g})")  # fmt: skip
    add_processes(prune)
    add_quantization_flags(prune)


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


def processes(args: argparse.Namespace) -> Processes:
    return Processes(args.nproc, args.nnodes, args.rdzv_endpoint)


def outputs(args: argparse.Namespace) -> Outputs:
    out = getattr(args, "out", None)
    compress = getattr(args, "compress", False) or bool(out and out.endswith(".ptz"))
    return Outputs(out, getattr(args, "onnx", None), getattr(args, "force", False), compress,
                   getattr(args, "onnx_int8", None))  # fmt: skip


def quantization(args: argparse.Namespace) -> Quantization:
    """--quantize, --bits, --centroid-finetune (the two imply kmeans when no kind is named), --centroid-lr."""
    kind = args.quantize or ("kmeans" if args.bits is not None or args.centroid_finetune else None)
    return Quantization(kind, args.bits, {}, args.centroid_finetune, args.centroid_lr)


def recipe(args: argparse.Namespace, method: str | None = None) -> Recipe:
    """`prune`'s flags as a checked Recipe (its plan is the profile's, filled in when the model opens;
    `method`: --method or the default). RecipeError names the flag to change."""
    built = Recipe(
        plan=Plan(method or "magnitude", {}),
        recovery=Recovery(
            args.recalibrate_bn, args.schedule, args.agp_share, args.distill, args.temperature, args.alpha
        ),
        finetune=Finetune(epochs=args.finetune, lr=args.lr, amp=args.amp),
        processes=processes(args),
        outputs=outputs(args),
        quantization=quantization(args),
        seed=args.seed,
    )
    # every rule that needs no targets (they come with the profile, once the model opens)
    checked(replace(built, plan=Plan(built.plan.method, {"stand-in": 0.5})))
    return built


def checked(built: Recipe) -> Recipe:
    """`built.check()`, its refusal naming the flags to change."""
    try:
        return built.check()
    except RecipeError as error:
        flags = ", ".join(dict.fromkeys(FLAGS[field] for field in error.fields if field in FLAGS))
        raise RecipeError(f"{error} ({flags})" if flags else str(error), *error.fields) from None


# the recipe fields as the command line spells them (core.recipe.RecipeError.fields)
FLAGS = {
    "plan.method": "--method",
    "plan.targets": "--profile",
    "start": "--method",
    "finetune.epochs": "--finetune",
    "finetune.lr": "--lr",
    "finetune.amp": "--amp",
    "recovery.schedule": "--schedule",
    "recovery.agp_share": "--agp-share",
    "recovery.distill": "--distill",
    "recovery.temperature": "--temperature",
    "recovery.alpha": "--alpha",
    "processes.nproc": "--nproc",
    "processes.nnodes": "--nnodes",
    "processes.endpoint": "--rdzv-endpoint",
    "seed": "--seed",
    "quantization.kind": "--quantize",
    "quantization.bits": "--bits",
    "quantization.epochs": "--centroid-finetune",
    "outputs.compress": "--compress",
    "outputs.onnx_int8": "--onnx-int8",
}


def check_scan_and_suggest(args: argparse.Namespace) -> None:
    """Flags of `scan` and `suggest` that make no sense together, as one `error:` line."""
    if args.command == "suggest":
        if args.cap is not None and not args.use_global:
            raise RecipeError("--cap goes with --global")
        if args.cap is not None and not 0.0 <= args.cap <= 1.0:
            raise RecipeError(f"--cap must be in [0, 1], got {args.cap}")
        if args.use_global and args.budget is None:
            raise RecipeError("--global needs --budget (a size to prune to)")
        if args.refine < 0:
            raise RecipeError(f"--refine must be 0 or more, got {args.refine}")
    if args.command == "scan" and args.recalibrate_bn and (args.nproc > 1 or args.nnodes > 1):
        raise RecipeError("--recalibrate-bn scans run in one process (drop --nproc)")
