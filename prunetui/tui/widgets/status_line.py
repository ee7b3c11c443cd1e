"""The header: model, device, accuracies, current and projected size. Drops its captions when narrow."""

from dataclasses import dataclass

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from prunetui.tui.text import NOT_AVAILABLE, accuracy_text


@dataclass(frozen=True)
class Status:
    model_label: str
    device_label: str
    dense_accuracy: float | None
    accuracy: float | None
    size_mib: float | None  # None until the first statistics arrive
    dense_mib: float
    projected_mib: float | None  # None until the preview worker has it


def _size_text(size_mib: float | None, dense_mib: float) -> str:
    if size_mib is None:
        return NOT_AVAILABLE
    return f"{size_mib:.2f} MiB {size_mib / dense_mib * 100:.1f}%"


def status_text(status: Status, captions: bool) -> Text:
    fields = [
        ("dense ", accuracy_text(status.dense_accuracy)),
        ("now ", accuracy_text(status.accuracy)),
        ("size " if captions else "", _size_text(status.size_mib, status.dense_mib)),
        ("targets → " if captions else "→ ", _size_text(status.projected_mib, status.dense_mib)),
    ]
    text = Text.assemble((status.model_label, "bold"), " ", (status.device_label, "italic"))
    for caption, value in fields:
        text.append("  │  " if captions else "  ", style="dim")
        text.append(caption, style="dim")
        text.append(value, style="bold")
    return text


class StatusLine(Widget):
    status: reactive[Status | None] = reactive(None, layout=True)

    def render(self) -> Text:
        if self.status is None:
            return Text()
        full = status_text(self.status, captions=True)
        return full if full.cell_len <= self.content_size.width else status_text(self.status, captions=False)
