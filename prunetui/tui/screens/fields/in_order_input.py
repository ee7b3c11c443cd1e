"""An Input whose editing keys act in the order they were typed.

Textual inserts a printable key when the Input handles it, but runs an editing key (backspace, delete,
arrows, home, end, enter ...) as a binding only after the key has bubbled up to the app. Keys that
arrive in one read (a fast typist over SSH, a laggy link, a terminal that batches input) are then
applied out of order: "abc", then backspace and "3" in one read, gives "abc" instead of "ab3". Here the
Input runs an editing key's action itself, when it handles the key, so each key acts in turn.
"""

from typing import ClassVar

from textual import events
from textual.binding import Binding
from textual.widgets import Input


class InOrderInput(Input):
    _ACTIONS: ClassVar[dict[str, str]] = {b.key: b.action for b in Binding.make_bindings(Input.BINDINGS)}

    async def _on_key(self, event: events.Key) -> None:
        action = self._ACTIONS.get(event.key)
        if action is None:
            await super()._on_key(event)
            return
        event.stop()
        event.prevent_default()
        await self.run_action(action)
