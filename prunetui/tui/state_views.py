"""Views that follow the workbench's state: the `watch_*` reactions to WorkbenchScreen's reactives and the
header's `compute_status`, so a pane is redrawn because the state changed, never because a flow asked for it.

`StateViews` is mixed into WorkbenchScreen (as KeyActions is): Textual finds `watch_*` and `compute_*` there;
it keeps no state of its own. It is imported by the first frame, before torch, and imports nothing that does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prunetui.tui.text import measured_speedup_text
from prunetui.tui.widgets.status_line import Status


def run_file(run) -> dict:
    """The header's `file_bytes` and `file_ratio`: the model file the current run was written to."""
    if run is None or not run.bytes_on_disk or not run.dense_file_bytes:
        return {}
    size = next(iter(run.bytes_on_disk.values()))  # the model file comes first (workflow.quantizing)
    return {"file_bytes": size, "file_ratio": run.dense_file_bytes / size}


if TYPE_CHECKING:
    from prunetui.tui.stats import ModelStats

TRAINING_JOBS = ("Finetune", "Resume", "Quantize")  # job titles whose epochs the Finetune tab plots


class StateViews:
    """Mixed into WorkbenchScreen; `self` is the screen."""

    def compute_status(self) -> Status | None:
        session, suggestion = self.session, self.pending_suggestion
        if session is None:
            return None  # the header says the model is loading
        return Status(
            model_label=session.label,
            device_label=self.app.device_label,
            method=self.method,
            dense_accuracy=session.dense_accuracy,
            accuracy=session.accuracy,
            size_mib=self.stats.size_mib if self.stats else None,
            dense_mib=session.dense_size,
            projected_mib=self.projected_mib,
            suggested_mib=suggestion.size_mib if suggestion else None,
            predicted_accuracy=suggestion.predicted_accuracy if suggestion else None,
            suggested_measured=suggestion.measured_accuracy if suggestion else None,
            accuracy_predicted=self.suggest.shown_prediction(),
            recovery=self.recovery_marks,
            opened_sparse=bool(session.state.start_masks or session.state.opened_stages),
            projected_macs=self.preview.cost.macs if self.preview.cost else None,
            **run_file(session.current_run),
            speedup=measured_speedup_text(session.run_cost()) if session.state.channel_pruned else None,
            projected_speedup=self.preview.speedup,
        )

    def watch_targets(self) -> None:
        self.preview.request()

    def watch_stats(self, stats: ModelStats) -> None:
        self.query_one("ParamsPlot").draw(stats.layers)
        self.draw_weights()
        self.watch_curves()  # the scan shown may now be of a model before
        self.watch_epochs()  # and the finetune shown

    def watch_nonzero_only(self) -> None:
        self.draw_weights()

    def watch_curves(self) -> None:
        stale = self.stats is not None and self.curves.is_stale(self.stats.version)
        self.query_one("SensitivityView").show(
            self.curves, self.selected_layer, self.tolerance, self.sensitivity_numbers, stale
        )

    def watch_tolerance(self) -> None:
        self.watch_curves()

    def watch_sensitivity_numbers(self) -> None:
        self.watch_curves()

    def watch_selection(self) -> None:
        self.selection_flow.show_count()

    def watch_epochs(self) -> None:
        training = self.busy and self.job_title in TRAINING_JOBS
        version = self.stats.version if self.stats else None
        stale = not training and self.epochs_version is not None and version != self.epochs_version
        self.query_one("FinetunePlot").draw(self.epochs, self.accuracy_before_finetune, training, stale)

    def watch_busy(self) -> None:
        self.watch_epochs()

    def watch_accuracy_before_finetune(self) -> None:
        self.watch_epochs()

    def watch_runs(self) -> None:
        self.runs_tab.show(self.runs)

    def draw_weights(self) -> None:
        layer_name = self.selected_layer
        if self.stats is None or layer_name is None:
            return
        target = self.targets[layer_name]
        self.query_one("WeightsPlot").draw(
            layer_name,
            self.stats.histograms[layer_name],
            target,
            self.preview.threshold(layer_name, target),
            self.nonzero_only,
        )
