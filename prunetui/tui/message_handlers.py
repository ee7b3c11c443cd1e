"""What each message a worker posts does: one handler per message, each a change of the workbench's state
(or a log line); the views follow the state (tui.state_views).

`MessageHandlers` is mixed into WorkbenchScreen (as KeyActions is): Textual finds `on_*` handlers on the
screen's classes by name; the workers post their messages to the screen. It keeps no state of its own.
It is imported by the first frame, before torch: what needs the session is imported where it is used.
"""

from __future__ import annotations

from textual.worker import Worker, WorkerState

from prunetui.core.events import EpochEnd, ScanPoint
from prunetui.tui.messages import (
    FinetuneStarted,
    JobEnded,
    JobFailed,
    JobLine,
    JobProgress,
    JobReport,
    JobWarning,
    LatencyReady,
    MethodChanged,
    ModelChanged,
    PreviewReady,
    RunsLoaded,
    ScanLoaded,
    ScanStarted,
    SuggestionReady,
)
from prunetui.tui.scan_curves import ScanCurves
from prunetui.tui.state_views import TRAINING_JOBS
from prunetui.tui.widgets.job_log import JobLog


class MessageHandlers:
    """Mixed into WorkbenchScreen; `self` is the screen."""

    def on_job_progress(self, message: JobProgress) -> None:
        self.query_one(JobLog).show_progress(message.progress)

    def on_job_line(self, message: JobLine) -> None:
        self.write_log(message.text, message.style)

    def on_job_failed(self, message: JobFailed) -> None:
        self.show_error(message.text)

    def on_scan_started(self, message: ScanStarted) -> None:
        self.curves = ScanCurves(
            base_accuracy=message.base_accuracy,
            grid=message.sparsities,
            of_version=message.version,
            of_label=message.label,
            images=message.images,
        )
        self.show_plot("sensitivity-tab")

    def on_scan_loaded(self, message: ScanLoaded) -> None:
        self.curves = ScanCurves.from_result(message.result, message.version, message.label)
        folder = self.session.scans.folder
        self.write_log(
            f"Last scan of this model ({len(self.curves.points)} layers) read from {self.shown(folder)}"
        )

    def on_finetune_started(self, message: FinetuneStarted) -> None:
        self.accuracy_before_finetune = message.accuracy_before

    def on_job_report(self, message: JobReport) -> None:
        event = message.event
        if isinstance(event, EpochEnd):  # its log line comes from the workflow, as the CLI's does
            self.epochs = [*self.epochs, event]
        elif isinstance(event, ScanPoint):
            self.curves.add(event.layer, event.sparsity, event.accuracy)
            self.mutate_reactive(type(self).curves)

    def on_method_changed(self, message: MethodChanged) -> None:
        self.model_flows.method_changed(message.name)

    def on_model_changed(self, message: ModelChanged) -> None:
        self.suggest.after_job()  # before the stats: the header reads its prediction
        if self.job_title in TRAINING_JOBS:
            self.epochs_version = message.stats.version  # the model the Finetune tab's epochs gave
        self.stats = message.stats
        self.sync_targets()  # a resume sets them; a failed job puts them back
        if self.curves.is_stale(message.stats.version):  # marked as of the model before, until
            self.scan_settings.load_stored_scan(keep_shown=True)  # a scan of the model now is found

    def on_runs_loaded(self, message: RunsLoaded) -> None:
        self.runs_tab.warn_unreadable(message.unreadable)
        self.runs = message.records

    def on_preview_ready(self, message: PreviewReady) -> None:
        if message.targets != self.session.targets:
            return  # the targets changed meanwhile: a newer preview is on its way
        if not self.is_attached or not self.query("#layers"):
            return  # the workbench is closing (the preview's thread ended after the panes went)
        self.preview.ready(message)  # channel mode: kept channels per group, projected MACs
        self.projected_mib = message.projected_mib
        self.draw_weights()

    def on_suggestion_ready(self, message: SuggestionReady) -> None:
        self.suggest.show(message.goal, message.suggestion)

    def on_latency_ready(self, message: LatencyReady) -> None:
        self.speed.ready(message.table)

    def on_job_warning(self, message: JobWarning) -> None:
        self.show_warning(message.text)

    def on_job_ended(self, message: JobEnded) -> None:
        self.jobs.ended()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # A job catches its own errors; this is the net under the net (computing the stats, the preview).
        if event.state == WorkerState.ERROR:
            what = {"job": self.job_title, "suggest": "Suggest"}.get(event.worker.group, "Size preview")
            from prunetui.tui import jobs

            self.show_error(f"{what} failed: {jobs.error_text(event.worker.error)}")
