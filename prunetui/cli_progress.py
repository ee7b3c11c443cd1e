"""The headless commands' progress: a Rich bar on stderr saying what a job is on, how far and the time
left (core.eta), in the words of the TUI's progress row, redrawn at the TUI's rate."""

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, TaskProgressColumn, TextColumn
from rich.progress import Progress as Bar

from prunetui.core.eta import Eta, describe
from prunetui.core.events import Event, Progress, Report, ignore

PROGRESS_INTERVAL = 0.1  # seconds between redraws of the bar: the TUI's rate


class BarReport:
    """A report callback drawing a job's Progress on a Rich bar: "scan conv3.weight at 0.70", the bar,
    the percent and the time left (core.eta), redrawn at most every PROGRESS_INTERVAL."""

    def __init__(self, bar: Bar):
        self.bar, self.eta, self._last = bar, Eta(), float("-inf")
        self.task = bar.add_task("starting", total=None, left="")

    def __call__(self, event: Event) -> None:
        if not isinstance(event, Progress):
            return
        now = time.monotonic()
        if now - self._last < PROGRESS_INTERVAL and event.done != event.total:
            return
        self._last = now
        self.eta.update(event, now)
        self.bar.update(
            self.task,
            description=describe(event),
            completed=event.done,
            total=event.total or None,
            left=self.eta.text(now),
        )


@contextmanager
def progress_bar(console: Console) -> Iterator[tuple[Console, Report]]:
    """(the console the job's lines go to, the report that draws the bar) for the job run inside.

    The bar is on stderr and only when stderr is a terminal; it goes away when the job ends. When the
    lines go to the same terminal, they are printed through the bar's console, above it; otherwise
    (stdout piped, `--json` on stdout) they go where they always go and the bar cannot touch them."""
    if not sys.stderr.isatty():
        yield console, ignore
        return
    bar_console = console if console.stderr else Console(stderr=True, highlight=False)
    columns = (
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[left]}", markup=False),
    )
    bar = Bar(*columns, console=bar_console, transient=True, redirect_stdout=False, redirect_stderr=False)
    with bar:
        yield (bar_console if console.is_terminal else console), BarReport(bar)


def with_bar(bar: Report, report: Report) -> Report:
    """One report that draws the bar and passes every event on to `report`."""

    def both(event: Event) -> None:
        bar(event)
        report(event)

    return both
