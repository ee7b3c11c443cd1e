"""The Runs tab: the runs listed and plotted as the app's `runs` state changes; a run's targets loaded
(enter), a run marked (m) and diffed (d), an interrupted finetune resumed (R), a run named and annotated
(n), the table sorted (O)."""

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from prunetui.core.runs import RunRecord
from prunetui.errors import UserError
from prunetui.tui import jobs
from prunetui.tui.runs_view import is_resumable, pareto_best, profile_name_of, run_targets, targets_diff
from prunetui.tui.screens.run_note_dialog import RunNoteDialog
from prunetui.tui.screens.targets_diff_screen import TargetsDiffScreen
from prunetui.tui.widgets.runs_plot import RunsPlot
from prunetui.tui.widgets.runs_table import RunsTable

if TYPE_CHECKING:
    from prunetui.tui.app import PruneApp


class RunsController:
    def __init__(self, app: "PruneApp") -> None:
        self.app = app
        self.unreadable: set[Path] = set()

    @property
    def table(self) -> RunsTable:
        return self.app.query_one(RunsTable)

    def show(self, runs: list[RunRecord]) -> None:
        """The table and the plot follow the app's `runs`."""
        best = pareto_best(runs)
        self.table.show_runs(runs, best)
        self.app.query_one(RunsPlot).draw(runs, best)

    def warn_unreadable(self, unreadable: list[Path]) -> None:
        """Once per file: run records that could not be read."""
        for path in set(unreadable) - self.unreadable:
            self.app.write_log(f"warning: skipped unreadable run record {self.app.shown(path)}", "yellow")
        self.unreadable = set(unreadable)

    def focus(self) -> None:
        """The Runs tab with its table focused, the cursor on the run the model holds now."""
        self.app.show_plot("runs-tab")
        self.table.focus()
        current = self.app.session.current_run
        if current is not None:
            self.table.select_run(current.id)

    def _selected(self) -> RunRecord | None:
        """The run under the runs table's cursor; says so when there is none yet."""
        self.app.show_plot("runs-tab")
        run = self.table.selected_run
        if run is None:
            self.app.notify("No runs yet: p prunes, f finetunes", severity="warning")
        return run

    def _label(self, run: RunRecord) -> str:
        return f"run {self.table.number_of(run)} ({run.name})"

    def load_selected(self) -> None:
        """The selected run's targets become the session's."""
        app = self.app
        run = self._selected()
        if run is None:
            return
        app.session.targets = run_targets(run, app.session.layer_names)
        app.session.profile_name = profile_name_of(run)
        app.sync_targets()
        app.write_log(f"Targets from {self._label(run)}")

    def mark_selected(self) -> None:
        if self._selected() is None:
            return
        marked = self.table.toggle_mark()
        if marked is None:
            self.app.write_log("No run marked: d compares the selected run with the current targets")
        else:
            self.app.write_log(f"Marked {self._label(marked)}: d compares it with the selected run")

    def diff_selected(self) -> None:
        """The marked run's targets (or the current ones) against the selected run's."""
        run = self._selected()
        if run is None:
            return
        table, layer_names = self.table, self.app.session.layer_names
        marked = table.marked_run
        reference = run_targets(marked, layer_names) if marked else dict(self.app.targets)
        rows = targets_diff(layer_names, reference, run_targets(run, layer_names))
        title = f"{self._label(marked) if marked else 'Current targets'} → {self._label(run)}"
        labels = (f"run {table.number_of(marked)}" if marked else "targets", f"run {table.number_of(run)}")
        self.app.push_screen(TargetsDiffScreen(title, labels, rows))

    def resume_selected(self) -> None:
        app = self.app
        run = self._selected()
        if run is None:
            return
        if not is_resumable(run):
            app.notify(
                f"{self._label(run)} has nothing to resume ({run.kind}, {run.status})", severity="warning"
            )
            return
        number = self.table.number_of(run)
        if app.jobs.start("Resume", partial(jobs.resume, app.session, run, number)):
            app.model_flows.show_new_finetune()

    def ask_note(self) -> None:
        run = self._selected()
        if run is not None:
            dialog = RunNoteDialog(self._label(run), run.name, run.note)
            self.app.push_screen(dialog, partial(self._note_chosen, run))

    def _note_chosen(self, run: RunRecord, answer: tuple[str, str] | None) -> None:
        if answer is None:
            return
        app = self.app
        name, note = answer
        try:
            record = app.session.annotate_run(run.id, name=name, note=note)
        except UserError as error:
            app.show_error(str(error))
            return
        app.runs = [record if r.id == record.id else r for r in app.runs]
        app.write_log(
            f"Run {self.table.number_of(record)}: {record.name}"
            + (f" · {record.note}" if record.note else "")
        )

    def cycle_sort(self) -> None:
        self.app.show_plot("runs-tab")
        self.app.notify(f"Runs: {self.table.cycle_sort()}")
