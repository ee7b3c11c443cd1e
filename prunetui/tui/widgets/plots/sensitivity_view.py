"""The Sensitivity tab: a one-line header with the scan's definition of safe (base, tolerated drop,
floor), then the curves or the numbers (T toggles)."""

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import ContentSwitcher, Static

from prunetui.tui.scan_curves import ScanCurves, Tolerance
from prunetui.tui.text import short_label
from prunetui.tui.widgets.plots.sensitivity_grid import SensitivityGrid
from prunetui.tui.widgets.plots.sensitivity_plot import SensitivityPlot


def header_text(
    curves: ScanCurves,
    selected: str | None,
    tolerance: Tolerance,
    numeric: bool,
    width: int,
    stale: bool = False,
    below: bool = True,
) -> Text:
    """The fullest header that fits `width`: the colours' meaning goes first, then the layer's name. A
    scan of a model state before the one in hand (`stale`) says so first, in yellow."""
    if stale:
        for prefix in (f"scan of {curves.of_label}, before the model changed: s scans it now · ",
                       "scan of the model before (s scans now) · "):  # fmt: skip
            rest = header_text(curves, selected, tolerance, numeric, max(0, width - len(prefix)), below=below)
            if len(prefix) + rest.cell_len <= width:
                break
        return Text.assemble((prefix, "yellow"), rest)
    if below and curves.drop_below_one_image(tolerance):
        one = curves.image_points()
        for prefix in (f"the drop {tolerance.drop(curves.base_accuracy):.2f} pt is under one image ({one:.2f} pt): "
                       "S sets e.g. 1 · ", "under one image: S sets 1 pt · "):  # fmt: skip
            rest = header_text(curves, selected, tolerance, numeric, max(0, width - len(prefix)), below=False)
            if len(prefix) + rest.cell_len <= width:
                break
        return Text.assemble((prefix, "yellow"), rest)
    if curves.base_accuracy is None:
        full = f"no scan yet: s scans every layer · S grid and {tolerance.describe(None)}"
        return Text(full if len(full) <= width else "no scan yet: s scans · S sets the grid and the drop")
    base = curves.base_accuracy
    floor = tolerance.floor(base)
    name = short_label(selected) if selected in curves.points else None
    marks = ("green", "red") if numeric else ("green line", "red line")
    variants = [
        [
            (f"{name} (cyan) · " if name and not numeric else "", "cyan"),
            (f"base {base:.2f}% ({marks[0]}) · ", "green"),
            (f"{tolerance.describe(base)} → floor {floor:.2f}% ({marks[1]})", "red"),
        ],
        [
            (f"{name} · " if name and not numeric else "", "cyan"),
            (f"base {base:.2f}% · ", "green"),
            (f"{tolerance.describe(base)} → floor {floor:.2f}%", "red"),
        ],
        [
            (f"{name} · " if name and not numeric else "", "cyan"),
            (f"base {base:.2f}% · ", "green"),
            (f"drop ≤ {tolerance.drop(base):.2f} → floor {floor:.2f}%", "red"),
        ],
        [
            (f"{name} · " if name and not numeric else "", "cyan"),
            (f"base {base:.2f} · ", "green"),
            (f"floor {floor:.2f}", "red"),
        ],
        [
            (f"base {base:.2f}% · ", "green"),
            (f"drop ≤ {tolerance.drop(base):.2f} → floor {floor:.2f}%", "red"),
        ],
    ]
    for parts in variants:
        text = Text.assemble(*parts)
        if text.cell_len <= width:
            return text
    return text


class SensitivityView(Vertical):
    def compose(self) -> ComposeResult:
        yield Static(id="sensitivity-header")
        with ContentSwitcher(initial="sensitivity-curves"):
            yield SensitivityPlot(id="sensitivity-curves")
            yield SensitivityGrid(id="sensitivity-numbers")

    def show(
        self,
        curves: ScanCurves,
        selected: str | None,
        tolerance: Tolerance,
        numeric: bool,
        stale: bool = False,
    ) -> None:
        """`stale`: the scan is of a model state before the one in hand."""
        self._header = (curves, selected, tolerance, numeric, stale)
        self.query_one(ContentSwitcher).current = "sensitivity-numbers" if numeric else "sensitivity-curves"
        self._show_header()
        self.query_one(SensitivityPlot).draw(curves, selected, tolerance)
        self.query_one(SensitivityGrid).show(curves, selected, tolerance)

    def _show_header(self) -> None:
        if hasattr(self, "_header"):
            header = self.query_one("#sensitivity-header", Static)
            width = header.content_size.width or self.content_size.width or 80  # its own padding counts
            curves, selected, tolerance, numeric, stale = self._header
            header.update(header_text(curves, selected, tolerance, numeric, width, stale))

    def on_resize(self) -> None:
        self._show_header()
