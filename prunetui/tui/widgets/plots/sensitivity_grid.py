"""The scan as numbers: one row per layer, one column per sparsity; accuracies below the floor of the
tolerated drop in red, each layer's safe sparsity in green; the selected layer's row under the cursor."""

from rich.text import Text
from textual.widgets import DataTable

from prunetui.tui.scan_curves import ScanCurves, Tolerance
from prunetui.tui.text import short_label


def accuracy_cell(accuracy: float, floor: float, safe: bool) -> Text:
    if accuracy < floor - 1e-9:
        return Text(f"{accuracy:.2f}", style="bold red", justify="right")
    return Text(f"{accuracy:.2f}", style="bold green" if safe else "", justify="right")


class SensitivityGrid(DataTable):
    """Follows the scan as it arrives: cells are updated in place, the table rebuilt only when the grid
    of sparsities or the tolerance changes. Focusable (tab): a fine grid is wider than the terminal, and
    left/right scroll it."""

    def __init__(self, **kwargs) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kwargs)
        self._shape: tuple[tuple[float, ...], Tolerance, float | None] | None = None
        self._selected: str | None = None

    def show(self, curves: ScanCurves, selected: str | None, tolerance: Tolerance) -> None:
        sparsities = tuple(curves.sparsities())
        shape = (sparsities, tolerance, curves.base_accuracy)
        if shape != self._shape:
            self._shape = shape
            self.clear(columns=True)
            self._selected = None
            self.add_column("Layer", key="layer")
            for s in sparsities:
                self.add_column(f"{s:g}", key=f"{s:g}", width=6)
        if curves.base_accuracy is None:
            return
        floor = tolerance.floor(curves.base_accuracy)
        for layer_name, points in curves.points.items():
            safe = curves.safe_sparsity(layer_name, tolerance)
            cells = {f"{s:g}": accuracy_cell(a, floor, s == safe) for s, a in points}
            if layer_name not in self.rows:
                row = [cells.get(f"{s:g}", "") for s in sparsities]
                self.add_row(" " + short_label(layer_name), *row, key=layer_name)
                continue
            for column, cell in cells.items():
                if self.get_cell(layer_name, column) != cell:
                    self.update_cell(layer_name, column, cell)
        self._mark(selected)

    def _mark(self, selected: str | None) -> None:
        """The selected layer's name in cyan under the cursor, scrolled into view."""
        if self._selected is not None and self._selected in self.rows and self._selected != selected:
            self.update_cell(self._selected, "layer", " " + short_label(self._selected))
        self._selected = selected
        if selected in self.rows:
            self.update_cell(selected, "layer", Text("▸" + short_label(selected), style="bold cyan"))
            row = self.get_row_index(selected)
            self.call_after_refresh(self.move_cursor, row=row, animate=False, scroll=True)
