"""The runs of this model in this working directory: one row per run, keyed by its id, oldest first or
sorted by size or accuracy (`O`); `n` names the selected run and notes what it tried.

The # column (the run's number, oldest first, whatever the order) marks the Pareto-best runs with `*`
and the marked run (compared with `d`) with `>`. When the table is narrow, the least useful columns are
left out and long names are shortened; the line under the table tells everything about the selected run.
"""

from dataclasses import dataclass

from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.widgets import DataTable, Static

from prunetui.core.runs import RunRecord
from prunetui.core.speedup import measured_speedup, speedup_of
from prunetui.tui import keys
from prunetui.tui.runs_view import run_accuracy
from prunetui.tui.widgets.plots.runs_plot import RunsPlot

LABELS = {
    "number": "#",
    "name": "Name",
    "status": "Status",
    "mib": "MiB",
    "percent": "%dense",
    "before": "Before",
    "after": "After",
    "change": "Δdense",
    "macs": "MMACs",
    "speedup": "Speed",
    "disk": "Disk",
    "epochs": "Ep",
    "lr": "LR",
    "method": "Method",
    "time": "Time",
    "note": "Note",
}
FIXED_WIDTHS = {
    "number": 4, "mib": 6, "percent": 6, "before": 6, "after": 6, "change": 6, "epochs": 5, "lr": 6,
    "method": 9, "time": 6, "macs": 7, "speedup": 6, "disk": 6,
}  # fmt: skip
NAME_WIDTHS = (10, 20)  # a name is shortened down to the first when the table is narrow
NOTE_WIDTH = 30
# then names are shortened, then Status goes
LEFT_OUT_FIRST = ["note", "time", "lr", "method", "mib", "macs", "epochs", "before", "speedup", "disk"]
SORTS = {"time": "oldest first", "size": "smallest first", "accuracy": "most accurate first"}
STATUS_STYLES = {"finished": "", "unfinished": "yellow", "cancelled": "yellow", "failed": "red"}


@dataclass(frozen=True)
class Layout:
    columns: list[str]
    widths: dict[str, int]


def _number(text: str, style: str = "") -> Text:
    return Text(text, style=style, justify="right")


def _accuracy(value: float | None) -> Text:
    return _number("" if value is None else f"{value:.2f}")


def _change(run: RunRecord) -> Text:
    change = run.accuracy_change
    if change is None:
        return _number("")
    return _number(f"{change:+.2f}", "green" if change >= 0 else "red")


def _speedup(run: RunRecord) -> Text:
    """latency_ms_dense / latency_ms at the run's latency batch (batch 1 unless it was timed at another:
    a speed-up plan's largest batch), `~1.0x` within noise (core.speedup); green when faster by 10% or
    more, red when slower by 5% or more, outside the noise."""
    speedup = measured_speedup(run.cost)
    if speedup is None:
        return _number("")
    style = (
        ""
        if speedup.within_noise
        else "green"
        if speedup.ratio >= 1.1
        else "red"
        if speedup.ratio <= 0.95
        else ""
    )
    return _number(speedup.short(), style)


def _disk(run: RunRecord) -> Text:
    """How much smaller than the dense fp32 file the run's model file is on disk (measured)."""
    size = next(iter(run.bytes_on_disk.values()), None)  # the model file first (workflow.quantizing)
    if not size or not run.dense_file_bytes:
        return _number("")
    return _number(f"{run.dense_file_bytes / size:.1f}x", "green")


def _epochs(run: RunRecord) -> str:
    return f"{len(run.epochs)}/{run.epochs_planned}" if run.kind == "finetune" else ""


def duration_text(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f}s"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"


def _shortened(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def sorted_runs(records: list[RunRecord], sort_by: str) -> list[RunRecord]:
    """`time`: as recorded; `size`: smallest first; `accuracy`: most accurate first (none last)."""
    if sort_by == "size":
        return sorted(records, key=lambda r: r.percent_of_dense)
    if sort_by == "accuracy":
        return sorted(records, key=lambda r: -a if (a := run_accuracy(r)) is not None else float("inf"))
    return list(records)


def run_details(number: int, run: RunRecord, parent_number: int | None) -> str:
    """Everything about one run on one line: the table leaves columns out when narrow."""
    lr = f", lr {run.lr:g}" if run.lr is not None else ""
    what = f"pruned ({run.method})" if run.kind == "prune" else f"finetuned {_epochs(run)} ep{lr}"
    if run.kind == "prune":
        what += " further from run " + str(parent_number) if run.start == "current" else " from dense"
    elif parent_number is not None:
        what += f" from run {parent_number}"
    parts = [f"#{number} {run.name}", what, f"{run.sparse_size_mib:.2f} MiB"]
    if run.accuracy_recalibrated is not None:  # what the weights hold: the Δdense column counts it
        parts.append(f"{run.accuracy_recalibrated:.2f}% after BN recalibration")
    if run.cost.get("macs") is not None:
        parts.append(f"{run.cost['macs'] / 1e6:.1f}M of {run.cost['macs_dense'] / 1e6:.1f}M MACs")
    if run.cost.get("latency_ms"):
        latency, dense = run.cost["latency_ms"], run.cost["latency_ms_dense"]
        parts.append(f"{latency:.2f} ms vs {dense:.2f} ms dense ({speedup_of(run.cost).text()})")
    if run.quantization:
        q = run.quantization
        final = q.get("accuracy_centroids") or q.get("accuracy_quantized")
        parts.append(f"quantized {q['kind']}" + (f" {final:.2f}%" if final is not None else ""))
    for path, size in list(run.bytes_on_disk.items())[:1]:
        ratio = (
            f" = {run.dense_file_bytes / size:.1f}x smaller than dense fp32" if run.dense_file_bytes else ""
        )
        parts.append(f"{path}: {size:,} B{ratio}")
    parts += [duration_text(run.seconds)] if run.seconds else []
    if run.note:
        parts.append(f"note: {run.note}")
    return " · ".join(parts)


def _content_widths(records: list[RunRecord]) -> dict[str, int]:
    """Every column as wide as its label and its longest value (names within NAME_WIDTHS)."""
    name = max((len(r.name) for r in records), default=0)
    status = max((len(r.status) for r in records), default=0)
    note = max((len(r.note) for r in records), default=0)
    epochs = max((len(_epochs(r)) for r in records), default=0)  # `295/300` is never cut to `295/3`
    widths = {
        "name": min(max(name, len(LABELS["name"])), NAME_WIDTHS[1]),
        "status": max(status, len(LABELS["status"])),
        "note": min(max(note, len(LABELS["note"])), NOTE_WIDTH),
        "epochs": max(epochs, FIXED_WIDTHS["epochs"]),
    }
    return {column: widths.get(column, FIXED_WIDTHS.get(column, 0)) for column in LABELS}


def fit(records: list[RunRecord], available: int, cell_padding: int) -> Layout:
    """The columns and widths that fit in `available` cells, as many and as wide as possible."""
    columns, widths = list(LABELS), _content_widths(records)
    if not any(run.bytes_on_disk for run in records):  # the Disk column once a run wrote its weights
        columns.remove("disk")

    def excess() -> int:
        return sum(widths[c] + 2 * cell_padding for c in columns) + 1 - available  # + the scrollbar

    for column in LEFT_OUT_FIRST:
        if excess() <= 0:
            return Layout(columns, widths)
        if column in columns:
            columns.remove(column)
    if excess() > 0:
        widths["name"] = max(min(widths["name"], NAME_WIDTHS[0]), widths["name"] - excess())
    if excess() > 0:
        columns.remove("status")
    return Layout(columns, widths)


class RunDetails(Static):
    """The selected run, told in full under the table."""


class RunsTable(DataTable):
    OWN_BINDINGS = [
        Binding("n", "note_run", "Name/note", tooltip="Name the selected run and write a note…"),
        Binding("O", "sort_runs", "Sort", tooltip="Sort the runs: oldest first, by size, by accuracy"),
    ]
    """The keys only the runs table has (the others are the workbench's, shown or hidden here: keys.py)."""
    BINDINGS = [*keys.RUNS_TABLE_KEYS, *OWN_BINDINGS, *keys.RUNS_TABLE_HIDDEN]

    def __init__(self, **kwargs) -> None:
        super().__init__(cursor_type="row", **kwargs)
        self.records: list[RunRecord] = []
        self.sort_by = "time"
        self.best_numbers: list[int] = []
        self.marked_id: str | None = None
        self._layout = Layout([], {})

    @property
    def selected_run(self) -> RunRecord | None:
        if self.row_count == 0:
            return None
        run_id = self.ordered_rows[self.cursor_row].key.value
        return next((r for r in self.records if r.id == run_id), None)

    @property
    def marked_run(self) -> RunRecord | None:
        return next((r for r in self.records if r.id == self.marked_id), None)

    def number_of(self, run: RunRecord) -> int:
        return next(n for n, r in enumerate(self.records, 1) if r.id == run.id)

    def _cell(self, column: str, number: int, run: RunRecord) -> Text | str:
        match column:
            case "number":
                mark = ">" if run.id == self.marked_id else " "
                best = "*" if number in self.best_numbers else " "
                return _number(f"{mark}{number}{best}", "bold green" if best == "*" else "")
            case "name":
                return _shortened(run.name, self._layout.widths["name"])
            case "note":
                return _shortened(run.note, self._layout.widths["note"])
            case "lr":
                return _number("" if run.lr is None else f"{run.lr:g}")
            case "method":
                return run.method
            case "time":
                return _number(duration_text(run.seconds) if run.seconds else "")
            case "status":
                return Text(run.status, style=STATUS_STYLES.get(run.status, ""))
            case "mib":
                return _number(f"{run.sparse_size_mib:.2f}")
            case "percent":
                return _number(f"{run.percent_of_dense:.2f}")
            case "before":
                return _accuracy(run.accuracy_before)
            case "after":
                return _accuracy(run.accuracy_after)
            case "change":
                return _change(run)
            case "epochs":
                return _number(_epochs(run))
            case "macs":
                macs = run.cost.get("macs")
                return _number("" if macs is None else f"{macs / 1e6:.1f}")
            case "speedup":
                return _speedup(run)
            case "disk":
                return _disk(run)
            case _:
                return ""

    def _row(self, number: int, run: RunRecord) -> list[Text | str]:
        return [self._cell(column, number, run) for column in self._layout.columns]

    def _rebuild(self) -> None:
        """The columns or the order changed: rebuild everything, keeping the cursor on the same run."""
        selected, row = self.selected_run, self.cursor_row
        self.clear(columns=True)
        for column in self._layout.columns:
            self.add_column(LABELS[column], key=column, width=self._layout.widths[column])
        for run in sorted_runs(self.records, self.sort_by):
            self.add_row(*self._row(self.number_of(run), run), key=run.id)
        if self.row_count:
            ids = [key.value for key in self.rows]
            if selected is not None and selected.id in ids:
                row = ids.index(selected.id)
            self.move_cursor(row=min(row, self.row_count - 1), animate=False)
        self.show_details()

    def _update_rows(self) -> None:
        """New or changed records: update rows in place (the cursor stays), add the new ones."""
        if self.sort_by != "time":
            self._rebuild()  # a new or changed run may move
            return
        known = {run.id for run in self.records}
        for row_key in [key for key in self.rows if key.value not in known]:
            self.remove_row(row_key)
        for number, run in enumerate(self.records, 1):
            if run.id not in self.rows:
                self.add_row(*self._row(number, run), key=run.id)
                continue
            for column, cell in zip(self._layout.columns, self._row(number, run), strict=True):
                self.update_cell(run.id, column, cell)
        self.show_details()

    def _refit(self, available: int) -> None:
        """Rebuild when the layout for `available` cells changed (all columns before the first layout),
        else update the rows in place."""
        layout = fit(self.records, available or 1000, self.cell_padding)
        if layout != self._layout:
            self._layout = layout
            self._rebuild()
        else:
            self._update_rows()

    def show_runs(self, records: list[RunRecord], best_numbers: list[int]) -> None:
        self.records = records
        self.best_numbers = best_numbers
        self._refit(self.size.width)

    def toggle_mark(self) -> RunRecord | None:
        """Mark the selected run, or unmark it when it is the marked one; returns the marked run."""
        run = self.selected_run
        self.marked_id = None if run is None or run.id == self.marked_id else run.id
        self._update_rows()
        return self.marked_run

    def select_run(self, run_id: str) -> None:
        ids = [key.value for key in self.rows]
        if run_id in ids:
            self.move_cursor(row=ids.index(run_id), animate=False)
            self.show_details()

    def cycle_sort(self) -> str:
        """Oldest first -> smallest first -> most accurate first; returns the new order's words."""
        names = list(SORTS)
        self.sort_by = names[(names.index(self.sort_by) + 1) % len(names)]
        self._rebuild()
        return SORTS[self.sort_by]

    def show_details(self) -> None:
        run = self.selected_run
        text = "" if run is None else run_details(self.number_of(run), run, self._parent_number(run))
        for details in self.screen.query(RunDetails):
            details.update(text)

    def _parent_number(self, run: RunRecord) -> int | None:
        return next((n for n, r in enumerate(self.records, 1) if r.id == run.parent), None)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.show_details()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """A suggestion waiting for its answer takes `n` (discard): the workbench's binding then runs."""
        if action in ("note_run", "sort_runs") and self.screen.pending_suggestion is not None:
            return False
        if action == "note_run" and self.screen.busy:
            return None  # a finetune saves its own record meanwhile
        return True

    def action_note_run(self) -> None:
        self.screen.runs_tab.ask_note()

    def action_sort_runs(self) -> None:
        self.screen.runs_tab.cycle_sort()

    def on_mount(self) -> None:
        self._refit(self.size.width)

    def on_resize(self, event: events.Resize) -> None:
        self._refit(event.size.width)


def runs_pane() -> list:
    """The Runs tab: the table, the selected run told in full, accuracy vs size."""
    return [RunsTable(id="runs"), RunDetails(id="run-details"), RunsPlot()]
