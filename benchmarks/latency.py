"""Latency of dense vs fine-grained 90% vs channel 0.3 / 0.5, side by side in one run, as ratios.

For each model and batch the four variants are timed in ABBA order (dense, fine, ch0.3, ch0.5, then
reversed, `--rounds` times) with `prunetui.core.cost.measure_latency` (torch.utils.benchmark on CPU,
CUDA events on a GPU); each variant's figure is the median over its rounds, the speed-up is dense /
variant from the same run. MACs and params are the lab's counts (torchprofile) at batch 1.

- fine 90%: the lab's magnitude rule at 0.9 on every conv and linear weight: zeros in dense kernels.
- channel r: every prunable channel group at r (lab VGG: the lab's part 2 on conv0..conv6).

    .venv/bin/python benchmarks/latency.py --threads 1            # CPU, about 3 min here
    .venv/bin/python benchmarks/latency.py --device cuda          # on a GPU machine
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from prunetui.core.channel import channel_groups, prune_channels  # noqa: E402
from prunetui.core.cost import count_macs, count_params, measure_latency  # noqa: E402
from prunetui.core.pruning import prune  # noqa: E402
from prunetui.sources.models import build_model  # noqa: E402

X = torch.zeros(1, 3, 32, 32)


def variants(spec: str, device: str) -> dict[str, torch.nn.Module]:
    """dense, fine 90%, channel 0.3, channel 0.5 of `spec` (seeded weights), eval mode, on `device`."""
    dense = build_model(spec).eval()
    groups = [g.name for g in channel_groups(dense, X) if g.prunable]
    fine = build_model(spec).eval()
    prune(fine, {name: 0.9 for name, p in fine.named_parameters() if p.dim() > 1})
    models = {
        "dense": dense,
        "fine 0.9": fine,
        "channel 0.3": prune_channels(dense, X, dict.fromkeys(groups, 0.3)).model,
        "channel 0.5": prune_channels(dense, X, dict.fromkeys(groups, 0.5)).model,
    }
    return {name: model.to(device).eval() for name, model in models.items()}


def run(spec: str, batch: int, args: argparse.Namespace, models: dict) -> None:
    names = list(models)
    order = (names + names[::-1]) * args.rounds
    samples: dict[str, list[float]] = {name: [] for name in names}
    x = X.to(args.device)
    for name in names:  # warm-up, untimed
        measure_latency(models[name], x, batch=batch, threads=args.threads, min_run_time=0.05)
    for name in order:
        latency = measure_latency(
            models[name], x, batch=batch, threads=args.threads, min_run_time=args.min_run_time
        )
        samples[name].append(latency.ms)
    dense_ms = statistics.median(samples["dense"])
    for name in names:
        ms = statistics.median(samples[name])
        spread = f"{min(samples[name]):.2f}-{max(samples[name]):.2f}"
        print(
            f"| {spec} | {batch} | {name} | {count_macs(models[name], x):,} | {count_params(models[name]):,} "
            f"| {ms:.2f} ({spread}) | **{dense_ms / ms:.2f}x** |",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="vgg-cifar,torchvision:resnet18:10")
    parser.add_argument("--batches", default="1,64")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--min-run-time", type=float, default=0.5, help="seconds per timed sample")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    print(f"torch {torch.__version__}, device {args.device}, threads {args.threads}, input 3x32x32, ")
    print(f"{args.rounds} ABBA rounds, median ms per forward of the whole batch (min-max over samples)\n")
    print("| model | batch | variant | MACs (batch 1) | params | latency ms | speed-up |")
    print("|---|---|---|---|---|---|---|")
    for spec in args.models.split(","):
        models = variants(spec, args.device)
        for batch in (int(b) for b in args.batches.split(",")):
            run(spec, batch, args, models)
    print(f"\n{time.perf_counter() - started:.0f} s in all")


if __name__ == "__main__":
    main()
