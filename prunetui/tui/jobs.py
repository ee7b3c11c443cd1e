"""The jobs the TUI runs, one at a time, in a thread worker. Each one is a few Session calls.

A job receives a JobContext: `report` is the core's progress callback, `cancel` its cancel event,
and `say` writes a log line. Everything reaches the UI as a posted message.
"""

import threading
import time
from collections.abc import Callable
from pathlib import Path

import torch
from textual.message import Message

from prunetui.core.events import Event, Progress
from prunetui.core.export import export_checkpoint
from prunetui.core.finetune import FinetuneResult, FinetuneSettings
from prunetui.core.runs import RunRecord
from prunetui.core.sensitivity import DEFAULT_SPARSITIES, ScanResult
from prunetui.core.session import Session
from prunetui.errors import JobFailed, UserError
from prunetui.tui.messages import (
    FinetuneStarted,
    JobLine,
    JobProgress,
    JobReport,
    RunsLoaded,
    ScanLoaded,
    ScanStarted,
)

PROGRESS_INTERVAL = 0.1  # seconds: about 10 progress messages a second at most
SUGGESTED_RUN = "suggested"


class JobContext:
    def __init__(self, post: Callable[[Message], object], cancel: threading.Event) -> None:
        self.post = post
        self.cancel = cancel
        self._last_progress = 0.0

    def report(self, event: Event) -> None:
        if not isinstance(event, Progress):
            self.post(JobReport(event))
            return
        now = time.monotonic()
        if now - self._last_progress >= PROGRESS_INTERVAL or event.done == event.total:
            self._last_progress = now
            self.post(JobProgress(event))

    def say(self, text: str, style: str = "") -> None:
        self.post(JobLine(text, style))


Job = Callable[[JobContext], None]


OUT_OF_MEMORY_HINT = "try a smaller batch or --device cpu"


def is_out_of_memory(error: BaseException) -> bool:
    return isinstance(error, torch.OutOfMemoryError) or (
        isinstance(error, RuntimeError) and "out of memory" in str(error)
    )


def _first_sentences(text: str, count: int = 2) -> str:
    """torch's out-of-memory message runs to a paragraph: its first sentences say what happened."""
    return ". ".join(text.splitlines()[0].split(". ")[:count]).rstrip(".")


def error_text(error: BaseException) -> str:
    """A UserError or JobFailed (the processes' own lines) is shown as is; out of memory with what to do;
    anything else with its type, so a bug report can name it."""
    if is_out_of_memory(error):
        return f"out of GPU memory: {_first_sentences(str(error))}, {OUT_OF_MEMORY_HINT}"
    if isinstance(error, JobFailed) and "out of memory" in str(error):
        return f"{error}\n{OUT_OF_MEMORY_HINT}"
    if isinstance(error, UserError | JobFailed):
        return str(error)
    return f"{type(error).__name__}: {error}"


def _say_size(session: Session, ctx: JobContext) -> None:
    size = session.current_size()
    ctx.say(f"Sparse model has size={size:.2f} MiB = {session.percent(size):.2f}% of dense model size")


def last_scan(session: Session) -> ScanResult | None:
    """The cached scan of the model as it is now, with the grid and options `s` uses, if one was stored."""
    result = session.stored_scan()
    return result if result is not None and result.base_accuracy is not None and result.layers else None


def load_runs(session: Session, ctx: JobContext) -> None:
    records = session.runs()
    ctx.post(RunsLoaded(records, list(session.store.unreadable) if session.store is not None else []))


def open_session(session: Session, ctx: JobContext) -> None:
    """At start: the runs recorded here and the last scan of this model at once, then the dense accuracy."""
    load_runs(session, ctx)
    scan = last_scan(session)
    if scan is not None:
        ctx.post(ScanLoaded(scan))
    evaluate_dense(session, ctx)


def evaluate_dense(session: Session, ctx: JobContext) -> None:
    ctx.say(f"Dense model has size={session.dense_size:.2f} MiB")
    if session.data is None:
        ctx.say("No data: accuracy n/a (start with --data to evaluate, scan or finetune)", "yellow")
        return
    accuracy = session.evaluate(ctx.report, ctx.cancel)
    ctx.say(f"Dense model has accuracy={accuracy:.2f}%")


def scan(session: Session, ctx: JobContext) -> None:
    base = session.accuracy if session.accuracy is not None else session.evaluate(ctx.report, ctx.cancel)
    ctx.post(ScanStarted(base))
    result = session.scan(DEFAULT_SPARSITIES, report=ctx.report, cancel=ctx.cancel)
    if result.cancelled:
        done = f"{len(result.layers)} of {len(session.layer_names)} layers"
        ctx.say(f"Scan cancelled after {result.seconds:.0f} s ({done})", "yellow")
    else:
        ctx.say(f"Scan finished in {result.seconds:.0f} s")


def prune(
    session: Session, targets: dict[str, float], ctx: JobContext, predicted: float | None = None
) -> None:
    """`predicted`: the accuracy a suggestion predicted for `targets` (then the run is named "suggested",
    as `prunetui suggest` names it), to compare with the measured one."""
    session.prune(targets, run_name=SUGGESTED_RUN if predicted is not None else None)
    _say_size(session, ctx)
    if session.data is not None:
        accuracy = session.evaluate(ctx.report, ctx.cancel)
        ctx.say(f"Sparse model has accuracy={accuracy:.2f}% before finetuning")
        if predicted is not None:
            ctx.say(
                f"Predicted {predicted:.2f}% before finetuning (sum of scan drops); measured {accuracy:.2f}%"
            )


def finetune(
    session: Session,
    settings: FinetuneSettings,
    targets: dict[str, float] | None,
    ctx: JobContext,
    nproc: int = 1,
    predicted: float | None = None,
) -> None:
    """`targets`: prune to these first (the model was not pruned yet), or None to finetune it as it is."""
    if targets is not None:
        prune(session, targets, ctx, predicted)
    ctx.post(FinetuneStarted(session.accuracy))
    processes = f", {nproc} processes" if nproc > 1 else ""
    ctx.say(
        f"Finetuning {settings.epochs} epochs, lr {settings.lr:g}, {len(session.masks)} layers masked{processes}"
    )
    _say_finetune_result(session, session.finetune(settings, ctx.report, ctx.cancel, nproc=nproc), ctx)


def resume(session: Session, run: RunRecord, number: int, ctx: JobContext) -> None:
    """Go on with an interrupted finetune run from its last completed epoch."""
    ctx.post(FinetuneStarted(run.accuracy_before))
    ctx.say(f"Resuming run {number} ({run.name}) after epoch {len(run.epochs)} of {run.epochs_planned}")
    _say_finetune_result(session, session.resume(run.id, ctx.report, ctx.cancel), ctx)


def _say_finetune_result(session: Session, result: FinetuneResult, ctx: JobContext) -> None:
    if result.cancelled and result.best_accuracy is None:
        ctx.say("Finetune cancelled before the first epoch ended: weights unchanged", "yellow")
        return
    if result.cancelled:
        ctx.say(f"Finetune cancelled after {result.completed} epochs: kept the best one", "yellow")
    _say_size(session, ctx)
    ctx.say(f"Sparse model has accuracy={result.best_accuracy:.2f}% after finetuning")


def reset(session: Session, ctx: JobContext) -> None:
    session.reset()
    ctx.say("Reset to the dense model (targets kept)")


def export(session: Session, path: Path, profile_name: str, overwrite: bool, ctx: JobContext) -> None:
    written = export_checkpoint(session, path, profile_name, overwrite=overwrite)
    size = session.current_size()
    ctx.say(f"Exported {written.path} ({size:.2f} MiB = {session.percent(size):.2f}% of dense)")
    ctx.say(
        f"On disk: {written.dense_bytes / 2**20:.2f} MiB as saved, {written.sparse_bytes / 2**20:.2f} MiB "
        f"as bitmask + nonzero values; profile and figures in {written.side_file.name}"
    )
