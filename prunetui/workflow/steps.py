"""Each user-level step once: evaluate the dense model, prune, finetune, resume, scan, suggest, export.

A step takes the session, a `say(text, style)` for the human lines (always the strings of
workflow.lines), the core's `report` callback and a cancel event, and returns plain data. The CLI
prints the lines and turns the data into JSON; the TUI runs the same call in a worker.
"""

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from prunetui.core.events import EpochEnd, Event, Notice, Report, ignore
from prunetui.core.export import Exported, export_checkpoint
from prunetui.core.finetune import FinetuneResult, FinetuneSettings
from prunetui.core.sensitivity import DEFAULT_SPARSITIES, ScanOptions, ScanResult
from prunetui.core.session import Session
from prunetui.core.suggest import ScanTable, Suggestion
from prunetui.errors import UserError
from prunetui.workflow import channel_steps, lines, recovery
from prunetui.workflow.goals import Goal, propose

if TYPE_CHECKING:
    from prunetui.distributed.launch import Rendezvous

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


def prune(
    session: Session,
    say: Say,
    report: Report = ignore,
    cancel: threading.Event | None = None,
    targets: dict[str, float] | None = None,
    predicted: float | None = None,
    start: str = "dense",
) -> float | None:
    """Prune to `targets` (default: the session's) by the session's method, from the dense weights or
    (`start="current"`) further from the weights as they are; measure the accuracy before finetuning
    when there is data. `predicted`: the accuracy a suggestion predicted for these targets (the run is
    then named "suggested"), said beside the measured one. The last line says how long it took."""
    started = time.perf_counter()
    targets = dict(targets if targets is not None else session.targets)
    if start == "current":
        _say_further(session, targets, say)
    else:
        say(lines.pruning_from_dense(), "dim")
        _say_held_zeros(session, targets, say)
    session.prune(
        targets, run_name=SUGGESTED_RUN if predicted is not None else None, start=start, cancel=cancel
    )
    channel_steps.say_channels(session, say)
    channel_steps.measure_cost(session, say)  # MACs, params, latency against dense (both methods)
    say_size(session, say)
    accuracy = None
    if session.data is not None:
        accuracy = session.evaluate(report, cancel)
        say(lines.accuracy_before_finetune(accuracy))
        if predicted is not None:
            say(lines.predicted_vs_measured(predicted, accuracy))
    say(lines.finished("Prune", time.perf_counter() - started), "dim")
    return accuracy


def _say_further(session: Session, targets: dict[str, float], say: Say) -> None:
    """Which weights pruning further starts from, and the targets below what a layer already has."""
    run = session.current_run
    if run is None:
        say(f"Nothing pruned yet: {lines.pruning_from_dense().lower()}", "dim")
        _say_held_zeros(session, targets, say)
        return
    say(lines.pruning_further(run.name, run.percent_of_dense), "dim")
    now = session.pruned_sparsity()
    below = [
        name for name in session.layer_names if targets.get(name, 0.0) < now[name] - 1e-9 and now[name] > 0
    ]
    if below:
        layers = ", ".join(f"{name} {targets.get(name, 0.0):.2f} < {now[name]:.2f}" for name in below[:3])
        more = f" and {len(below) - 3} more" if len(below) > 3 else ""
        say(f"Targets below the current sparsity ({layers}{more}): those layers keep theirs", "yellow")


def _say_held_zeros(session: Session, targets: dict[str, float], say: Say) -> None:
    """Targets below a layer's zeros at load do not regrow them: say so, once per prune."""
    if session.regrow:
        return
    start = session.start_sparsity()
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


def _finetune_outcome(session: Session, result: FinetuneResult, say: Say, started: float) -> FinetuneResult:
    seconds = time.perf_counter() - started
    if result.cancelled and result.best_accuracy is None:
        say(lines.FINETUNE_CANCELLED_AT_ONCE, "yellow")
        return result
    if result.cancelled:
        say(lines.finetune_cancelled(result.completed, seconds), "yellow")
    say_size(session, say)
    say(lines.accuracy_after_finetune(result.best_accuracy))
    if not result.cancelled:
        say(lines.finished("Finetune", seconds), "dim")
    return result


def finetune(
    session: Session,
    settings: FinetuneSettings,
    say: Say,
    report: Report = ignore,
    cancel: threading.Event | None = None,
    nproc: int = 1,
    rendezvous: "Rendezvous | None" = None,
) -> FinetuneResult:
    """Finetune the model as it is with its masks held; the epoch lines said as they end."""
    require_data(session, "finetune")
    if settings.schedule != "agp":  # an AGP schedule grows the masks to the targets shown
        say_stale_targets(session, say, "finetuning")
    processes = f", {nproc} processes" if nproc > 1 else ""
    say(lines.FINETUNE_HEADER)
    say(
        f"{settings.epochs} epoch{'s' if settings.epochs != 1 else ''}, lr {settings.lr:g}, {len(session.masks)} layers masked "
        f"({session.method.name}){processes}",
        "dim",
    )
    if recovery.describe(settings):
        say(recovery.describe(settings), "dim")
    started = time.perf_counter()
    result = session.finetune(settings, _epoch_lines(say, report), cancel, nproc=nproc, rendezvous=rendezvous)
    return _finetune_outcome(session, result, say, started)


def resume(
    session: Session,
    run_id: str,
    say: Say,
    report: Report = ignore,
    cancel: threading.Event | None = None,
    nproc: int = 1,
    rendezvous: "Rendezvous | None" = None,
    label: str | None = None,
) -> FinetuneResult:
    """Go on with an interrupted finetune from its last completed epoch. `label`: how the front end
    numbers the run (default: `run_id` as given)."""
    require_data(session, "resume")
    record = session.find_run(run_id)
    done = f"after epoch {len(record.epochs)} of {record.epochs_planned}"
    say(f"Resuming run {label or run_id} ({record.name}) {done}")
    now = session.origin.data_fingerprint
    if record.data_fingerprint and now and record.data_fingerprint != now:
        say(f"warning: the data behind {record.data} changed since this run started", "yellow")
    started = time.perf_counter()
    result = session.resume(run_id, _epoch_lines(say, report), cancel, nproc=nproc, rendezvous=rendezvous)
    return _finetune_outcome(session, result, say, started)


def scan(
    session: Session,
    say: Say,
    report: Report = ignore,
    cancel: threading.Event | None = None,
    sparsities: Sequence[float] = DEFAULT_SPARSITIES,
    layers: Sequence[str] | None = None,
    options: ScanOptions | None = None,
    use_cache: bool = True,
    nproc: int = 1,
    rendezvous: "Rendezvous | None" = None,
) -> ScanResult:
    """The sensitivity scan of the model as it is now, by the session's method; its notices (a memory
    plan over the budget, core.scan_memory) are said as they come."""
    require_data(session, "scan")
    result = session.scan(
        sparsities,
        layers,
        notices_said(report, say),
        cancel,
        nproc=nproc,
        rendezvous=rendezvous,
        options=options,
        use_cache=use_cache,
    )
    if result.cancelled:
        total = len(layers) if layers is not None else len(session.layer_names)
        say(lines.scan_cancelled(result.seconds, len(result.layers), total), "yellow")
    else:
        say(lines.scan_finished(result.seconds))
    return result


def scan_table(session: Session, result: ScanResult | None = None, **curves) -> ScanTable:
    """What core.suggest needs of a scan: the grid, the base accuracy, the curves, and the session
    method's exact kept counts. Pass a ScanResult, or `sparsities`, `base_accuracy` and `curves`."""
    if result is not None:
        curves = {
            "sparsities": result.sparsities,
            "base_accuracy": result.base_accuracy,
            "curves": result.layers,
        }
    return ScanTable(
        curves["sparsities"],
        curves["base_accuracy"],
        curves["curves"],
        session.layer_names,
        session.kept_count,
    )


def propose_targets(session: Session, table: ScanTable, goal: Goal, locked: dict[str, float]) -> Suggestion:
    """The suggested targets for `goal` (sizes projected exactly by the session's method)."""
    return propose(goal, table, session.projected_size, locked)


@dataclass
class Suggested:
    scan: ScanResult | None  # None for a global suggestion (no scan)
    suggestion: Suggestion
    accuracy_before: float | None  # measured after pruning to the suggestion
    accuracy_recalibrated: float | None = None  # and after BN recalibration, when asked for
    measured: "recovery.Measured | None" = None  # the baselines and the refinement


def suggest(
    session: Session,
    goal: Goal,
    say: Say,
    sparsities: Sequence[float],
    locked_names: Sequence[str] = (),
    report: Report = ignore,
    cancel: threading.Event | None = None,
    recalibrate: bool = False,
    use_global: bool = False,
    cap: float | None = None,
    measures: int = recovery.MEASURES,
    activation_budget: int | None = None,
) -> Suggested:
    """Scan the unlocked layers (after BN recalibration with `recalibrate`; `activation_budget`: bytes,
    None for the device's default), propose targets for `goal`, measure them against uniform and global
    pruning at the same size and refine them by measured moves (workflow.recovery), prune to the result
    and measure it. `use_global`: global pruning at the budget instead (no scan, `cap` per layer)."""
    require_data(session, "suggest")
    locked = {n: session.targets[n] for n in locked_names}
    result, measured = None, None
    if use_global:
        suggestion = recovery.global_suggestion(session, goal, locked, cap)
    else:
        unlocked = [n for n in session.layer_names if n not in locked_names]
        options = replace(
            recovery.scan_options(recalibrate) or ScanOptions(), activation_budget=activation_budget
        )
        result = scan(session, say, report, cancel, sparsities, unlocked, options)
        suggestion = propose_targets(session, scan_table(session, result), goal, locked)
        measured = recovery.measure_and_refine(
            session, suggestion, goal, say, locked, recalibrate, measures, report, cancel
        )
        suggestion = measured.suggestion
    session.targets = dict(suggestion.targets)
    predicted = suggestion.predicted_accuracy
    before = prune(session, say, report, cancel, predicted=None if recalibrate else predicted)
    recalibrated = recovery.recalibrate(session, say, report, cancel, predicted) if recalibrate else None
    return Suggested(result, suggestion, before, recalibrated, measured)


def export(session: Session, path: str | Path, profile_name: str, overwrite: bool, say: Say) -> Exported:
    """Write the model as it is (checkpoint + side profile) and say what it weighs on disk."""
    say_stale_targets(session, say, "the export writes")
    written = export_checkpoint(session, path, profile_name, overwrite=overwrite)
    size = session.current_size()
    say(f"Exported {written.path} ({size:.2f} MiB = {session.percent(size):.2f}% of dense)")
    say(
        f"On disk: {written.dense_bytes / 2**20:.2f} MiB as saved, {written.sparse_bytes / 2**20:.2f} MiB "
        f"as bitmask + nonzero values; profile and figures in {written.side_file.name}"
    )
    return written
