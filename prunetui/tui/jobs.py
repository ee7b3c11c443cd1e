"""The jobs the TUI runs, one at a time, in a thread worker: each is the workflow step the CLI runs.

A job receives a JobContext: `report` is the core's progress callback, `cancel` its cancel event,
and `say` writes a log line. Everything reaches the UI as a posted message.
"""

import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from textual.message import Message

from prunetui.core.events import Event, Progress
from prunetui.core.recipe import Recipe
from prunetui.core.runs import RunRecord
from prunetui.core.sensitivity import DEFAULT_SPARSITIES
from prunetui.core.session import Session
from prunetui.errors import JobFailed, UserError
from prunetui.tui.messages import (
    FinetuneStarted,
    JobLine,
    JobProgress,
    JobReport,
    JobWarning,
    MethodChanged,
    ModelChanged,
    RunsLoaded,
    ScanLoaded,
    ScanStarted,
)
from prunetui.tui.stats import model_label, model_stats
from prunetui.workflow import channel_steps, quantizing, steps

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


def last_scan(session: Session, sparsities: Sequence[float] = DEFAULT_SPARSITIES) -> ScanLoaded | None:
    """The cached scan of the model as it is now, with the grid and options `s` uses, if one was stored,
    as the message that shows it (tied to this model state)."""
    result = session.stored_scan(sparsities)
    if result is None or result.base_accuracy is None or not result.layers:
        return None
    return ScanLoaded(result, session.state.version, model_label(session))


def load_runs(session: Session, ctx: JobContext) -> None:
    records = session.runs()
    store = session.recorder.store
    ctx.post(RunsLoaded(records, list(store.unreadable) if store is not None else []))


def open_session(session: Session, ctx: JobContext) -> None:
    """At start: the runs recorded here and the last scan of this model at once, then the dense accuracy."""
    load_runs(session, ctx)
    scan = last_scan(session)
    if scan is not None:
        ctx.post(scan)
    evaluate_dense(session, ctx)


def evaluate_dense(session: Session, ctx: JobContext) -> None:
    steps.evaluate_dense(session, ctx.say, ctx.report, ctx.cancel)


def scan(session: Session, ctx: JobContext, sparsities: Sequence[float] = DEFAULT_SPARSITIES) -> None:
    base = session.accuracy if session.accuracy is not None else session.evaluate(ctx.report, ctx.cancel)
    images = len(getattr(session.data.eval, "dataset", ())) or None
    ctx.post(ScanStarted(base, tuple(sparsities), session.state.version, model_label(session), images))
    steps.scan(session, ctx.say, ctx.report, ctx.cancel, sparsities)


def prune(session: Session, recipe: Recipe, ctx: JobContext, predicted: float | None = None) -> None:
    """`predicted`: the accuracy a suggestion predicted for the recipe's targets, to compare with the
    measured one."""
    steps.prune(session, ctx.say, ctx.report, ctx.cancel, recipe, predicted)
    warning = channel_steps.slower_warning(session.run_cost()) if session.state.channel_pruned else None
    if warning is not None:  # said in the log by the step; a notification too
        ctx.post(JobWarning(warning))


def finetune(
    session: Session, recipe: Recipe, prune_first: bool, ctx: JobContext, predicted: float | None = None
) -> None:
    """`prune_first`: prune to the recipe's targets first (the model was not pruned yet; not for an AGP
    schedule, which prunes while it trains); else finetune the model as it is."""
    if prune_first and not recipe.recovery.gradual:
        prune(session, recipe, ctx, predicted)
        ctx.post(ModelChanged(model_stats(session)))  # the table and the header show the pruned model
        load_runs(session, ctx)  # while it finetunes, not only once the job ends
    ctx.post(FinetuneStarted(session.accuracy))
    steps.finetune(session, recipe, ctx.say, ctx.report, ctx.cancel)


def resume(session: Session, run: RunRecord, number: int, ctx: JobContext) -> None:
    """Go on with an interrupted finetune run from its last completed epoch."""
    ctx.post(FinetuneStarted(run.accuracy_before))
    steps.resume(session, run.id, ctx.say, ctx.report, ctx.cancel, label=str(number))


def switch_method(session: Session, name: str, ctx: JobContext) -> None:
    """Prune by `name` from now on, once its units are listed (a structured method's groups: progress
    reported, cancel checked between groups; cancelled, the session keeps its method)."""
    session.set_method(name)
    channel_steps.list_units(session, ctx.say, ctx.report, ctx.cancel)
    ctx.post(MethodChanged(name))


def reset(session: Session, ctx: JobContext) -> None:
    session.reset()
    ctx.say("Reset to the dense model (targets kept)")


def export(
    session: Session,
    path: Path,
    profile_name: str,
    overwrite: bool,
    ctx: JobContext,
    recipe: Recipe | None = None,
) -> None:
    """`recipe`: prune by it first (from the dense weights), or None to export the weights as they are."""
    if recipe is not None:
        prune(session, recipe, ctx)
    quantizing.export_by_suffix(session, path, profile_name, overwrite, ctx.say)
    load_runs(session, ctx)  # the run's files and their bytes (the header, the Runs tab)


def quantize(session: Session, recipe: Recipe, ctx: JobContext) -> None:
    """Quantize the model as it is by the recipe's quantization part (k-means at the Bits column)."""
    ctx.post(FinetuneStarted(session.accuracy))
    quantizing.quantize(session, recipe, ctx.say, ctx.report, ctx.cancel)
