"""Deep Compression's table on mnist5k (issue 24): bytes you can ship, measured on disk.

For each model: the dense fp32 file (`torch.save(model.state_dict())`) and its held-out accuracy; after
pruning and finetuning (Han's per-layer rates as a profile, and prunetui's own suggestion at the same
size); after k-means quantization with its centroid finetune; after coding (the .ptz file). Every size is
`os.path.getsize` of a file written by the same workflow steps `prunetui prune` runs (the pruned row: a
.ptz of the float32 nonzeros; the last row: the quantized .ptz). Then the demo, the lab's VGG with the
blog's RUN5 profile (random weights: bytes only) and int8 ONNX against fp32 ONNX latency (ABBA, batch 1
and 64, torch's thread count).

    python benchmarks/compression.py                 # about 15 minutes on 2 CPU cores
    python benchmarks/compression.py --only lenet-300-100 --markdown

Goals: LeNet-300-100 >= 40x and LeNet-5 >= 39x smaller on disk, the demo >= 20x, each within 0.5 points of
its dense accuracy on the held-out images. The held-out sets are small (1,000 and 450 images: one image
is 0.1 and 0.22 points), and the best epoch is chosen on them, as every prunetui finetune does.
"""

import argparse
import os
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from prunetui.core import run_cost
from prunetui.core.compressed import dense_file_bytes
from prunetui.core.onnx_int8 import latency_pair, quantize_onnx
from prunetui.core.recipe import Finetune, Quantization, Recipe
from prunetui.workflow import channel_steps, quantizing, steps, suggesting
from prunetui.workflow.goals import parse_goal
from prunetui.workflow.opening import Request, open_session

PROFILES = Path(__file__).resolve().parent.parent / "prunetui" / "profiles"
SEED = 0
GRID = [round(0.5 + 0.05 * i, 2) for i in range(10)]  # 0.5 .. 0.95


@dataclass(frozen=True)
class Chain:
    """One row group: a model, its data, the pruning profile (or a suggestion at `budget`), the finetune
    after pruning and the centroid finetune after quantization."""

    label: str
    model: str
    data: str
    profile: str | None
    budget: str | None = None  # a suggestion at this size instead of the profile's targets
    bits: int | None = None  # k-means bits of the layers the profile's [bits] does not set
    epochs: int = 40
    lr: float = 0.05
    centroid_epochs: int = 5
    centroid_lr: float = 0.01


CHAINS = [
    Chain("LeNet-300-100, Han's rates and bits", "lenet-300-100", "mnist5k", "lenet-300-100-han.toml"),
    Chain("LeNet-300-100, suggested at 8%", "lenet-300-100", "mnist5k", None, "8%", bits=5),
    Chain("LeNet-5, Han's rates and bits", "lenet5", "mnist5k", "lenet5-han.toml", epochs=30),
    Chain("LeNet-5, suggested at 7%", "lenet5", "mnist5k", None, "7%", epochs=30),
    Chain("demo, demo-aggressive", "demo", "digits", "demo-aggressive.toml", bits=4, epochs=20, lr=0.01),
]


def quiet(*_args, **_kwargs) -> None:
    """A `say` that drops the lines (the figures are read from the results)."""


def open_chain(chain: Chain):
    profile = str(PROFILES / chain.profile) if chain.profile else None
    return open_session(Request(model=chain.model, data=chain.data, profile=profile)).session


def suggested_targets(session, budget: str) -> dict[str, float]:
    goal = parse_goal(budget, session.dense_size)
    outcome = suggesting.suggest(session, goal, quiet, GRID, measures=20)
    return dict(outcome.suggestion.targets)


def run_chain(chain: Chain, folder: Path) -> dict:
    """Dense, pruned + finetuned, quantized (+ centroid finetune) and coded figures of one chain."""
    torch.manual_seed(SEED)
    started = time.perf_counter()
    session = open_chain(chain)
    dense_accuracy = session.evaluate()
    if chain.budget:
        session.targets = suggested_targets(session, chain.budget)
        session.reset()
    recipe = Recipe(plan=session.plan(), finetune=Finetune(epochs=chain.epochs, lr=chain.lr), seed=SEED,
                    name=chain.label)  # fmt: skip
    steps.prune(session, quiet, recipe=recipe)
    tuned = steps.finetune(session, recipe, quiet)
    pruned_file = folder / f"{chain.model}-pruned.ptz"
    pruned_bytes = quantizing.export_compressed(session, pruned_file, chain.label, True, quiet).file_bytes
    lab_mib = session.current_size()
    bits = Quantization(
        "kmeans", chain.bits, dict(session.layer_bits), chain.centroid_epochs, chain.centroid_lr
    )
    quantized = quantizing.quantize(session, replace(recipe, quantization=bits), quiet)
    coded = quantizing.export_compressed(session, folder / f"{chain.model}.ptz", chain.label, True, quiet)
    assert coded.file_bytes == os.path.getsize(coded.path)
    return {
        "label": chain.label,
        "dense_bytes": dense_file_bytes(session.state),
        "dense_accuracy": dense_accuracy,
        "lab_percent": session.percent(lab_mib),
        "pruned_accuracy": tuned.result.best_accuracy,
        "pruned_bytes": pruned_bytes,
        "bits": sorted(set(quantized.bits.values()), reverse=True),
        "quantized_accuracy": quantized.accuracy_quantized,
        "centroid_accuracy": quantized.accuracy_centroids,
        "coded_bytes": coded.file_bytes,
        "seconds": time.perf_counter() - started,
    }


def vgg_run5(folder: Path) -> dict:
    """The lab's VGG with the blog's RUN5 profile, random weights (no data): bytes only."""
    session = open_session(Request(model="vgg-cifar", profile=str(PROFILES / "vgg-cifar-run5.toml"))).session
    steps.prune(session, quiet, recipe=session.recipe())
    lab_mib = session.current_size()
    pruned = quantizing.export_compressed(session, folder / "vgg-pruned.ptz", "run5", True, quiet).file_bytes
    quantizing.quantize(session, session.recipe(quantization=Quantization("kmeans")), quiet)
    coded = quantizing.export_compressed(session, folder / "vgg.ptz", "run5", True, quiet).file_bytes
    dense = dense_file_bytes(session.state)
    return {
        "dense_bytes": dense,
        "lab_percent": session.percent(lab_mib),
        "pruned_bytes": pruned,
        "coded_bytes": coded,
    }


def int8_latency(model: str, data: str, folder: Path) -> list:
    """fp32 vs int8 ONNX latency of `model` (dense weights) at batch 1 and 64."""
    session = open_session(Request(model=model, data=data)).session
    fp32, int8 = folder / f"{model}.onnx", folder / f"{model}.int8.onnx"
    channel_steps.export_onnx(session, fp32, True, quiet)
    quantize_onnx(fp32, quantizing.calibration_images(session), int8)
    example = session.example_input().cpu()
    return [latency_pair(fp32, int8, example, batch, min_run_time=1.0) for batch in (1, 64)]


def kib(count: int) -> str:
    return f"{count / 1024:,.1f} KiB"


def chain_rows(row: dict) -> list[str]:
    dense, base = row["dense_bytes"], row["dense_accuracy"]

    def drop(accuracy: float | None) -> str:
        return "n/a" if accuracy is None else f"{accuracy:.2f}% ({accuracy - base:+.2f})"

    final = row["centroid_accuracy"] if row["centroid_accuracy"] is not None else row["quantized_accuracy"]
    bits = "/".join(map(str, row["bits"]))
    return [
        f"| {row['label']} | dense fp32 | {kib(dense)} | 1.0x | {base:.2f}% |",
        f"| | pruned to {row['lab_percent']:.1f}% + finetuned, float32 .ptz | {kib(row['pruned_bytes'])} | "
        f"{dense / row['pruned_bytes']:.1f}x | {drop(row['pruned_accuracy'])} |",
        f"| | + k-means {bits} bits | | | {drop(row['quantized_accuracy'])} |",
        f"| | + centroid finetune, coded .ptz | **{kib(row['coded_bytes'])}** | "
        f"**{dense / row['coded_bytes']:.1f}x** | {drop(final)} |",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="chains whose model is this spec (lenet-300-100, lenet5, demo)")
    parser.add_argument("--no-vgg", action="store_true", help="skip the VGG RUN5 bytes")
    parser.add_argument("--no-latency", action="store_true", help="skip the int8 ONNX latency")
    args = parser.parse_args(argv)
    run_cost.LATENCY_MIN_RUN_TIME = 0.001  # each prune times the model: not this table's figure
    threads = torch.get_num_threads()
    print(f"torch {torch.__version__}, {threads} threads, {os.cpu_count()} CPUs", file=sys.stderr)
    lines = [
        "| Model | Step | Bytes on disk | Smaller | Held-out accuracy (vs dense) |",
        "|---|---|---:|---:|---:|",
    ]
    with tempfile.TemporaryDirectory(prefix="prunetui-compression-") as folder:
        for chain in CHAINS:
            if args.only and chain.model != args.only:
                continue
            row = run_chain(chain, Path(folder))
            lines += chain_rows(row)
            print("\n".join(chain_rows(row)), f"  ({row['seconds']:.0f} s)", file=sys.stderr)
        if not args.no_vgg and not args.only:
            vgg = vgg_run5(Path(folder))
            dense = vgg["dense_bytes"]
            lines += [
                f"| vgg-cifar, RUN5 (random weights) | dense fp32 | {kib(dense)} | 1.0x | n/a |",
                f"| | pruned to {vgg['lab_percent']:.1f}% (lab's size {dense / (vgg['lab_percent'] / 100 * dense):.1f}x), "
                f"float32 .ptz | {kib(vgg['pruned_bytes'])} | {dense / vgg['pruned_bytes']:.1f}x | n/a |",
                f"| | + k-means 8/5 bits, coded .ptz | **{kib(vgg['coded_bytes'])}** | "
                f"**{dense / vgg['coded_bytes']:.1f}x** | n/a |",
            ]
        print("\n".join(lines))
        if not args.no_latency:
            print(
                "\n| Model | Batch | fp32 ONNX ms | int8 ONNX ms | int8 speed-up (spread) |\n|---|---:|---:|---:|---:|"
            )
            for model, data in (
                ("lenet5", "mnist5k"),
                ("demo", "digits"),
                ("vgg-cifar", "random:256:3x32x32"),
            ):
                for pair in int8_latency(model, data, Path(folder)):
                    low, high = min(pair.ratios), max(pair.ratios)
                    verdict = {"faster": "", "same": " (no difference)", "slower": " (int8 SLOWER)"}[
                        pair.verdict
                    ]
                    print(f"| {model} | {pair.batch} | {pair.fp32_ms:.3f} | {pair.int8_ms:.3f} | "
                          f"{pair.speedup:.2f}x ({low:.2f}-{high:.2f}){verdict} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
