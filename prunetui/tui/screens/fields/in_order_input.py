"""An Input whose editing keys act in the order they were typed.

Textual inserts a printable key when the Input handles it, but runs an editing key (backspace, delete,
arrows, home, end, enter ...) as a binding only after the key has bubbled up to the app. Keys that
arrive in one read (a fast typist over SSH, a laggy link, a terminal that batches input) are then
applied out of order: "abc", then backspace and "3" in one read, gives "abc" instead of "ab3". Here the
Input runs an editing key's action itself, when it handles the key, so each key acts in turn.

Keys typed after enter in the same read (`0.25`, enter, `j`) wait until the dialog has answered the enter
(tui.screens.early_keys calls `answered`): they then go to the workbench when the dialog closed, or into
the field when it stayed open (the text did not parse). Without this `j` landed in the field before the
dialog read it: `0.25j` was refused and the enter was lost.
"""

from typing import ClassVar

from textual import events
from textual.app import App
from textual.binding import Binding
from textual.widgets import Input


class InOrderInput(Input):
    _ACTIONS: ClassVar[dict[str, str]] = {b.key: b.action for b in Binding.make_bindings(Input.BINDINGS)}

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.typed_after_enter: list[tuple[str, str | None]] | None = None
        """(key, character) typed after enter, until the dialog answers it; None when not waiting."""

    async def _on_key(self, event: events.Key) -> None:
        if self.typed_after_enter is not None:
            event.stop()
            event.prevent_default()
            self.typed_after_enter.append((event.key, event.character))
            return
        action = self._ACTIONS.get(event.key)
        if action is None:
            await super()._on_key(event)
            return
        event.stop()
        event.prevent_default()
        if action == "submit":
            self.typed_after_enter = []
        await self.run_action(action)

    def answered(self, closed: bool) -> None:
        """The dialog has answered the enter: what was typed after it goes to the app as typed (`closed`:
        the workbench's keys) or into this field again."""
        keys, self.typed_after_enter = self.typed_after_enter or [], None
        if not closed:
            for key, character in keys:
                self.post_message(events.Key(key, character))
            return
        type_again(self.app, keys)


def type_again(app: App, keys: list[tuple[str, str | None]]) -> None:
    """`keys` as if typed now. Made on the app's task, as typed keys are: a key made on a screen's task
    stops bubbling at that screen (its sender), before the app's bindings see it."""

    def post() -> None:
        for key, character in keys:
            app.post_message(events.Key(key, character))

    if keys:
        app.call_later(post)
