"""The log pane: what jobs said, and a progress row while one runs: what the job is on, how far, and
the time left (core.eta, the same words the CLI prints on stderr)."""

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Label, ProgressBar, RichLog

from prunetui.core.eta import Eta, describe
from prunetui.core.events import Progress


class JobLog(Vertical):
    DEFAULT_CSS = """
    JobLog #job-eta {
        width: auto;
        color: $text-muted;
    }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.texts: list[str] = []  # every line written, unwrapped
        self.eta = Eta()

    def compose(self) -> ComposeResult:
        yield RichLog(wrap=True, max_lines=2000, id="log-lines")
        with Horizontal(id="progress-row"):
            yield Label(id="job-title")
            yield ProgressBar(show_eta=False, id="job-progress")
            yield Label(id="job-eta")

    def write(self, text: str, style: str = "") -> None:
        self.texts.append(text)
        self.query_one(RichLog).write(Text(text, style=style))

    def begin(self, title: str) -> None:
        self.eta.reset()
        self.query_one("#job-title", Label).update(f"{title} ")
        self.query_one(ProgressBar).update(total=None, progress=0)
        self.query_one("#job-eta", Label).update("")
        self.add_class("-running")

    def show_progress(self, progress: Progress) -> None:
        """The stage and detail ("scan conv3.weight at 0.70"), the bar and percent, the time left."""
        self.eta.update(progress)
        self.query_one("#job-title", Label).update(f"{describe(progress)} ")
        self.query_one(ProgressBar).update(total=progress.total or None, progress=progress.done)
        left = self.eta.text()
        self.query_one("#job-eta", Label).update(f" {left}" if left else "")

    def end(self) -> None:
        self.remove_class("-running")
