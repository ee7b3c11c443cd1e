"""The header: model, device, accuracies, current and projected size, on one line: when narrow it leaves
out its captions, then fields by priority, shortening the model label before the method and dense accuracy."""

from dataclasses import dataclass, replace

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
    accuracy_predicted: float | None = None  # what a suggestion predicted for the weights now (beside "now")
    projected_macs: int | None = None  # channel mode: MACs (batch 1) the targets give


def _size_text(size_mib: float | None, dense_mib: float, percent: bool = True) -> str:
    if size_mib is None:
        return NOT_AVAILABLE
    return f"{size_mib:.2f} MiB {size_mib / dense_mib * 100:.1f}%" if percent else f"{size_mib:.2f} MiB"


def _targets_field(status: Status, captions: bool, macs: bool = True) -> tuple[str, str, str]:
    """(caption, value, style): the projected size of the targets (and MACs in channel mode), or of a
    pending suggestion."""
    if status.suggested_mib is None:
        caption = "targets → " if captions else "→ "
        size = _size_text(status.projected_mib, status.dense_mib)
        if macs and status.projected_macs is not None:
            size += f" {status.projected_macs / 1e6:.1f}M MACs"
        return caption, size, "bold"
    size = _size_text(status.suggested_mib, status.dense_mib)
    predicted = accuracy_text(status.predicted_accuracy)
    if captions:
        return "suggested → ", f"{size} · predicted {predicted}", "bold magenta"
    return "→ ", f"{size} pred {predicted}", "bold magenta"


def _now_text(status: Status) -> str:
    """The measured accuracy, and beside it what a suggestion predicted for these weights."""
    if status.accuracy_predicted is None:
        return accuracy_text(status.accuracy)
    return f"{accuracy_text(status.accuracy)} (pred {accuracy_text(status.accuracy_predicted)})"


# When the line is too narrow: the captions go, and the device with them (so that it does not come and
# go at one width as the values change); then these fields, in this order; then the model label is
# shortened to MIN_LABEL cells; then LEFT_OUT_LAST; then the label is cut to its last character.
# The accuracy now and the sizes stay.
LEFT_OUT_FIRST = ("size_percent", "macs")
LEFT_OUT_LAST = ("method", "dense")
MIN_LABEL = 12


def status_text(status: Status, captions: bool, leave_out: frozenset[str] = frozenset()) -> Text:
    fields = [
        ("dense ", accuracy_text(status.dense_accuracy), "bold", "dense"),
        ("now ", _now_text(status), "bold", ""),
        (
            "size " if captions else "",
            _size_text(status.size_mib, status.dense_mib, "size_percent" not in leave_out),
            "bold",
            "",
        ),
        (*_targets_field(status, captions, "macs" not in leave_out), ""),
    ]
    text = Text(status.model_label, style="bold", no_wrap=True, overflow="ellipsis")
    for part, style in ((status.device_label, "italic"), (status.method, "cyan")):
        if (style == "italic" and "device" in leave_out) or (style == "cyan" and "method" in leave_out):
            continue
        text.append(" ")
        text.append(part, style=style)
    for caption, value, style, key in fields:
        if key and key in leave_out:
            continue
        text.append("  │  " if captions else "  ", style="dim")
        text.append(caption, style="dim")
        text.append(value, style=style)
    return text


def shortened(label: str, cells: int) -> str:
    """`label` in at most `cells` cells: its end after an ellipsis, where a spec keeps what tells models
    apart; from a `:` on when that keeps most of the room (`…resnet18:10`, not `…ion:resnet18:10`)."""
    if len(label) <= cells:
        return label
    tail = label[len(label) - max(1, cells - 1) :]
    whole = tail.partition(":")[2]
    return "…" + (whole if len(whole) * 2 >= len(tail) else tail)


def _as_measured(status: Status) -> Status:
    """`status` with a value in place of each `n/a` that measuring fills in (one as wide as most)."""
    return replace(
        status,
        dense_accuracy=99.99 if status.dense_accuracy is None else status.dense_accuracy,
        accuracy=99.99 if status.accuracy is None else status.accuracy,
        size_mib=status.dense_mib if status.size_mib is None else status.size_mib,
        projected_mib=status.dense_mib if status.projected_mib is None else status.projected_mib,
    )


def fitted_status_text(status: Status, width: int) -> Text:
    """The fullest line that fits `width` cells, leaving out and shortening as listed above; what goes is
    decided as if every value were measured, so that fields do not come and go as they arrive. Always one
    line."""
    measured = _as_measured(status)
    captions = status_text(measured, captions=True).cell_len <= width
    leave_out: set[str] = set() if captions else {"captions", "device"}
    label = status.model_label
    steps = [] if captions else [*LEFT_OUT_FIRST, MIN_LABEL, *LEFT_OUT_LAST, 2]
    for step in steps:
        text = status_text(
            replace(measured, model_label=label), captions=False, leave_out=frozenset(leave_out)
        )
        if text.cell_len <= width:
            break
        if isinstance(step, int):
            label = shortened(label, max(step, len(label) - (text.cell_len - width)))
        else:
            leave_out.add(step)
    text = status_text(replace(status, model_label=label), captions=captions, leave_out=frozenset(leave_out))
    text.truncate(width, overflow="ellipsis")
    return text


class StatusLine(Widget):
    status: reactive[Status | None] = reactive(None)
    waiting: reactive[str] = reactive("")
    """Shown until there is a status (the model is loading)."""

    def render(self) -> Text:
        if self.status is None:
            return Text(self.waiting, style="italic", no_wrap=True, overflow="ellipsis")
        return fitted_status_text(self.status, self.content_size.width)
