"""Finetune settings: epochs and learning rate (PRODUCT.md's defaults: 5 epochs, lr 0.01)."""

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label

from prunetui.core.finetune import FinetuneSettings
from prunetui.tui.text import parse_epochs, parse_learning_rate
from prunetui.tui.widgets.parsed_input import ParsedInput


class FinetuneDialog(ModalScreen[FinetuneSettings | None]):
    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, note: str = "") -> None:
        super().__init__()
        self.note = note

    def compose(self) -> ComposeResult:
        defaults = FinetuneSettings()
        with Vertical(classes="dialog"):
            yield Label("Finetune", classes="dialog-title")
            if self.note:
                yield Label(self.note, classes="dialog-note")
            yield Label("Epochs", classes="dialog-prompt")
            yield ParsedInput(parse_epochs, str(defaults.epochs), id="epochs")
            yield Label("Learning rate", classes="dialog-prompt")
            yield ParsedInput(parse_learning_rate, f"{defaults.lr:g}", id="lr")
            yield Label("", classes="reason")
            yield Label("enter starts · tab next field · escape cancels", classes="dialog-keys")

    def on_input_changed(self, event: Input.Changed) -> None:
        self.query_one(".reason", Label).update("")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        try:
            epochs = self.query_one("#epochs", ParsedInput).parsed()
            lr = self.query_one("#lr", ParsedInput).parsed()
        except ValueError as error:
            self.query_one(".reason", Label).update(str(error))
            return
        self.dismiss(FinetuneSettings(epochs=epochs, lr=lr))
