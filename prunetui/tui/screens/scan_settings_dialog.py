"""The sensitivity scan's settings: the grid of sparsities `s` scans at, and the tolerated drop that
decides what is safe (the Safe column, the red marks of the numbers, the red line of the curves)."""

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label

from prunetui.core.grid import parse_grid
from prunetui.tui.scan_curves import Tolerance, parse_tolerance
from prunetui.tui.screens.early_keys import EarlyKeys
from prunetui.tui.screens.fields.parsed_input import ParsedInput


@dataclass(frozen=True)
class ScanSettings:
    grid: tuple[float, ...]
    tolerance: Tolerance


def grid_text(grid: tuple[float, ...]) -> str:
    return ",".join(f"{s:g}" for s in grid)


class ScanSettingsDialog(EarlyKeys, ModalScreen[ScanSettings | None]):
    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, current: ScanSettings, note: str = "") -> None:
        """`note`: why the drop offered is not the one in use (shown under its field)."""
        super().__init__()
        self.current = current
        self.note = note

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Sensitivity scan settings", classes="dialog-title")
            yield Label("Sparsities to scan: 0.4,0.6,0.8 or start:stop:step (0.4:1.0:0.1)")
            yield ParsedInput(parse_grid, grid_text(self.current.grid), id="grid")
            yield Label("Tolerated accuracy drop, in points (1.0), or lab: 1.5× the base error")
            yield ParsedInput(parse_tolerance, self.current.tolerance.text(), id="drop")
            if self.note:
                yield Label(self.note, classes="dialog-note")
            yield Label("", classes="reason")
            yield Label("enter accepts · tab next field · escape cancels", classes="dialog-keys")

    def on_input_changed(self, event: Input.Changed) -> None:
        self.query_one(".reason", Label).update("")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        try:
            grid = self.query_one("#grid", ParsedInput).parsed()
            tolerance = self.query_one("#drop", ParsedInput).parsed()
        except ValueError as error:
            self.query_one(".reason", Label).update(str(error))
            return
        self.dismiss(ScanSettings(tuple(grid), tolerance))
