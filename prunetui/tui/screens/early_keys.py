"""Keys typed into a dialog before its first field has the focus go to that field.

Over SSH people type in bursts: `/` then `conv*` then enter arrive together. `/` pushes the dialog, but
its field takes the focus only once it is mounted; the keys between reach the dialog's screen with no
focused widget and would be dropped. A dialog with this mixin focuses its first field on such a key and
hands the key to it, so the burst lands as typed (escape keeps its binding: it cancels). Keys typed after
enter in a burst are answered once the dialog has answered the enter (InOrderInput.answered)."""

from textual import events
from textual.widgets import Input

from prunetui.tui.screens.fields.in_order_input import InOrderInput


class EarlyKeys:
    def on_key(self, event: events.Key) -> None:
        if self.focused is not None or event.key == "escape":
            return
        field = next(iter(self.query(Input)), None)
        if field is None:
            return
        event.stop()
        field.focus()
        field.post_message(events.Key(event.key, event.character))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """After the dialog's own handler (Textual calls each class's handler, the dialog's first)."""
        if isinstance(event.input, InOrderInput):
            event.input.answered(closed=not self.is_active)
