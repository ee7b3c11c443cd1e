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
    method: str
    dense_accuracy: float | None
    accuracy: float | None
    size_mib: float | None  # None until the first statistics arrive
    dense_mib: float
    projected_mib: float | None  # None until the preview worker has it
    suggested_mib: float | None = None  # of a pending suggestion
    predicted_accuracy: float | None = None  # of a pending suggestion, from the scan


def _size_text(size_mib: float | None, dense_mib: float) -> str:
    if size_mib is None:
        return NOT_AVAILABLE
    return f"{size_mib:.2f} MiB {size_mib / dense_mib * 100:.1f}%"


def _targets_field(status: Status, captions: bool) -> tuple[str, str, str]:
    """(caption, value, style): the projected size of the targets, or of a pending suggestion."""
    if status.suggested_mib is None:
        caption = "targets → " if captions else "→ "
        return caption, _size_text(status.projected_mib, status.dense_mib), "bold"
    size = _size_text(status.suggested_mib, status.dense_mib)
    predicted = accuracy_text(status.predicted_accuracy)
    if captions:
        return "suggested → ", f"{size} · predicted {predicted}", "bold magenta"
    return "→ ", f"{size} ≈{predicted}", "bold magenta"


def status_text(status: Status, captions: bool) -> Text:
    fields = [
        ("dense ", accuracy_text(status.dense_accuracy), "bold"),
        ("now ", accuracy_text(status.accuracy), "bold"),
        ("size " if captions else "", _size_text(status.size_mib, status.dense_mib), "bold"),
        _targets_field(status, captions),
    ]
    text = Text.assemble(
        (status.model_label, "bold"), " ", (status.device_label, "italic"), " ", (status.method, "cyan")
    )
    for caption, value, style in fields:
        text.append("  │  " if captions else "  ", style="dim")
        text.append(caption, style="dim")
        text.append(value, style=style)
    return text


class StatusLine(Widget):
    status: reactive[Status | None] = reactive(None, layout=True)

    def render(self) -> Text:
        if self.status is None:
            return Text()
        full = status_text(self.status, captions=True)
        return full if full.cell_len <= self.content_size.width else status_text(self.status, captions=False)
