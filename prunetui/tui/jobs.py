"""The jobs the TUI runs, one at a time, in a thread worker. Each one is a few Session calls.

A job receives a JobContext: `report` is the core's progress callback, `cancel` its cancel event,
and `say` writes a log line. Everything reaches the UI as a posted message.
"""

import threading
import time
from collections.abc import Callable
from pathlib import Path

from textual.message import Message

from prunetui.core.events import Event, Progress
from prunetui.core.export import export_checkpoint
from prunetui.core.finetune import FinetuneSettings
from prunetui.core.sensitivity import DEFAULT_SPARSITIES
from prunetui.core.session import Session
from prunetui.errors import UserError
from prunetui.tui.messages import FinetuneStarted, JobLine, JobProgress, JobReport, ScanStarted

PROGRESS_INTERVAL = 0.1  # seconds: about 10 progress messages a second at most


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


def error_text(error: BaseException) -> str:
    """A UserError is shown as is; anything else with its type, so a bug report can name it."""
    return str(error) if isinstance(error, UserError) else f"{type(error).__name__}: {error}"


def _say_size(session: Session, ctx: JobContext) -> None:
    size = session.current_size()
    ctx.say(f"Sparse model has size={size:.2f} MiB = {session.percent(size):.2f}% of dense model size")


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


def prune(session: Session, targets: dict[str, float], ctx: JobContext) -> None:
    session.prune(targets)
    _say_size(session, ctx)
    if session.data is not None:
        accuracy = session.evaluate(ctx.report, ctx.cancel)
        ctx.say(f"Sparse model has accuracy={accuracy:.2f}% before finetuning")


def finetune(
    session: Session, settings: FinetuneSettings, targets: dict[str, float] | None, ctx: JobContext
) -> None:
    """`targets`: prune to these first (the model was not pruned yet), or None to finetune it as it is."""
    if targets is not None:
        prune(session, targets, ctx)
    ctx.post(FinetuneStarted(session.accuracy))
    ctx.say(f"Finetuning {settings.epochs} epochs, lr {settings.lr:g}, {len(session.masks)} layers masked")
    result = session.finetune(settings, ctx.report, ctx.cancel)
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
