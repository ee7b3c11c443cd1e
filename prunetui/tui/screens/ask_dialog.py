"""Ask for one value; the dialog stays open, showing the reason, until the text parses."""

from collections.abc import Callable
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label

from prunetui.tui.screens.early_keys import EarlyKeys
from prunetui.tui.screens.fields.parsed_input import ParsedInput


class AskDialog(EarlyKeys, ModalScreen[Any]):
    """Dismissed with the parsed value, or None when cancelled."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(
        self, title: str, prompt: str, parse: Callable[[str], Any], value: str = "",
        preview: Callable[[Any], str] | None = None,
    ) -> None:  # fmt: skip
        """`preview`: what the parsed value would do, shown under the field as it is typed."""
        super().__init__()
        self.title_text = title
        self.prompt = prompt
        self.parse = parse
        self.initial = value
        self.preview = preview

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="dialog-title")
            yield Label(self.prompt, classes="dialog-prompt")
            yield ParsedInput(self.parse, self.initial)
            if self.preview is not None:
                yield Label("", classes="preview")
            yield Label("", classes="reason")
            yield Label("enter accepts · escape cancels", classes="dialog-keys")

    def on_input_changed(self, event: Input.Changed) -> None:
        self.query_one(".reason", Label).update("")
        if self.preview is not None:
            try:
                text = self.preview(self.query_one(ParsedInput).parsed())
            except ValueError:
                text = ""
            self.query_one(".preview", Label).update(text)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        try:
            value = self.query_one(ParsedInput).parsed()
        except ValueError as error:
            self.query_one(".reason", Label).update(str(error))
            return
        self.dismiss(value)
