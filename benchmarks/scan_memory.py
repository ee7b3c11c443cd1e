"""Peak memory of a large sensitivity scan against its activation budget (core.scan_memory).

    python benchmarks/scan_memory.py                   # CPU: 3 layers, 1 sparsity, 16 images (a few minutes)
    python benchmarks/scan_memory.py --device cuda     # the full size, for a GPU: every layer, 6 sparsities, 64 images

torchvision's resnet50 (random weights, nothing downloaded) is scanned on random 224x224 images with the
default activation budget, 256 MiB and 64 MiB (`--budgets`), each budget in a fresh process. Its
BatchNorm statistics are measured on the images and the labels are its own predictions, so the dense
accuracy is 100% and each point counts the predictions that survive: the grids of all budgets must be
equal, and the script says whether they are.

For each budget: the plan (images per batch, the fewest batches whose states are held at once), the
planned peak (one batch's transient and the held states, as the plan estimates them), the measured peak
and the wall time of the scan. Measured peak: on CUDA, memory allocated above the scan's start at its
highest (the scan's own `peak_memory`, from torch.cuda.max_memory_allocated); on CPU, the process's peak
RSS (resource.getrusage) above its RSS just before the scan. A peak RSS never goes down by itself, hence a
process per budget, and the kernel's peak is reset to the RSS of the moment just before the scan
(Linux: /proc/self/clear_refs), or the model's loading and labelling would stand for the scan's peak.
RSS counts more than activations: the held images, the weights' temporaries while a layer is pruned,
the copy of the weights the scan holds channels_last (its default on CPU and CUDA; `--channels-last off`
leaves it out; on CUDA it is made before the scan's own peak starts) and what the allocator keeps.
"""

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, TensorDataset

from prunetui.core.accel import Acceleration
from prunetui.core.scan_memory import MIB
from prunetui.core.sensitivity import DEFAULT_SPARSITIES, ScanOptions, scan
from prunetui.sources import load_model

MODEL = "torchvision:resnet50"


def rss_now() -> int:
    """Bytes resident now (Linux: /proc/self/statm)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize()


def rss_peak() -> int:
    """Bytes resident at the process's highest so far, or since reset_rss_peak (ru_maxrss: KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def reset_rss_peak() -> None:
    """The kernel's peak RSS of this process set to its RSS now (Linux 4.0 and later)."""
    Path("/proc/self/clear_refs").write_text("5")


def spread(names: list[str], count: int | None) -> list[str]:
    """`count` names spread from the first to the last (all when None)."""
    if count is None or count >= len(names):
        return names
    if count == 1:
        return names[:1]
    return [names[round(i * (len(names) - 1) / (count - 1))] for i in range(count)]


@torch.no_grad()
def taught_loader(model: torch.nn.Module, images: torch.Tensor, device: torch.device) -> DataLoader:
    """BatchNorm statistics measured on `images`, labels the model's own predictions (in eval mode)."""
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = None
    labels = []
    for part in images.split(32):
        model.train()(part.to(device))
    for part in images.split(32):
        labels.append(model.eval()(part.to(device)).argmax(1).cpu())
    return DataLoader(TensorDataset(images, torch.cat(labels)), batch_size=32)


def one_budget(args: argparse.Namespace) -> dict:
    """The scan under one budget, in this process: what the parent prints."""
    device = torch.device(args.device)
    model = load_model(MODEL)[0].to(device)
    images = torch.randn(args.images, 3, args.side, args.side, generator=torch.Generator().manual_seed(0))
    loader = taught_loader(model, images, device)
    layers = spread([n for n, p in model.named_parameters() if p.dim() > 1], args.layers)
    budget = None if args.one == "default" else round(float(args.one) * MIB)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()
    reset_rss_peak()
    before = rss_now()
    started = time.perf_counter()
    accel = Acceleration(channels_last=False if args.channels_last == "off" else None)
    options = ScanOptions(activation_budget=budget, accel=accel)
    result = scan(model, loader, args.sparsities, layers, options=options)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - started
    return {
        "memory": result.memory,
        "rss_growth": rss_peak() - before,
        "seconds": seconds,
        "path": result.path,
        "layers": result.layers,
        "base": result.base_accuracy,
        "points": len(layers) * len(args.sparsities),
    }


def run_child(args: argparse.Namespace, budget: str) -> dict:
    command = [
        sys.executable,
        __file__,
        "--one",
        budget,
        "--device",
        args.device,
        "--images",
        str(args.images),
    ]
    command += ["--side", str(args.side), "--sparsities", ",".join(map(str, args.sparsities))]
    command += ["--channels-last", args.channels_last]
    command += [] if args.layers is None else ["--layers", str(args.layers)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"budget {budget} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def row(budget: str, out: dict, cuda: bool) -> str:
    memory = out["memory"]
    measured = memory["peak"] if cuda else out["rss_growth"]
    label = f"{memory['budget'] / MIB:.0f} MiB" + (" (default)" if budget == "default" else "")
    return (
        f"| {label} | {memory['batch_size']} | "
        f"{memory['batches_per_chunk']} | {memory['planned_peak'] / MIB:.0f} MiB | "
        f"{measured / MIB:.0f} MiB | {out['seconds']:.1f} s |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--images", type=int, help="random images (default: 64 on CUDA, 16 on CPU)")
    parser.add_argument("--side", type=int, default=224, help="image side (default 224)")
    parser.add_argument(
        "--layers", type=int, help="layers scanned, spread over the model (default: 3 on CPU)"
    )
    parser.add_argument("--sparsities", help="comma-separated (default: the 6 of a scan on CUDA, 0.5 on CPU)")
    parser.add_argument("--budgets", default="default,256,64", help="MiB, or default (default,256,64)")
    parser.add_argument("--channels-last", choices=["auto", "off"], default="auto", help="the scan's weights")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # the child: one budget, JSON on stdout
    args = parser.parse_args()
    cuda = args.device.startswith("cuda")
    args.images = args.images or (64 if cuda else 16)
    args.layers = args.layers if args.layers is not None or cuda else 3
    default_grid = list(DEFAULT_SPARSITIES) if cuda else [0.5]
    args.sparsities = [float(s) for s in args.sparsities.split(",")] if args.sparsities else default_grid
    if args.one is not None:
        print(json.dumps(one_budget(args)))
        return

    runs = {budget: run_child(args, budget) for budget in args.budgets.split(",")}
    first = next(iter(runs.values()))
    print(
        f"{MODEL} (random weights), {args.images} images {args.side}x{args.side}, {first['points']} points "
        f"({len(next(iter(first['layers'].values())))} sparsities), {args.device}, path {first['path']}, "
        f"channels_last {args.channels_last}"
    )
    measured = "peak allocated above the start" if cuda else "peak RSS above the start"
    print(f"\n| budget | images per batch | batches held | planned peak | {measured} | scan time |")
    print("|---|---|---|---|---|---|")
    for budget, out in runs.items():
        print(row(budget, out, cuda))
        if out["memory"]["warning"]:
            print(f"  warning: {out['memory']['warning']}")
    same = all(out["layers"] == first["layers"] and out["base"] == first["base"] for out in runs.values())
    print(f"\ngrids equal across budgets: {'yes' if same else 'NO'} (dense accuracy {first['base']:.2f}%)")


if __name__ == "__main__":
    main()
