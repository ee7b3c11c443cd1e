"""A question with a few answers, each a key: dismissed with the chosen key, or None on escape."""

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label


class ChoiceDialog(ModalScreen[str | None]):
    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, title: str, question: str, choices: list[tuple[str, str]]) -> None:
        """`choices`: (key, label) pairs; the first is focused."""
        super().__init__()
        self.title_text = title
        self.question = question
        self.choices = choices

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="dialog-title")
            yield Label(self.question, classes="dialog-prompt")
            with Horizontal(classes="buttons"):
                for key, label in self.choices:
                    yield Button(f"{label} ({key})", id=f"choice-{key}")
            yield Label("escape: neither", classes="dialog-keys")

    def on_mount(self) -> None:
        self.query_one(Button).focus()

    def on_key(self, event) -> None:
        keys = [key for key, _ in self.choices]
        if event.key in keys:
            event.stop()
            self.dismiss(event.key)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(str(event.button.id).removeprefix("choice-"))
