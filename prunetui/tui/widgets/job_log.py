"""The log pane: what jobs said, and a progress row while one runs."""

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Label, ProgressBar, RichLog

from prunetui.core.events import Progress


class JobLog(Vertical):
    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.texts: list[str] = []  # every line written, unwrapped

    def compose(self) -> ComposeResult:
        yield RichLog(wrap=True, max_lines=2000, id="log-lines")
        with Horizontal(id="progress-row"):
            yield Label(id="job-title")
            yield ProgressBar(show_eta=False, id="job-progress")

    def write(self, text: str, style: str = "") -> None:
        self.texts.append(text)
        self.query_one(RichLog).write(Text(text, style=style))

    def begin(self, title: str) -> None:
        self.query_one("#job-title", Label).update(f"{title} ")
        self.query_one(ProgressBar).update(total=None, progress=0)
        self.add_class("-running")

    def show_progress(self, progress: Progress) -> None:
        self.query_one("#job-title", Label).update(f"{progress.stage} ")
        self.query_one(ProgressBar).update(total=progress.total or None, progress=progress.done)

    def end(self) -> None:
        self.remove_class("-running")
