"""The TUI's app: the settings (working directory, device, model spec) and the terminal; the work is the
WorkbenchScreen's (tui.workbench), its default screen.

The app routes keys before any binding or widget sees them (keys typed ahead of a running job are held,
keys of a burst reach the dialog they opened), reports what escaped a handler as the CLI reports its own,
and adds the workbench's keys to the command palette.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from textual import events
from textual.app import App, SystemCommand
from textual.screen import Screen
from textual.widgets import Input

from prunetui.errors import write_crash_log
from prunetui.tui import keys
from prunetui.tui.workbench import WIDE, WorkbenchScreen

if TYPE_CHECKING:  # the first frame is drawn before torch is imported
    from prunetui.core.profile import Profile
    from prunetui.core.session import Session
    from prunetui.workflow.opening import Opened

TALL = 30  # rows: below this the Runs tab shows its table only, not the plot


class PruneApp(App[int]):
    CSS_PATH = "app.tcss"
    TITLE = "prunetui"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (WIDE, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (TALL, "-tall")]
    BINDINGS = keys.FOCUS_BINDINGS

    def __init__(
        self,
        session: Session | None = None,
        profile: Profile | None = None,
        workdir: Path | None = None,
        device_label: str = "cpu",
        notes: list[str] | None = None,
        opener: Callable[[], Opened] | None = None,
        model_spec: str = "",
    ) -> None:
        """A `session` (the tests), or an `opener` run in a thread after the first frame (`prunetui`)."""
        super().__init__()
        self.workbench = WorkbenchScreen(session, opener, profile, notes)
        """The default screen: the work and its state."""
        self.model_spec = model_spec or (session.label if session is not None else "")
        self.workdir = Path(workdir) if workdir is not None else Path.cwd()
        self.device_label = device_label
        self.crash_error: Exception | None = None
        """The first exception that escaped a handler: run_app reports it as the CLI reports its own."""
        self.open_error: BaseException | None = None
        """What the opener raised: run_app raises it again once the terminal is restored."""

    def get_default_screen(self) -> Screen:
        return self.workbench

    def _handle_exception(self, error: Exception) -> None:
        """Textual's handling (the app exits, code 1) without its Rich traceback on the terminal: run_app
        writes the traceback to a crash log and prints one line once the terminal is restored."""
        if self.crash_error is None:
            self.crash_error = error
        super()._handle_exception(error)
        self._exit_renderables.clear()

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield from self.workbench.system_commands()

    # --- keys ------------------------------------------------------------------------------------
    async def on_event(self, event: events.Event) -> None:
        """Keys typed for after a running job are held (tui.type_ahead) before any binding or widget
        sees them."""
        if isinstance(event, events.Key) and (self._held_for_later(event) or self._typed_for_the_dialog(event)):
            return
        await super().on_event(event)

    def _held_for_later(self, event: events.Key) -> bool:
        workbench = self.workbench
        return workbench.session is not None and workbench.type_ahead.hold(event)

    def _typed_for_the_dialog(self, event: events.Key) -> bool:
        """A burst over SSH (`/`, `conv*`): the keys after `/` were forwarded to the layer table before `/`
        opened its dialog, and come back up here once it is open. A printable key never bubbles out of
        a focused Input (it takes them all), so one that does was typed for the dialog: it goes there
        (tui.screens.early_keys when its field has no focus yet)."""
        if not (event.is_forwarded and event.is_printable and len(self.screen_stack) > 1):
            return False
        target = self.focused
        if target is not None and not isinstance(target, Input):
            return False
        (target or self.screen).post_message(events.Key(event.key, event.character))
        return True


def run_app(opener: Callable[[], Opened], model_spec: str = "demo") -> int:
    """Run the TUI in the current working directory; the first frame is drawn before `opener` (which imports
    torch and opens the model and data) runs in a thread. Returns the exit code; what the opener raised is
    raised again here, once the terminal is restored, for the CLI to report as it reports its own."""
    app = PruneApp(opener=opener, model_spec=model_spec)
    app.run()
    if app.open_error is not None:
        raise app.open_error
    if app.crash_error is not None:
        print(write_crash_log(app.crash_error), file=sys.stderr)
        return 1
    return app.return_code or 0
