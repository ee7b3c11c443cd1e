"""Name a run and write a note about it: two fields, enter saves, escape cancels."""

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label

from prunetui.core.recorder import NAME_MAX, NOTE_MAX
from prunetui.tui.screens.early_keys import EarlyKeys
from prunetui.tui.screens.fields.in_order_input import InOrderInput


class RunNoteDialog(EarlyKeys, ModalScreen[tuple[str, str] | None]):
    """Dismissed with (name, note), or None when cancelled."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, label: str, name: str, note: str) -> None:
        super().__init__()
        self.label = label
        self.initial = (name, note)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(f"Name and note of {self.label}", classes="dialog-title")
            yield Label("Name", classes="dialog-prompt")
            yield InOrderInput(self.initial[0], max_length=NAME_MAX, id="run-name")
            yield Label("Note", classes="dialog-prompt")
            yield InOrderInput(
                self.initial[1], max_length=NOTE_MAX, placeholder="what this run tried", id="run-note"
            )
            yield Label("", classes="reason")
            yield Label("enter saves · tab next field · escape cancels", classes="dialog-keys")

    def on_mount(self) -> None:
        self.query_one("#run-name", Input).focus()  # top to bottom: the name, then tab to the note

    def on_input_submitted(self, event: Input.Submitted) -> None:
        name = self.query_one("#run-name", Input).value.strip()
        if not name:
            self.query_one(".reason", Label).update("a run needs a name")
            return
        self.dismiss((name, self.query_one("#run-note", Input).value.strip()))
