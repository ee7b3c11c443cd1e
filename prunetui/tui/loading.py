"""The workbench's first frame: drawn before torch is imported, while a thread opens the model and data.

`prunetui` starts the app with an opener (a callable returning `workflow.opening.Opened`; it imports
torch) instead of a session. The workbench screen composes its layout at once with a note in place of
the layer table and empty plot tabs, runs the opener here, and fills the panes when `SessionOpened`
arrives. Nothing
this module imports may import torch (a test checks `import prunetui.tui.app` in a subprocess).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from rich.text import Text
from textual.message import Message
from textual.widgets import Static, TabPane

from prunetui.errors import UserError
from prunetui.tui.plot_tabs import PLOT_TABS
from prunetui.tui.widgets.status_line import StatusLine

if TYPE_CHECKING:
    from textual.message_pump import MessagePump

    from prunetui.workflow.opening import Opened

LOADING = "loading model..."


class SessionOpened(Message):
    """The opener returned: the app mounts the panes that need the session and starts its first job."""

    def __init__(self, opened: Opened) -> None:
        super().__init__()
        self.opened = opened


class OpenFailed(Message):
    """The opener raised (a bad checkpoint or data spec is a UserError): the app shows it and exits."""

    def __init__(self, error: BaseException) -> None:
        super().__init__()
        self.error = error


def open_in_thread(receiver: MessagePump, opener: Callable[[], Opened]) -> threading.Thread:
    """Run `opener` in a daemon thread that posts SessionOpened or OpenFailed to `receiver`.

    Not a Textual thread worker: `App.run` (asyncio.run) joins the executor's threads before it returns,
    so `q` while torch is still importing would wait for the model; a daemon thread ends with the process.
    The thread also imports the workbench's panes, so that the UI thread does not wait on those imports."""

    def run() -> None:
        try:
            opened = opener()
            from prunetui.tui import panes  # noqa: F401  (imported here, off the UI thread)

            for tab in PLOT_TABS:
                tab.module()
        except BaseException as error:  # noqa: BLE001  (the app shows it; run_app reports it as the CLI does)
            receiver.post_message(OpenFailed(error))
        else:
            receiver.post_message(SessionOpened(opened))

    thread = threading.Thread(target=run, name="prunetui-open", daemon=True)
    thread.start()
    return thread


class LoadingNote(Static):
    """In the layer table's place while the model opens; one `error:` line if opening fails."""

    def __init__(self, model_spec: str) -> None:
        super().__init__(Text(f"{model_spec}: {LOADING}", style="italic"), id="loading")

    def show_error(self, text: str) -> None:
        self.update(Text(f"error: {text}", style="bold red"))


class Opening:
    """Mixed into WorkbenchScreen (as KeyActions is): the opener's thread and its two answers; `self` is the
    screen."""

    def start_opening(self) -> None:
        self.query_one(StatusLine).waiting = f"{self.app.model_spec}  {LOADING}"  # until the status replaces it
        open_in_thread(self, self.opener)

    async def on_session_opened(self, message: SessionOpened) -> None:
        """Fill the panes drawn with the first frame, then go on as a workbench given its session does."""
        from prunetui.tui import panes

        opened = message.opened
        self.session, self.start_profile = opened.session, opened.profile
        self.notes, self.app.device_label = opened.notes, str(opened.session.device)
        panes.attach_flows(self)
        await self.query(".-waiting").remove()  # the plot tabs' placeholders
        await self.query_one(LoadingNote).remove()
        await self.query_one("#table-pane").mount(panes.layer_table(type(self)))
        for tab in PLOT_TABS:
            await self.query_one(f"#{tab.id}", TabPane).mount_all(tab.widgets())
        self.fit_table(self.size.width)
        self.start_workbench()
        self.refresh_bindings()

    def on_open_failed(self, message: OpenFailed) -> None:
        """One line in the app, then exit as the CLI does: run_app raises the error again once the terminal
        is restored, and the CLI prints its `error:` line (exit 2 for a UserError)."""
        error = message.error
        self.app.open_error = error
        self.query_one(LoadingNote).show_error(
            str(error) if isinstance(error, UserError) else "opening failed"
        )
        self.app.exit(return_code=2 if isinstance(error, UserError) else 1)
