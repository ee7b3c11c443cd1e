"""Open a profile: pick one of the workdir's profiles/*.toml or of those shipped for this model, or type
a path."""

from collections.abc import Callable

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList
from textual.widgets.option_list import Option

from prunetui.core.profile import Profile
from prunetui.errors import UserError
from prunetui.tui.screens.early_keys import EarlyKeys
from prunetui.tui.screens.fields.in_order_input import InOrderInput


class OpenProfileDialog(EarlyKeys, ModalScreen[Profile | None]):
    """`open_profile(text)` applies the profile or raises UserError, whose message the dialog shows."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, files: list[tuple[str, str]], open_profile: Callable[[str], Profile]) -> None:
        """`files`: (label, path) pairs: the label is listed, the path opened."""
        super().__init__()
        self.files = files
        self.open_profile = open_profile

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Open profile", classes="dialog-title")
            if self.files:
                yield OptionList(*(Option(label, id=path) for label, path in self.files))
            else:
                yield Label("No profiles/*.toml here yet.", classes="dialog-note")
            yield Label("or a path (a bare name means profiles/NAME.toml):", classes="dialog-prompt")
            yield InOrderInput(placeholder="a path, or a name in profiles/")
            yield Label("", classes="reason")
            yield Label("enter opens · tab switches list/path · escape cancels", classes="dialog-keys")

    def _open(self, text: str) -> None:
        try:
            profile = self.open_profile(text)
        except UserError as error:
            self.query_one(".reason", Label).update(str(error))
            return
        self.dismiss(profile)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self._open(str(event.option.id))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self._open(event.value)
