"""The Runs tab: the runs listed and plotted as the workbench's `runs` state changes; a run's targets loaded
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
from prunetui.tui.widgets.plots.runs_plot import RunsPlot
from prunetui.tui.widgets.plots.runs_table import RunsTable

if TYPE_CHECKING:
    from prunetui.tui.bench import Bench


class RunsController:
    def __init__(self, bench: "Bench") -> None:
        self.bench = bench
        self.unreadable: set[Path] = set()

    @property
    def table(self) -> RunsTable:
        return self.bench.query_one(RunsTable)

    def show(self, runs: list[RunRecord]) -> None:
        """The table and the plot follow the workbench's `runs`."""
        best = pareto_best(runs)
        self.table.show_runs(runs, best)
        self.bench.query_one(RunsPlot).draw(runs, best)

    def warn_unreadable(self, unreadable: list[Path]) -> None:
        """Once per file: run records that could not be read."""
        for path in set(unreadable) - self.unreadable:
            self.bench.write_log(f"warning: skipped unreadable run record {self.bench.shown(path)}", "yellow")
        self.unreadable = set(unreadable)

    def focus(self) -> None:
        """The Runs tab with its table focused, the cursor on the run the model holds now."""
        self.bench.show_plot("runs-tab")
        self.table.focus()
        current = self.bench.session.current_run
        if current is not None:
            self.table.select_run(current.id)

    def _selected(self) -> RunRecord | None:
        """The run under the runs table's cursor; says so when there is none yet."""
        self.bench.show_plot("runs-tab")
        run = self.table.selected_run
        if run is None:
            self.bench.notify("No runs yet: p prunes, f finetunes", severity="warning")
        return run

    def _label(self, run: RunRecord) -> str:
        return f"run {self.table.number_of(run)} ({run.name})"

    def load_selected(self) -> None:
        """The selected run's targets become the session's."""
        bench = self.bench
        run = self._selected()
        if run is None:
            return
        bench.session.targets = run_targets(run, bench.session.layer_names)
        bench.session.profile_name = profile_name_of(run)
        bench.sync_targets()
        bench.write_log(f"Targets from {self._label(run)}")

    def mark_selected(self) -> None:
        if self._selected() is None:
            return
        marked = self.table.toggle_mark()
        if marked is None:
            self.bench.write_log("No run marked: d compares the selected run with the current targets")
        else:
            self.bench.write_log(f"Marked {self._label(marked)}: d compares it with the selected run")

    def diff_selected(self) -> None:
        """The marked run's targets (or the current ones) against the selected run's."""
        run = self._selected()
        if run is None:
            return
        table, layer_names = self.table, self.bench.session.layer_names
        marked = table.marked_run
        if marked is not None and marked.id == run.id:
            self.bench.notify(f"{self._label(run)} is the marked run: move to another run, then d", severity="warning")
            return
        reference = run_targets(marked, layer_names) if marked else dict(self.bench.targets)
        rows = targets_diff(layer_names, reference, run_targets(run, layer_names))
        title = f"{self._label(marked) if marked else 'Current targets'} → {self._label(run)}"
        labels = (f"run {table.number_of(marked)}" if marked else "targets", f"run {table.number_of(run)}")
        self.bench.app.push_screen(TargetsDiffScreen(title, labels, rows))

    def resume_selected(self) -> None:
        bench = self.bench
        run = self._selected()
        if run is None:
            return
        if not is_resumable(run):
            bench.notify(
                f"{self._label(run)} has nothing to resume ({run.kind}, {run.status})", severity="warning"
            )
            return
        number = self.table.number_of(run)
        if bench.jobs.start("Resume", partial(jobs.resume, bench.session, run, number)):
            bench.model_flows.show_new_finetune()

    def ask_note(self) -> None:
        run = self._selected()
        if run is not None:
            dialog = RunNoteDialog(self._label(run), run.name, run.note)
            self.bench.app.push_screen(dialog, partial(self._note_chosen, run))

    def _note_chosen(self, run: RunRecord, answer: tuple[str, str] | None) -> None:
        if answer is None:
            return
        bench = self.bench
        name, note = answer
        try:
            record = bench.session.annotate_run(run.id, name=name, note=note)
        except UserError as error:
            bench.show_error(str(error))
            return
        bench.runs = [record if r.id == record.id else r for r in bench.runs]
        bench.write_log(
            f"Run {self.table.number_of(record)}: {record.name}"
            + (f" · {record.note}" if record.note else "")
        )

    def cycle_sort(self) -> None:
        self.bench.show_plot("runs-tab")
        self.bench.notify(f"Runs: {self.table.cycle_sort()}")
