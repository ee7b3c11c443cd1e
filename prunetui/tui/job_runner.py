"""One job at a time in a thread worker; the workbench's `busy` is set here and cleared only by JobEnded.

Thread workers cannot be killed, and a cancelled Worker reports CANCELLED before its thread stops: so the
thread itself posts JobEnded from its own `finally`, and nothing else clears `busy`.
"""

import threading
from typing import TYPE_CHECKING

from prunetui.core.events import Cancelled
from prunetui.tui import jobs
from prunetui.tui.keys import BUSY
from prunetui.tui.messages import JobEnded, JobFailed, ModelChanged
from prunetui.tui.screens.confirm_dialog import ConfirmDialog
from prunetui.tui.stats import model_stats
from prunetui.tui.widgets.job_log import JobLog

if TYPE_CHECKING:
    from prunetui.tui.bench import Bench


class JobRunner:
    def __init__(self, bench: "Bench") -> None:
        self.bench = bench
        self.title = ""
        self.cancel_event: threading.Event | None = None
        self.quit_when_idle = False
        self.changes_model = False  # of the job running now: targets stay editable beside one that doesn't

    def start(self, title: str, job: jobs.Job, changes_model: bool = True) -> bool:
        """Start `job` unless one runs; a job that `changes_model` reports the new statistics and runs."""
        bench = self.bench
        if bench.busy:  # a dialog answered after a job started
            bench.notify(BUSY, severity="warning", timeout=2)  # a toast covers the progress row
            return False
        self.changes_model = changes_model
        self.title = title  # before busy: views that follow busy read it
        bench.busy = True
        self.cancel_event = threading.Event()
        bench.query_one(JobLog).begin(title)
        ctx = jobs.JobContext(bench.post_message, self.cancel_event)
        bench.run_worker(
            lambda: self._run(title, job, ctx, changes_model),
            name=title,
            group="job",
            thread=True,
            exit_on_error=False,
        )
        return True

    def _run(self, title: str, job: jobs.Job, ctx: jobs.JobContext, changes_model: bool) -> None:
        """In the thread: only messages reach the UI."""
        session = self.bench.session
        try:
            try:
                with session.transaction(restore_targets=changes_model):
                    job(ctx)
            except Cancelled:
                ctx.say(f"{title} cancelled: the model is as it was", "yellow")
            except Exception as error:  # shown, never fatal: the transaction put the model back
                ctx.post(JobFailed(f"{title} failed: {jobs.error_text(error)}"))
            if changes_model:
                ctx.post(ModelChanged(model_stats(session)))
                jobs.load_runs(session, ctx)  # a prune or finetune records a run
        finally:
            ctx.post(JobEnded())

    def ended(self) -> None:
        """On JobEnded: the only place `busy` is cleared."""
        bench = self.bench
        bench.busy = False
        self.cancel_event = None
        bench.query_one(JobLog).end()
        if self.quit_when_idle:
            bench.app.exit(0)
            return
        bench.type_ahead.release()  # keys typed for after this job

    def cancel(self) -> None:
        if not self.bench.busy or self.cancel_event is None or self.cancel_event.is_set():
            return
        self.cancel_event.set()
        self.bench.write_log(f"Cancelling {self.title}…", "yellow")

    def quit(self) -> None:
        """Quit at once when idle; else ask, then cancel the job and quit when it has ended."""
        if not self.bench.busy:
            self.bench.app.exit(0)
            return
        question = f"{self.title} is running. Cancel it and quit?"
        self.bench.app.push_screen(ConfirmDialog(question), self._quit_confirmed)

    def _quit_confirmed(self, yes: bool | None) -> None:
        if not yes:
            return
        if not self.bench.busy:
            self.bench.app.exit(0)
            return
        self.quit_when_idle = True
        self.cancel()
