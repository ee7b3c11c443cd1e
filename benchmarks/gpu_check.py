"""The sections of benchmarks/gpu_check.sh, one per call: each prints its log and its results rows.

    python benchmarks/gpu_check.py SECTION      (env tests scan finetune accel data nccl latency memory)

Environment: GPU_CHECK_DEVICE (default cuda), GPU_CHECK_SMALL=1 for tiny sizes (the CPU dry run),
GPU_CHECK_ROWS: a file each results row (a Markdown table row) is appended to as soon as it is known,
so a section that fails or runs out of time keeps the rows it had. Figures are ratios of runs made side
by side in the same process (or, for scan and finetune, by the benchmark scripts they wrap), after an
untimed warm-up of each side.
"""

import copy
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

BENCHMARKS = Path(__file__).resolve().parent
DEVICE = torch.device(os.environ.get("GPU_CHECK_DEVICE", "cuda"))
SMALL = os.environ.get("GPU_CHECK_SMALL") == "1"
CUDA = DEVICE.type == "cuda"
AMP_CONFIGS = [(amp, cl) for amp in (None, "bf16", "fp16") for cl in (False, True)]
SMALL_AMP_CONFIGS = [(None, False), ("bf16", True), ("fp16", False)]  # each precision and layout once


def size(full: int, small: int) -> int:
    return small if SMALL else full


# --- output --------------------------------------------------------------------------------------------
def row(section: str, measure: str, result: str, note: str = "") -> None:
    """One results row: printed, and appended to GPU_CHECK_ROWS at once."""
    cells = [str(c).replace("|", "\\|").replace("\n", " ") for c in (section, measure, result, note)]
    line = "| " + " | ".join(cells) + " |"
    print(line, flush=True)
    rows = os.environ.get("GPU_CHECK_ROWS")
    if rows:
        with open(rows, "a", encoding="utf-8") as f:
            f.write(line + "\n")


def sync() -> None:
    if CUDA:
        torch.cuda.synchronize(DEVICE)


def clock(run, *args, **kwargs) -> tuple[object, float]:
    """(run(...), wall seconds), the device synchronised before and after."""
    sync()
    started = time.perf_counter()
    result = run(*args, **kwargs)
    sync()
    return result, time.perf_counter() - started


def amp_name(amp: str | None, channels_last: bool) -> str:
    return f"{amp or 'fp32'}, {'channels_last' if channels_last else 'NCHW'}"


def masks_hold(model: nn.Module, masks: dict) -> bool:
    params = dict(model.named_parameters())
    return all(bool(torch.all(params[n][~m.to(params[n].device)] == 0)) for n, m in masks.items())


def every_layer(model: nn.Module, sparsity: float) -> dict[str, float]:
    return {name: sparsity for name, p in model.named_parameters() if p.dim() > 1}


def run_script(args: list[str]) -> str:
    """Run a benchmark script (or pytest) in a child process, its output into this log; its output."""
    command = [sys.executable, *args]
    print("$", " ".join(command), flush=True)
    done = subprocess.run(command, capture_output=True, text=True, cwd=BENCHMARKS.parent)
    print(done.stdout + done.stderr, flush=True)
    if done.returncode != 0:
        raise SystemExit(f"{args[0]} exited with {done.returncode}")
    return done.stdout


def find(pattern: str, text: str, default: str = "?") -> str:
    match = re.search(pattern, text, re.MULTILINE)
    return match.group(1) if match else default


def cifar_like(count: int, seed: int) -> torch.Tensor:
    return torch.randn(count, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


def teacher_setup(train: int, evals: int):
    """The lab's VGG, random weights, BatchNorm calibrated on random CIFAR-sized train images, labels its
    own predictions (as in scan_vs_lab.py): train and eval (images, labels) on the host."""
    from scan_vs_lab import calibrated_vgg, teacher_labels

    train_images, eval_images = cifar_like(train, 1), cifar_like(evals, 2)
    model = calibrated_vgg(train_images, DEVICE)
    train_labels = teacher_labels(model, train_images, DEVICE)
    eval_labels = teacher_labels(model, eval_images, DEVICE)
    return model, (train_images, train_labels), (eval_images, eval_labels)


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
    out = run_script(
        [
            "benchmarks/scan_vs_lab.py",
            "--device",
            str(DEVICE),
            "--images",
            str(images),
            "--rounds",
            str(rounds),
        ]
    )
    ratio = find(r"^ratio prunetui / lab: ([\d.]+) wall", out)
    ours, lab = find(r"^prunetui:\s+([\d.]+) s wall", out), find(r"^lab loop:\s+([\d.]+) s wall", out)
    speedup = f", {1 / float(ratio):.1f}x faster" if ratio not in ("?", "0.000") else ""
    row(
        "c scan",
        f"lab VGG, 54 points x {images} images: ours / lab loop (wall)",
        f"**{ratio}** (ours {ours} s, lab {lab} s{speedup})",
        "goal on a GPU: >= 20x faster, ratio <= 0.05",
    )
    same = find(r"^grids equal within one image per point: (\w+)", out)
    worst = find(r"largest difference: (\d+) images", out)
    row("c scan", "grid vs the lab loop", f"within one image: {same}", f"largest difference {worst} images")
    cli = find(r"^`prunetui scan` as a process: (.*)$", out, "not run")
    row("c scan", "`prunetui scan` as a process (imports included)", cli)


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


# --- e. autocast and channels_last ---------------------------------------------------------------------
def accel() -> None:
    from prunetui.core.accel import Acceleration
    from prunetui.core.augment import DeviceTrainBatches
    from prunetui.core.evaldata import hold_eval_data
    from prunetui.core.evaluate import evaluate
    from prunetui.core.finetune import FinetuneSettings
    from prunetui.core.finetune import finetune as core_finetune
    from prunetui.core.pruning import prune
    from prunetui.core.sensitivity import ScanOptions
    from prunetui.core.sensitivity import scan as core_scan

    dense, (train_x, train_y), (eval_x, eval_y) = teacher_setup(size(10_000, 16), size(10_000, 16))
    eval_loader = DataLoader(TensorDataset(eval_x, eval_y), batch_size=512)
    held = hold_eval_data(eval_loader, DEVICE, batch_size=1024)
    pruned = copy.deepcopy(dense)
    masks = prune(pruned, every_layer(pruned, 0.8))
    before = evaluate(pruned, held)
    train = DeviceTrainBatches(train_x.to(DEVICE), train_y.to(DEVICE), 128, augment=False)
    warm = DeviceTrainBatches(train_x[:256].to(DEVICE), train_y[:256].to(DEVICE), 128, augment=False)
    print(f"finetune: 80% of every layer pruned, accuracy before finetune {before:.2f}%", flush=True)
    configs = SMALL_AMP_CONFIGS if SMALL else AMP_CONFIGS
    base = None
    for amp, channels_last in configs:
        settings = FinetuneSettings(epochs=1, amp=amp, channels_last=channels_last)
        if not SMALL:
            core_finetune(copy.deepcopy(pruned), warm, held, masks, settings)  # untimed: kernel selection
        model = copy.deepcopy(pruned)
        torch.manual_seed(0)
        result, seconds = clock(core_finetune, model, train, held, masks, settings)
        base = base or seconds
        row(
            "e accel",
            f"finetune 1 epoch ({len(train_y)} images, batch 128), {amp_name(amp, channels_last)}",
            f"{seconds:.2f} s ({seconds / base:.2f}x fp32 NCHW)",
            f"accuracy {result.best_accuracy:.2f}% (before {before:.2f}%), masks held: {masks_hold(model, masks)}",
        )
    reference = None
    layers = ["backbone.conv7.weight", "classifier.weight"] if SMALL else None  # None: all 9
    for amp, channels_last in configs:
        options = ScanOptions(accel=Acceleration(amp=amp, channels_last=channels_last))
        if not SMALL:
            core_scan(dense, eval_loader, [0.5], ["classifier.weight"], options=options)  # untimed warm-up
        result, seconds = clock(core_scan, dense, eval_loader, layers=layers, options=options)
        reference = reference or (result, seconds)
        worst = max(
            abs(round((a - b) * len(eval_y) / 100))
            for name, row_ in reference[0].layers.items()
            for a, b in zip(row_, result.layers[name], strict=True)
        )
        row(
            "e accel",
            f"scan, {sum(map(len, result.layers.values()))} points x {len(eval_y)} images, "
            f"{amp_name(amp, channels_last)}",
            f"{seconds:.2f} s ({seconds / reference[1]:.2f}x fp32 NCHW)",
            f"dense {result.base_accuracy:.2f}%, grid within {worst} images of fp32 NCHW, path {result.path}",
        )


# --- f. data on the device vs on the host ---------------------------------------------------------------
PIXEL_MEAN, PIXEL_STD = 128 / 255, 50 / 255


class HostCifar(Dataset):
    """uint8 H x W x C images through the lab's train transforms per image (PIL), as torchvision's CIFAR10
    gives them, then a Normalize."""

    def __init__(self, images, labels):
        from torchvision import transforms

        self.images, self.labels = images, labels
        self.transform = transforms.Compose(
            [
                transforms.RandomCrop(32, padding=4),
                transforms.RandomHorizontalFlip(),
                transforms.ToTensor(),
                transforms.Normalize(PIXEL_MEAN, PIXEL_STD),
            ]
        )

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i):
        from PIL import Image

        return self.transform(Image.fromarray(self.images[i])), int(self.labels[i])


def one_pass(batches) -> int:
    seen = 0
    for images, labels in batches:
        images = images.to(DEVICE, non_blocking=True)
        seen += len(labels)
    return seen


def data() -> None:
    from prunetui.core.augment import DeviceTrainBatches
    from prunetui.core.evaldata import default_batch_size, hold_eval_data
    from prunetui.core.evaluate import evaluate
    from prunetui.core.finetune import FinetuneSettings
    from prunetui.core.finetune import finetune as core_finetune
    from prunetui.core.pruning import prune

    count = size(10_000, 64)
    model, (train_x, train_y), (eval_x, eval_y) = teacher_setup(count, count)
    host = DataLoader(TensorDataset(eval_x, eval_y), batch_size=512)  # the lab's test loader
    held, hold_seconds = clock(hold_eval_data, host, DEVICE, default_batch_size(DEVICE))
    evaluate(model, host)  # untimed warm-up of both
    evaluate(model, held)
    times = {"host": [], "held": []}
    accuracy = {}
    for which in ("host", "held", "held", "host"):
        accuracy[which], seconds = clock(evaluate, model, host if which == "host" else held)
        times[which].append(seconds)
    host_s, held_s = (sum(times[k]) / len(times[k]) for k in ("host", "held"))
    row(
        "f data",
        f"evaluate {count} images: held on the device / host DataLoader (batch 512)",
        f"**{held_s / host_s:.3f}** (held {held_s:.3f} s, host {host_s:.3f} s)",
        f"holding them once: {hold_seconds:.3f} s; accuracies {accuracy['held']:.2f}% / {accuracy['host']:.2f}%",
    )

    # The train images as CIFAR's uint8 pixels; ToTensor then Normalize(MEAN, STD) gives them back (to
    # 1/50), so the teacher's labels still hold and both sides train on the same images.
    pixels = (train_x.clamp(-2.5, 2.5) * 50 + 128).round().to(torch.uint8)
    host_set = HostCifar(pixels.permute(0, 2, 3, 1).contiguous().numpy(), train_y)
    restored = ((pixels.float() / 255 - PIXEL_MEAN) / PIXEL_STD).to(DEVICE)
    on_device = DeviceTrainBatches(restored, train_y.to(DEVICE), 128)
    next(iter(on_device))  # untimed warm-up
    device_s = clock(one_pass, on_device)[1]
    row("f data", f"crop+flip {count} images on the device (core.augment)", f"{device_s:.3f} s")
    for workers in (0, size(4, 2)):
        loader = DataLoader(host_set, batch_size=128, shuffle=True, num_workers=workers)
        host_s = clock(one_pass, loader)[1]
        row(
            "f data",
            f"crop+flip {count} images on the host (torchvision, PIL), {workers} workers",
            f"{host_s:.3f} s; device / host **{device_s / host_s:.3f}**",
        )
    workers = size(4, 2)
    loaders = {
        "device": on_device,
        f"host, {workers} workers": DataLoader(host_set, batch_size=128, shuffle=True, num_workers=workers),
    }
    pruned = copy.deepcopy(model)
    masks = prune(pruned, every_layer(pruned, 0.5))
    warm = DeviceTrainBatches(on_device.images[:256], on_device.labels[:256], 128)
    core_finetune(copy.deepcopy(pruned), warm, held, masks, FinetuneSettings(epochs=1))  # untimed warm-up
    epoch = {}
    for name, batches in loaders.items():
        result, epoch[name] = clock(
            core_finetune, copy.deepcopy(pruned), batches, held, masks, FinetuneSettings(epochs=1)
        )
        row(
            "f data",
            f"finetune epoch fed by crop+flip on the {name}",
            f"{epoch[name]:.2f} s",
            f"accuracy {result.best_accuracy:.2f}%",
        )
    device_epoch, host_epoch = epoch.values()
    row("f data", "finetune epoch: device-augmented / host-augmented", f"**{device_epoch / host_epoch:.3f}**")


# --- g. 2-process NCCL finetune ------------------------------------------------------------------------
def nccl() -> None:
    if CUDA and torch.cuda.device_count() < 2:
        row("g nccl", "2-process NCCL finetune", "skipped: 1 GPU")
        return
    from prunetui.core.finetune import FinetuneSettings
    from prunetui.core.finetune import finetune as core_finetune
    from prunetui.core.pruning import prune
    from prunetui.dist.launch import Launcher
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
    from prunetui.core.evaldata import default_activation_budget
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
    budgets = {"default": None, "256 MiB": 256 * 2**20}
    for label, budget in budgets.items():
        if CUDA:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(DEVICE)
        start = torch.cuda.memory_allocated(DEVICE) if CUDA else 0
        chosen = default_activation_budget(DEVICE) if budget is None else budget
        options = ScanOptions(activation_budget=budget)
        result, seconds = clock(core_scan, model, loader, sparsities, layers, options=options)
        if CUDA:
            peak = torch.cuda.max_memory_allocated(DEVICE)
            used = f"peak {peak / 2**20:.0f} MiB ({(peak - start) / 2**20:.0f} MiB above the model's {start / 2**20:.0f})"
        else:
            used = "n/a on CPU (dry run)"
        row(
            "i memory",
            f"scan torchvision:resnet50, {len(layers)} layers x {len(sparsities)} sparsities, "
            f"{count} images {side}x{side}, activation budget {label} ({chosen / 2**20:.0f} MiB)",
            used,
            f"{seconds:.1f} s, path {result.path}",
        )


SECTIONS = {f.__name__: f for f in (env, tests, scan, finetune, accel, data, nccl, latency, memory)}

if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in SECTIONS:
        raise SystemExit(f"usage: gpu_check.py {{{','.join(SECTIONS)}}}")
    print(f"== {sys.argv[1]} on {DEVICE}{' (small sizes)' if SMALL else ''}", flush=True)
    SECTIONS[sys.argv[1]]()
