"""Python logging and warnings (torch's included) as lines in the log pane, not text behind Textual."""

import logging
from collections.abc import Callable

from textual.message import Message

from prunetui.tui.messages import JobLine


class LogPaneHandler(logging.Handler):
    """Posts each record as a JobLine; safe from any thread."""

    def __init__(self, post: Callable[[Message], object]) -> None:
        super().__init__(logging.WARNING)
        self.post = post

    def emit(self, record: logging.LogRecord) -> None:
        lines = self.format(record).splitlines() or [""]
        self.post(JobLine(f"{record.levelname.lower()}: {lines[0]}", "yellow"))


def route_logging(post: Callable[[Message], object]) -> Callable[[], None]:
    """Install the handler (warnings included); returns the function that puts things back."""
    handler = LogPaneHandler(post)
    root = logging.getLogger()
    root.addHandler(handler)
    logging.captureWarnings(True)

    def restore() -> None:
        logging.captureWarnings(False)
        root.removeHandler(handler)

    return restore
