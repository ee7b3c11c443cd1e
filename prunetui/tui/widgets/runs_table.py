"""The runs of this model in this working directory, oldest first: one row per run, keyed by its id.

The # column marks the Pareto-best runs with `*` and the marked run (compared with `d`) with `>`.
When the table is narrow, the least useful columns are left out and long names are shortened.
"""

from dataclasses import dataclass

from rich.text import Text
from textual import events
from textual.widgets import DataTable

from prunetui.core.runs import RunRecord

LABELS = {
    "number": "#",
    "name": "Name",
    "status": "Status",
    "mib": "MiB",
    "percent": "%dense",
    "before": "Before",
    "after": "After",
    "change": "Δdense",
    "epochs": "Ep",
}
FIXED_WIDTHS = {"number": 4, "mib": 6, "percent": 6, "before": 6, "after": 6, "change": 6, "epochs": 5}
NAME_WIDTHS = (10, 20)  # a name is shortened down to the first when the table is narrow
LEFT_OUT_FIRST = ["mib", "epochs", "before"]  # then names are shortened, then Status goes
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


def _epochs(run: RunRecord) -> str:
    return f"{len(run.epochs)}/{run.epochs_planned}" if run.kind == "finetune" else ""


def _content_widths(records: list[RunRecord]) -> dict[str, int]:
    """Every column as wide as its label and its longest value (names within NAME_WIDTHS)."""
    name = max((len(r.name) for r in records), default=0)
    status = max((len(r.status) for r in records), default=0)
    widths = {
        "name": min(max(name, len(LABELS["name"])), NAME_WIDTHS[1]),
        "status": max(status, len(LABELS["status"])),
    }
    return {column: widths.get(column, FIXED_WIDTHS.get(column, 0)) for column in LABELS}


def fit(records: list[RunRecord], available: int, cell_padding: int) -> Layout:
    """The columns and widths that fit in `available` cells, as many and as wide as possible."""
    columns, widths = list(LABELS), _content_widths(records)

    def excess() -> int:
        return sum(widths[c] + 2 * cell_padding for c in columns) + 1 - available  # + the scrollbar

    for column in LEFT_OUT_FIRST:
        if excess() <= 0:
            return Layout(columns, widths)
        columns.remove(column)
    if excess() > 0:
        widths["name"] = max(min(widths["name"], NAME_WIDTHS[0]), widths["name"] - excess())
    if excess() > 0:
        columns.remove("status")
    return Layout(columns, widths)


class RunsTable(DataTable):
    def __init__(self, **kwargs) -> None:
        super().__init__(cursor_type="row", **kwargs)
        self.records: list[RunRecord] = []
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
                width = self._layout.widths["name"]
                return run.name if len(run.name) <= width else run.name[: width - 1] + "…"
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
            case _:
                return _number(_epochs(run))

    def _row(self, number: int, run: RunRecord) -> list[Text | str]:
        return [self._cell(column, number, run) for column in self._layout.columns]

    def _rebuild(self) -> None:
        """The columns changed: rebuild everything, keeping the cursor on the same row."""
        row = self.cursor_row
        self.clear(columns=True)
        for column in self._layout.columns:
            self.add_column(LABELS[column], key=column, width=self._layout.widths[column])
        for number, run in enumerate(self.records, 1):
            self.add_row(*self._row(number, run), key=run.id)
        if self.row_count:
            self.move_cursor(row=min(row, self.row_count - 1), animate=False)

    def _update_rows(self) -> None:
        """New or changed records: update rows in place (the cursor stays), add the new ones."""
        known = {run.id for run in self.records}
        for row_key in [key for key in self.rows if key.value not in known]:
            self.remove_row(row_key)
        for number, run in enumerate(self.records, 1):
            if run.id not in self.rows:
                self.add_row(*self._row(number, run), key=run.id)
                continue
            for column, cell in zip(self._layout.columns, self._row(number, run), strict=True):
                self.update_cell(run.id, column, cell)

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

    def on_mount(self) -> None:
        self._refit(self.size.width)

    def on_resize(self, event: events.Resize) -> None:
        self._refit(event.size.width)
