"""Two profiles side by side, layer by layer: the reference's target, the other's, and the difference."""

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label


def _target(value: float) -> Text:
    return Text(f"{value:.2f}", style="dim" if value == 0 else "", justify="right")


def _difference(value: float) -> Text:
    if abs(value) < 5e-5:
        return Text("·", style="dim", justify="right")
    return Text(f"{value:+.2f}", style="bold yellow", justify="right")


class TargetsDiffScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,d", "dismiss(None)", "Close")]

    def __init__(self, title: str, labels: tuple[str, str], rows: list[tuple[str, float, float]]) -> None:
        super().__init__()
        self.title_text = title
        self.labels = labels
        self.rows = rows

    def compose(self) -> ComposeResult:
        changed = sum(1 for _, a, b in self.rows if abs(b - a) >= 5e-5)
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="dialog-title")
            yield DataTable(cursor_type="row", zebra_stripes=True)
            yield Label(f"{changed} of {len(self.rows)} layers differ · escape closes", classes="dialog-keys")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_column("Layer")
        for label in self.labels:
            table.add_column(Text(label, justify="right"))
        table.add_column(Text("Diff", justify="right"))
        for layer_name, reference, other in self.rows:
            table.add_row(layer_name, _target(reference), _target(other), _difference(other - reference))
        table.focus()
