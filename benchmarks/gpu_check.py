"""The sections of benchmarks/gpu_check.sh, one per call: each prints its log and its results rows.

    python benchmarks/gpu_check.py SECTION      (env tests scan finetune accel data nccl latency memory speedup)

Environment: GPU_CHECK_DEVICE (default cuda), GPU_CHECK_SMALL=1 for tiny sizes (the CPU dry run),
GPU_CHECK_ROWS: a file each results row (a Markdown table row) is appended to as soon as it is known,
so a section that fails or runs out of time keeps the rows it had. Figures are ratios of runs made side
by side in the same process (or, for scan and finetune, by the benchmark scripts they wrap), after an
untimed warm-up of each side.
"""

import copy
import os
import platform
import subprocess
import sys

import torch
from gpu_check_data import accel, data
from gpu_check_speedup import speedup
from gpu_common import (
    BENCHMARKS,
    CUDA,
    DEVICE,
    SMALL,
    clock,
    every_layer,
    find,
    masks_hold,
    row,
    run_script,
    size,
)
from torch.utils.data import DataLoader, TensorDataset


# --- a. environment ------------------------------------------------------------------------------------
def env() -> None:
    try:
        query = "--query-gpu=name,driver_version,memory.total"
        smi = subprocess.run(["nvidia-smi", query, "--format=csv,noheader"], capture_output=True, text=True)
        gpus = "; ".join(line.strip() for line in smi.stdout.splitlines() if line.strip()) or smi.stderr
    except OSError as error:
        gpus = f"nvidia-smi not available ({error.strerror})"
    row("a env", "nvidia-smi: name, driver, memory", gpus)
    import torchvision

    versions = f"torch {torch.__version__}, CUDA {torch.version.cuda}, torchvision {torchvision.__version__}"
    row("a env", "versions", versions, f"Python {platform.python_version()}, {os.cpu_count()} CPUs")
    if CUDA:
        props = torch.cuda.get_device_properties(DEVICE)
        try:  # the TF32 flags are being replaced by fp32_precision settings in recent torch
            tf32 = f"TF32 conv {torch.backends.cudnn.allow_tf32} / matmul {torch.backends.cuda.matmul.allow_tf32}"
        except (AttributeError, RuntimeError) as error:
            tf32 = f"TF32 flags unreadable ({error})"
        row(
            "a env",
            "devices",
            f"{torch.cuda.device_count()} visible; {props.name}, sm_{props.major}{props.minor}, "
            f"{props.total_memory / 2**30:.0f} GiB",
            f"cuDNN {torch.backends.cudnn.version()}, bf16 {torch.cuda.is_bf16_supported()}, {tf32}",
        )
    else:
        row("a env", "devices", f"{DEVICE} (dry run)", f"{torch.get_num_threads()} torch threads")


# --- b. CUDA-marked tests ------------------------------------------------------------------------------
def tests() -> None:
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-rs",
        "-p",
        "no:cacheprovider",
        "-m",
        "cuda",
        "tests/gpu",
    ]
    print("$", " ".join(command), flush=True)
    plugins_off = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}  # none is needed; none can break it
    done = subprocess.run(command, capture_output=True, text=True, cwd=BENCHMARKS.parent, env=plugins_off)
    print(done.stdout + done.stderr, flush=True)
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    summary = lines[-1].strip("= ") if lines else "(no output)"
    failed = [line.split(" - ")[0] for line in lines if line.startswith(("FAILED", "ERROR"))]
    row("b tests", "pytest -m cuda tests/gpu", summary, ", ".join(failed))
    if done.returncode != 0:
        raise SystemExit(f"pytest exited with {done.returncode}")


# --- c. scan vs the lab's loop -------------------------------------------------------------------------
def scan() -> None:
    images, rounds = size(10_000, 16), size(2, 1)
    base = ["benchmarks/scan_vs_lab.py", "--device", str(DEVICE), "--images", str(images)]
    out = run_script([*base, "--rounds", str(rounds)])
    scan_rows(out, images, "tensors", "goal on a GPU: >= 20x faster, ratio <= 0.05")
    cli = find(r"^`prunetui scan` as a process: (.*)$", out, "not run")
    row("c scan", "`prunetui scan` as a process (imports included)", cli)
    # The lab's loop as written reads its test split through PIL + ToTensor per image, every evaluation.
    out = run_script([*base, "--rounds", "1", "--skip-cli", "--lab-data", "pil"])
    scan_rows(out, images, "PIL + ToTensor per image (the lab's pipeline)", "both sides read the same loader")
    out = run_script([*base, "--rounds", "1", "--skip-cli", "--tf32", "off"])
    scan_rows(out, images, "tensors, TF32 off", "is the grid difference TF32's?")


def scan_rows(out: str, images: int, data: str, note: str) -> None:
    ratio = find(r"^ratio prunetui / lab: ([\d.]+) wall", out)
    ours, lab = find(r"^prunetui:\s+([\d.]+) s wall", out), find(r"^lab loop:\s+([\d.]+) s wall", out)
    speedup = f", {1 / float(ratio):.1f}x faster" if ratio not in ("?", "0.000") else ""
    row(
        "c scan",
        f"lab VGG, 54 points x {images} images, data {data}: ours / lab loop (wall)",
        f"**{ratio}** (ours {ours} s, lab {lab} s{speedup})",
        note,
    )
    same = find(r"^grids equal within one image per point: (\w+)", out)
    worst = find(r"largest difference: (\d+) images", out)
    row(
        "c scan",
        f"grid vs the lab loop, data {data}",
        f"within one image: {same}",
        f"largest difference {worst} images",
    )


# --- d. finetune vs a plain loop -----------------------------------------------------------------------
def finetune() -> None:
    images, epochs, rounds = size(10_000, 16), size(2, 1), size(2, 1)
    for layout in ("auto", "off"):
        args = ["benchmarks/finetune_vs_plain.py", "--device", str(DEVICE), "--images", str(images)]
        out = run_script([*args, "--epochs", str(epochs), "--rounds", str(rounds), "--channels-last", layout])
        ratio = find(r"^ratio prunetui / plain: ([\d.]+) wall", out)
        plain = find(r"^plain loop:\s+([\d.]+) s/epoch", out)
        ours = find(r"^prunetui:\s+([\d.]+) s/epoch", out)
        what = (
            "default (channels_last on CUDA)" if layout == "auto" else "channels_last off (plain's kernels)"
        )
        row(
            "d finetune",
            f"epoch of {images} images, batch 64, {what}: ours / plain (wall)",
            f"**{ratio}** (ours {ours} s/epoch, plain {plain} s/epoch)",
            "goal <= 1.05",
        )
    images = size(10_000, 640)  # the small run still times 10 steps a side
    args = ["benchmarks/finetune_overhead.py", "--device", str(DEVICE), "--images", str(images)]
    out = run_script([*args, "--rounds", str(size(8, 1))])
    plain = find(r"^plain loop:\s+([\d.]+) us/step", out)
    ours = find(r"^prunetui:\s+([\d.]+) us/step", out)
    overhead = find(r"^overhead a step: ([+-][\d.]+) us", out)
    row(
        "d finetune",
        f"host time a step, 9 tiny linear layers, {images} images, batch 64: ours - plain (median)",
        f"**{overhead} us** (ours {ours} us/step, plain {plain} us/step)",
        "finetune_overhead.py: the loop's own work a step, all but the arithmetic",
    )


# --- g. 2-process NCCL finetune ------------------------------------------------------------------------
def nccl() -> None:
    if CUDA and torch.cuda.device_count() < 2:
        row("g nccl", "2-process NCCL finetune", "skipped: 1 GPU")
        return
    from prunetui.core.finetune import FinetuneSettings
    from prunetui.core.finetune import finetune as core_finetune
    from prunetui.core.pruning import prune
    from prunetui.distributed.launch import Launcher
    from prunetui.sources import load_data
    from prunetui.sources.vgg import VGG

    backend = "NCCL" if CUDA else "gloo (CPU dry run)"
    spec = f"random:{size(10_000, 64)}:3x32x32"
    data = load_data(spec, batch_size=128, eval_batch_size=512)
    torch.manual_seed(0)
    dense = VGG().to(DEVICE)
    masks = prune(dense, every_layer(dense, 0.5))
    settings = FinetuneSettings(epochs=1)
    runs = {
        "1 process (core.finetune)": lambda m: core_finetune(m, data.train, data.eval, masks, settings),
        f"2 processes, {backend}": lambda m: Launcher("vgg-cifar", spec, nproc=2).finetune(
            m, data.train, data.eval, masks, settings
        ),
    }
    for name, run in runs.items():
        model = copy.deepcopy(dense)
        result, seconds = clock(run, model)
        row(
            "g nccl",
            f"finetune 1 epoch of {spec}, {name}",
            f"{seconds:.2f} s" + (" (torchrun's start included)" if name.startswith("2") else ""),
            f"accuracy {result.best_accuracy:.2f}%, masks held: {masks_hold(model, masks)}",
        )


# --- h. latency dense vs pruned ------------------------------------------------------------------------
def latency() -> None:
    from torch.utils import benchmark

    from prunetui.core.pruning import prune
    from prunetui.sources.vgg import VGG

    torch.manual_seed(0)
    dense = VGG().to(DEVICE).eval()
    sparse = copy.deepcopy(dense)
    prune(sparse, every_layer(sparse, 0.9))
    for batch in (1, 64):
        x = torch.randn(batch, 3, 32, 32, device=DEVICE)
        ms = {}
        with torch.inference_mode():
            for name, model in (("dense", dense), ("90% fine-grained", sparse)):
                timer = benchmark.Timer(stmt="model(x)", globals={"model": model, "x": x})
                ms[name] = timer.blocked_autorange(min_run_time=0.2 if SMALL else 1.0).median * 1000
        row(
            "h latency",
            f"lab VGG batch {batch}: 90% fine-grained / dense (torch.utils.benchmark median)",
            f"**{ms['90% fine-grained'] / ms['dense']:.3f}** (pruned {ms['90% fine-grained']:.3f} ms, "
            f"dense {ms['dense']:.3f} ms)",
            "expected ~1.0x: zeroed weights run through the same dense kernels",
        )
    channel_latency(dense)


def channel_latency(dense) -> None:
    """The lab's channel pruning at 0.3 and 0.5 (conv0..conv6), timed side by side with dense (ABBA)."""
    from prunetui.core.channel import prune_channels
    from prunetui.core.cost import count_macs, measure_latency_pair

    x = torch.randn(1, 3, 32, 32, device=DEVICE)
    for ratio in (0.3, 0.5):
        targets = {f"backbone.conv{i}.weight": ratio for i in range(7)}
        smaller = prune_channels(dense, x, targets).model.eval()
        for batch in (1, 64):
            fat, slim = measure_latency_pair(dense, smaller, x, batch, min_run_time=0.4 if SMALL else 2.0)
            row(
                "h latency",
                f"lab VGG batch {batch}: channel {ratio} / dense (ABBA, medians)",
                f"**{slim.ms / fat.ms:.3f}** (pruned {slim.ms:.3f} ms, dense {fat.ms:.3f} ms)",
                f"MACs {count_macs(smaller, x):,} of {count_macs(dense, x):,}",
            )


# --- i. peak memory of a large scan --------------------------------------------------------------------
def memory() -> None:
    """resnet50 scanned under the default activation budget, 256 MiB and 64 MiB: the plan (images per
    batch, batches held), its planned peak and the measured one against each budget."""
    from prunetui.core.scan_memory import MIB
    from prunetui.core.sensitivity import DEFAULT_SPARSITIES, ScanOptions
    from prunetui.core.sensitivity import scan as core_scan
    from prunetui.sources import load_model

    count, side = size(64, 2), size(224, 64)
    model = load_model("torchvision:resnet50")[0].to(DEVICE)
    images = torch.randn(count, 3, side, side, generator=torch.Generator().manual_seed(0))
    loader = DataLoader(TensorDataset(images, torch.randint(0, 1000, (count,))), batch_size=32)
    names = [name for name, p in model.named_parameters() if p.dim() > 1]
    layers = [*names[:2], names[-1]] if SMALL else names
    sparsities = [0.5] if SMALL else list(DEFAULT_SPARSITIES)
    grids = []
    for label, budget in {"default": None, "256 MiB": 256 * MIB, "64 MiB": 64 * MIB}.items():
        if CUDA:
            torch.cuda.empty_cache()
        options = ScanOptions(activation_budget=budget)
        result, seconds = clock(core_scan, model, loader, sparsities, layers, options=options)
        grids.append(result.layers)
        plan = result.memory
        if CUDA:  # the scan's own peak: above what was allocated once its images were held
            used = f"peak {plan['peak'] / MIB:.0f} MiB above the scan's start"
            used += f" ({torch.cuda.max_memory_allocated(DEVICE) / MIB:.0f} MiB allocated in all)"
            within = "within" if plan["peak"] <= plan["budget"] else "OVER"
        else:
            used = "n/a on CPU (dry run)"
            within = "planned within" if plan["planned_peak"] <= plan["budget"] else "planned OVER"
        row(
            "i memory",
            f"scan torchvision:resnet50, {len(layers)} layers x {len(sparsities)} sparsities, "
            f"{count} images {side}x{side}, activation budget {label} ({plan['budget'] / MIB:.0f} MiB)",
            f"{used}, {within} the budget",
            f"plan: batches of {plan['batch_size']} images, {plan['batches_per_chunk']} held at once, "
            f"planned peak {plan['planned_peak'] / MIB:.0f} MiB; {seconds:.1f} s, path {result.path}"
            + (f"; {plan['warning']}" if plan["warning"] else ""),
        )
    row("i memory", "grids across the budgets", "equal" if all(g == grids[0] for g in grids) else "DIFFERENT")


SECTIONS = {f.__name__: f for f in (env, tests, scan, finetune, accel, data, nccl, latency, memory, speedup)}

if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in SECTIONS:
        raise SystemExit(f"usage: gpu_check.py {{{','.join(SECTIONS)}}}")
    print(f"== {sys.argv[1]} on {DEVICE}{' (small sizes)' if SMALL else ''}", flush=True)
    SECTIONS[sys.argv[1]]()
