"""Each user-level step once: evaluate the dense model, prune, finetune, resume, scan, export.

A step takes the session, a `say(text, style)` for the human lines (always the strings of
workflow.lines), the core's `report` callback and a cancel event, and returns a result object holding
what the front ends print. The CLI prints the lines and turns the results into JSON; the TUI runs the
same call in a worker. Pruning and finetuning take a recipe (core.recipe): what a run does is said in
one place, whichever front end asked.
"""

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from prunetui.core.events import EpochEnd, Event, Notice, Report, ignore
from prunetui.core.export import Exported, export_checkpoint
from prunetui.core.finetune import FinetuneResult
from prunetui.core.recalibrate import batch_norms
from prunetui.core.recipe import Processes, Recipe
from prunetui.core.runs import RunRecord
from prunetui.core.sensitivity import DEFAULT_SPARSITIES, ScanOptions, ScanResult
from prunetui.core.session import Session
from prunetui.errors import UserError
from prunetui.workflow import channel_steps, lines, quantizing

Say = Callable[..., None]  # say(text, style="")
SUGGESTED_RUN = "suggested"


def say_nothing(text: str, style: str = "") -> None:
    """A `say` for callers that want the data only."""


def notices_said(report: Report, say: Say) -> Report:
    """`report` for every event but a Notice, which is said (in yellow) when it comes."""

    def heard(event: Event) -> None:
        if isinstance(event, Notice):
            say(event.text, "yellow")
        else:
            report(event)

    return heard


def require_data(session: Session, what: str) -> None:
    if session.data is None:
        raise UserError(f"{what} needs data: give a data spec (--data)")


def evaluate_dense(session: Session, say: Say, report: Report = ignore, cancel=None) -> float | None:
    """The dense size, and the dense accuracy when there is data (None without)."""
    say(lines.dense_size(session.dense_size))
    if session.data is None:
        say(lines.NO_DATA, "yellow")
        return None
    accuracy = session.evaluate(report, cancel)
    say(lines.dense_accuracy(accuracy))
    return accuracy


def say_size(session: Session, say: Say) -> None:
    size = session.current_size()
    say(lines.sparse_size(size, session.percent(size)))


@dataclass
class Pruned:
    """What a prune step did: its run record and the accuracies it measured (None without data)."""

    run: RunRecord
    accuracy_before: float | None
    accuracy_recalibrated: float | None = None


def prune(
    session: Session,
    say: Say,
    report: Report = ignore,
    cancel: threading.Event | None = None,
    recipe: Recipe | None = None,
    predicted: float | None = None,
) -> Pruned:
    """Prune by `recipe` (default: the session's plan) from the dense weights, or (start "current")
    further from the weights as they are; measure the accuracy before finetuning when there is data, and
    after BN recalibration when the recipe asks for it. `predicted`: the accuracy a suggestion predicted
    for these targets (the run is then named "suggested"), said beside the measurement it predicts. The
    last line says how long it took."""
    started = time.perf_counter()
    recipe = (recipe or session.recipe()).check()
    if recipe.start == "current":
        _say_further(session, dict(recipe.plan.targets), say)
    else:
        say(lines.pruning_from_dense(), "dim")
        _say_held_zeros(session, dict(recipe.plan.targets), say)
    run = session.prune(replace(recipe, name=SUGGESTED_RUN) if predicted is not None else recipe, cancel)
    channel_steps.say_channels(session, say)
    channel_steps.measure_cost(session, say)  # MACs, params, latency against dense (every method)
    say_size(session, say)
    before = recalibrated = None
    recalibrate = recipe.recovery.recalibrate_bn
    if session.data is not None:
        before = session.measured_before(report, cancel)
        say(lines.accuracy_before_finetune(before))
        if predicted is not None and not recalibrate:
            say(lines.predicted_vs_measured(predicted, before))
        if recalibrate:
            recalibrated = recalibrate_step(session, say, report, cancel, predicted)
    say(lines.finished("Prune", time.perf_counter() - started), "dim")
    return Pruned(run, before, recalibrated)


def recalibrate_step(session: Session, say: Say, report: Report = ignore, cancel=None,
                     predicted: float | None = None) -> float | None:  # fmt: skip
    """Recalibrate the model as it is now and say its accuracy (None without data); `predicted`: what a
    suggestion planned on recalibrated scan curves predicted, said beside it."""
    if session.data is None:
        say(lines.NO_DATA, "yellow")
        return None
    if not batch_norms(session.model):  # nothing to recalibrate: the prune stands as it is
        say("No BatchNorm with running statistics: nothing to recalibrate", "yellow")
        return None
    accuracy = session.recalibrate(report, cancel)
    say(lines.accuracy_recalibrated(accuracy))
    if predicted is not None:
        say(
            f"Predicted {predicted:.2f}% after BN recalibration (sum of scan drops); measured {accuracy:.2f}%"
        )
    return accuracy


def _say_further(session: Session, targets: dict[str, float], say: Say) -> None:
    """Which weights pruning further starts from, and the targets below what a layer already has."""
    run = session.current_run
    if run is None:
        say(f"Nothing pruned yet: {lines.pruning_from_dense().lower()}", "dim")
        _say_held_zeros(session, targets, say)
        return
    say(lines.pruning_further(run.name, run.percent_of_dense), "dim")
    now = session.state.sparsity()
    below = [
        name for name in session.layer_names if targets.get(name, 0.0) < now[name] - 1e-9 and now[name] > 0
    ]
    if below:
        layers = ", ".join(f"{name} {targets.get(name, 0.0):.2f} < {now[name]:.2f}" for name in below[:3])
        more = f" and {len(below) - 3} more" if len(below) > 3 else ""
        say(f"Targets below the current sparsity ({layers}{more}): those layers keep theirs", "yellow")


def _say_held_zeros(session: Session, targets: dict[str, float], say: Say) -> None:
    """Targets below a layer's zeros at load do not regrow them: say so, once per prune."""
    if session.state.regrow:
        return
    start = session.state.start_sparsity()
    below = [name for name, s in start.items() if 0 < targets.get(name, 0.0) < s - 1e-9]
    if below:
        layers = ", ".join(f"{name} {targets[name]:.2f} < {start[name]:.2f}" for name in below[:3])
        more = f" and {len(below) - 3} more" if len(below) > 3 else ""
        say(f"Targets below the zeros at load ({layers}{more}): those zeros stay pruned (--regrow)", "yellow")


def say_stale_targets(session: Session, say: Say, what: str) -> None:
    """When the targets shown are not those the weights hold, say what `what` acts on instead."""
    if session.targets_changed():
        say(lines.stale_targets(what, _held_description(session)), "yellow")


def _held_description(session: Session) -> str:
    run = session.current_run
    if run is None or not any(session.pruned_targets().values()):
        return "the unpruned weights"
    size = session.current_size()
    return f"the masks of {run.name} ({session.percent(size):.2f}% of dense)"


def _epoch_lines(say: Say, report: Report) -> Report:
    """The report, with each epoch's line said in the blog's format as it ends."""

    def on_event(event: Event) -> None:
        if isinstance(event, EpochEnd):
            say(f"    {event.line()}")
        report(event)

    return on_event


@dataclass
class Finetuned:
    """What a finetune (or its resumption) did, and what it left on disk."""

    result: FinetuneResult
    run: RunRecord | None
    accuracy_recalibrated: float | None = None  # after an AGP schedule, when the recipe asks for it
    written: dict[str, str] | None = None  # {"checkpoint": path, "onnx": path} of the recipe's outputs
    quantized: quantizing.QuantizeResult | None = None  # when the recipe quantizes once the finetune is done


def _finetune_outcome(session: Session, result: FinetuneResult, say: Say, started: float) -> None:
    seconds = time.perf_counter() - started
    if result.cancelled and result.best_accuracy is None:
        say(lines.FINETUNE_CANCELLED_AT_ONCE, "yellow")
        return
    if result.cancelled:
        say(lines.finetune_cancelled(result.completed, seconds), "yellow")
    say_size(session, say)
    say(lines.accuracy_after_finetune(result.best_accuracy))
    if not result.cancelled:
        say(lines.finished("Finetune", seconds), "dim")


def finetune(
    session: Session,
    recipe: Recipe,
    say: Say,
    report: Report = ignore,
    cancel: threading.Event | None = None,
) -> Finetuned:
    """Finetune the model as it is with its masks held (an AGP recipe grows them to its targets), the
    epoch lines said as they end; then what the recipe asks once it is done (core.recipe: BN
    recalibration after an AGP schedule, the output files)."""
    require_data(session, "finetune")
    recipe = recipe.check()
    if not recipe.recovery.gradual:  # an AGP schedule grows the masks to the recipe's targets
        say_stale_targets(session, say, "finetuning")
    processes = f", {recipe.processes.nproc} processes" if recipe.processes.nproc > 1 else ""
    epochs = recipe.finetune.epochs
    say(lines.FINETUNE_HEADER)
    masked = len(recipe.plan.active()) if recipe.recovery.gradual else len(session.state.masks)
    say(f"{epochs} epoch{'s' if epochs != 1 else ''}, lr {recipe.finetune.lr:g}, {masked} layers masked "
        f"({recipe.plan.method}){processes}", "dim")  # fmt: skip
    if lines.recovery_line(recipe):
        say(lines.recovery_line(recipe), "dim")
    started = time.perf_counter()
    result = session.finetune(recipe, _epoch_lines(say, report), cancel)
    _finetune_outcome(session, result, say, started)
    return complete(session, recipe, result, say, report, cancel)


def resume(
    session: Session,
    run_id: str,
    say: Say,
    report: Report = ignore,
    cancel: threading.Event | None = None,
    processes: Processes | None = None,
    label: str | None = None,
    outputs=None,
) -> Finetuned:
    """Go on with an interrupted finetune from its last completed epoch, then do what its recipe asks
    once done (its output files, or `outputs` instead). `label`: how the front end numbers the run."""
    require_data(session, "resume")
    record = session.find_run(run_id)
    done = f"after epoch {len(record.epochs)} of {record.epochs_planned}"
    say(f"Resuming run {label or run_id} ({record.name}) {done}")
    now = session.origin.data_fingerprint
    if record.data_fingerprint and now and record.data_fingerprint != now:
        say(f"warning: the data behind {record.data} changed since this run started", "yellow")
    started = time.perf_counter()
    result, recipe = session.resume(run_id, _epoch_lines(say, report), cancel, processes)
    _finetune_outcome(session, result, say, started)
    recipe = replace(recipe, outputs=outputs) if outputs is not None else recipe
    return complete(session, recipe, result, say, report, cancel)


def complete(session: Session, recipe: Recipe, result: FinetuneResult, say: Say, report: Report = ignore,
             cancel=None) -> Finetuned:  # fmt: skip
    """After a finetune that was not cancelled: BN recalibration when an AGP schedule pruned (the
    recipe's `recalibrate_bn`), the recipe's output files, then the resume state is dropped (only once
    the weights are safely written: a failure here keeps it, and `prunetui resume` can go on)."""
    run = session.current_run
    if result.cancelled or result.best_accuracy is None:
        return Finetuned(result, run)
    recalibrated = None
    if recipe.recovery.gradual and recipe.recovery.recalibrate_bn:
        recalibrated = recalibrate_step(session, say, report, cancel)
    quantized = quantizing.quantize(session, recipe, say, report, cancel)
    written = write_outputs(session, recipe, say)
    if run is not None and session.recorder.store is not None:
        session.recorder.store.drop_resume_state(run)
        session.recorder.save(run)
    return Finetuned(result, run, recalibrated, written, quantized)


def write_outputs(session: Session, recipe: Recipe, say: Say) -> dict[str, str]:
    """The recipe's output files (checkpoint or .ptz, ONNX, int8 ONNX), recorded in the current run as
    its weights with their bytes on disk."""
    outputs, written = recipe.outputs, {}
    if outputs.checkpoint:
        writer = quantizing.export_compressed if outputs.compress else export
        written["checkpoint"] = str(
            writer(session, outputs.checkpoint, recipe.name, outputs.overwrite, say).path
        )
    if outputs.onnx:
        written["onnx"] = str(channel_steps.export_onnx(session, outputs.onnx, outputs.overwrite, say).path)
    if outputs.onnx_int8:
        int8 = quantizing.export_int8(session, outputs.onnx_int8, outputs.overwrite, say, written.get("onnx"))
        written["onnx_int8"] = str(int8.path)
    run = session.current_run
    if written:
        quantizing.record_files(session, written, say)
    if written and run is not None:
        run.weights = {key: str(Path(path).resolve()) for key, path in written.items()}
        session.recorder.save(run)
    return written


def check_outputs(outputs) -> None:
    """Refuse, before any work, output files that exist when the recipe may not replace them."""
    for path in (outputs.checkpoint, outputs.onnx, outputs.onnx_int8) if not outputs.overwrite else ():
        if path and Path(path).exists():
            raise UserError(f"{path} exists (use --force to replace it)")


def scan(
    session: Session,
    say: Say,
    report: Report = ignore,
    cancel: threading.Event | None = None,
    sparsities: Sequence[float] = DEFAULT_SPARSITIES,
    layers: Sequence[str] | None = None,
    options: ScanOptions | None = None,
    use_cache: bool = True,
    processes: Processes = Processes(),
) -> ScanResult:
    """The sensitivity scan of the model as it is now, by the session's method, over its prunable units
    (or `layers`); its notices (a memory plan over the budget, core.scan_memory) are said as they come."""
    require_data(session, "scan")
    heard = notices_said(report, say)
    result = session.scan(sparsities, layers, heard, cancel, options, processes, use_cache)
    if result.cancelled:
        total = len(layers) if layers is not None else len(session.unit_names())
        say(lines.scan_cancelled(result.seconds, len(result.layers), total), "yellow")
    else:
        say(lines.scan_finished(result.seconds))
    return result


def export(session: Session, path: str | Path, profile_name: str, overwrite: bool, say: Say) -> Exported:
    """Write the model as it is (checkpoint + side profile) and say what it weighs on disk."""
    say_stale_targets(session, say, "the export writes")
    written = export_checkpoint(session, path, profile_name, overwrite=overwrite)
    size = session.current_size()
    say(f"Exported {written.path} ({size:.2f} MiB = {session.percent(size):.2f}% of dense)")
    sparse = (  # what a sparse format would save: only where zeros are held (not a channel-pruned model's)
        f", {written.sparse_bytes / 2**20:.2f} MiB as bitmask + nonzero values" if session.state.masks else ""
    )
    say(f"On disk: {written.dense_bytes / 2**20:.2f} MiB as saved{sparse}; profile and figures in "
        f"{written.side_file.name}")  # fmt: skip
    return written
