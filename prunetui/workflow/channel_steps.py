"""The steps channel pruning adds, once for both front ends: the measured cost of a run, the lines
that report it, and the deployable ONNX export (core.onnx_export: checked, or one error line).

Every prune (either method) measures MACs, params and latency against the dense model; a run whose
model cannot be traced says so and goes on without them.
"""

from pathlib import Path

from prunetui.core.channel import DEPGRAPH, LAB_VGG
from prunetui.core.onnx_export import CHECK_BATCH, Exported
from prunetui.core.onnx_export import export_onnx as write_onnx
from prunetui.core.session import Session
from prunetui.core.speedup import speedup_of
from prunetui.errors import UserError

# what each built-in model takes
INPUT_SHAPES = {
    "demo": (1, 8, 8),
    "vgg-cifar": (3, 32, 32),
    "lenet-300-100": (1, 28, 28),
    "lenet5": (1, 28, 28),
}
IMAGENET_SHAPE = (3, 224, 224)


def spec_input_shape(spec: str) -> tuple[int, ...] | None:
    """The input shape (C, H, W) a model spec implies, when it implies one."""
    if spec in INPUT_SHAPES:
        return INPUT_SHAPES[spec]
    if spec.startswith(("torchvision:", "timm:")):
        return IMAGENET_SHAPE
    return None


def spec_example(spec: str):
    """Without data, the example input (channel groups, MACs, latency) the model spec implies, or None."""
    shape = spec_input_shape(spec)
    if shape is None:
        return None
    import torch

    return torch.zeros(1, *shape)


def millions(count: int | None) -> str:
    return "n/a" if count is None else f"{count / 1e6:.2f}M"


def ratio(dense: float | None, now: float | None) -> str:
    return "n/a" if not dense or not now else f"{dense / now:.2f}x"


def threads_text(count: int) -> str:
    return "1 thread" if count == 1 else f"{count} threads"


def cost_line(cost: dict) -> str:
    """One line: MACs and params against dense, latency and its speed-up, batch and threads stated."""
    fewer = ratio(cost["macs_dense"], cost["macs"])
    fewer = "the same" if cost["macs"] == cost["macs_dense"] else f"{fewer} fewer"
    line = (
        f"MACs {millions(cost['macs'])} of {millions(cost['macs_dense'])} dense ({fewer}), "
        f"params {millions(cost['params'])} of {millions(cost['params_dense'])}"
    )
    at_one = speedup_of(cost)
    if at_one is not None:
        line += (
            f"; latency {cost['latency_ms']:.2f} ms vs {cost['latency_ms_dense']:.2f} ms dense, "
            f"{at_one.text()}, at batch 1, {threads_text(cost['latency_threads'])}, {cost['latency_device']}"
        )
    at_batch = speedup_of(cost, at_batch=True)
    if at_batch is not None:
        line += (
            f"; at batch {cost['latency_batch']}: {cost['latency_ms_at_batch']:.2f} ms vs "
            f"{cost['latency_ms_dense_at_batch']:.2f} ms ({at_batch.short()})"
        )
    return line


def measure_cost(session: Session, say, latency: bool = True) -> dict:
    """Measure the model as it is now against dense, store it in the current run and say it. A model
    that cannot be traced or has no known input shape gets a yellow line and the keys as None."""
    try:
        cost = session.measure_run_cost(latency)
    except UserError:  # no data and a model spec that implies no input shape: the keys stay None
        return session.run_cost()
    except Exception as error:  # noqa: BLE001 - untraceable, or needs a batch > 1: the cost only informs
        say(f"Cost not measured: the model cannot be run on one example ({str(error)[:120]})", "yellow")
        return session.run_cost()
    say(cost_line(cost), "dim")
    warning = slower_warning(cost) if session.state.channel_pruned else None
    if warning is not None:
        say(warning, "yellow")
    return session.run_cost()


def list_units(session: Session, say, report=None, cancel=None) -> list:
    """The units of the session's method, listed once (channel groups of an attention model take
    seconds to minutes: progress to `report`, core.events.Cancelled when `cancel` is set), and a line
    saying how many can be pruned."""
    from prunetui.core.events import ignore

    units = session.units(report or ignore, cancel)
    prunable = sum(unit.prunable for unit in units)
    noun = session.method.noun
    say(f"{prunable} of {len(units)} {noun} can be pruned ({session.method.name})", "dim")
    return units


SLOWER = 0.95  # a prune's single ABBA timing below this speed-up is slower beyond its noise


def slower_warning(cost: dict) -> str | None:
    """A warning when a channel-pruned model measured slower than dense (speed-up under SLOWER) at a
    batch its cost was timed at; None otherwise: channel widths are no promise of speed."""
    pairs = [(1, cost.get("latency_ms_dense"), cost.get("latency_ms"))]
    if cost.get("latency_ms_at_batch") is not None:
        pairs.append(
            (cost.get("latency_batch"), cost.get("latency_ms_dense_at_batch"), cost["latency_ms_at_batch"])
        )
    slower = [
        f"{dense / now:.2f}x at batch {batch}"
        for batch, dense, now in pairs
        if dense and now and dense / now < SLOWER
    ]
    if not slower:
        return None
    return (
        f"Slower than dense: {', '.join(slower)} (measured side by side). Fewer MACs need not run faster "
        "on this device: suggest --speedup (2x in a) plans widths on measured latency"
    )


def run_cost_row(run) -> dict:
    """A run record's measured cost as the `runs --json` keys (None where not measured)."""
    from prunetui.core.run_cost import COST_KEYS

    return {key: run.cost.get(key) for key in COST_KEYS}


def channels_kept(session: Session) -> dict[str, tuple[int, int]]:
    """(kept, total) output channels of every group after this session's last channel prune ({} when
    the model in hand has had no channels removed)."""
    if not session.state.stages:
        return {}
    from prunetui.core.methods import Channel

    stage = session.state.stages[-1]
    totals = {unit.name: unit.size for unit in Channel().units(session.state)}
    return {name: (len(stage.kept.get(name, range(total))), total) for name, total in totals.items()}


def channels_json(session: Session) -> dict:
    """`channels`: kept / total output channels per group after a channel prune (absent otherwise)."""
    counts = channels_kept(session)
    return {"channels": {name: {"kept": k, "total": t} for name, (k, t) in counts.items()}} if counts else {}


def say_channels(session: Session, say) -> None:
    """After a channel prune: channels kept of each pruned group."""
    counts = channels_kept(session)
    if not counts:
        return
    pruned = [f"{name} {kept}/{total}" for name, (kept, total) in counts.items() if kept < total]
    shown = ", ".join(pruned[:4]) + (f" and {len(pruned) - 4} more" if len(pruned) > 4 else "")
    how = {LAB_VGG: "the lab's sort by input-weight norm", DEPGRAPH: "Torch-Pruning's dependency groups"}
    algorithm = session.state.stages[-1].algorithm
    say(f"Channels kept: {shown} ({how.get(algorithm, algorithm)})", "dim")


def export_onnx(session: Session, path: str | Path, overwrite: bool, say) -> Exported:
    """The model as it is, as an ONNX file checked against PyTorch (core.onnx_export.export_onnx) on the
    first evaluation images (the example input without data). Raises UserError: `path` exists and not
    `overwrite`, or the export fails (one line; nothing written, an earlier file unchanged)."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise UserError(f"{path} exists (use --force to replace it)")
    written = write_onnx(session.model, check_images(session), path)
    checked = "checked by onnx" if written.checked else "not checked: onnx is not installed"
    say(f"Exported {written.path} (ONNX opset 17, batch axis dynamic; {checked})")
    if written.differences:
        batches = " and ".join(str(n) for n in written.differences)
        say(
            f"onnxruntime outputs match PyTorch's at batch {batches} within "
            f"{max(written.differences.values()):.2e}",
            "dim",
        )
    else:
        say("onnxruntime outputs not compared with PyTorch's: onnxruntime is not installed", "yellow")
    if written.data_file is not None:
        say(f"Its weights are in {written.data_file} (keep the two files together)", "dim")
    return written


def check_images(session: Session):
    """Up to CHECK_BATCH evaluation images (read by index, not a whole evaluation batch), else the
    example input the session has."""
    from torch.utils.data import Dataset, IterableDataset, default_collate

    loader = session.data.eval if session.data is not None else None
    dataset = getattr(loader, "dataset", None)
    if isinstance(dataset, Dataset) and not isinstance(dataset, IterableDataset) and len(dataset) > 0:
        items = [dataset[i] for i in range(min(CHECK_BATCH, len(dataset)))]
        return (getattr(loader, "collate_fn", None) or default_collate)(items)[0]
    return session.example_input()
