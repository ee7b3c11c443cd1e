"""The header: model, device, accuracies, current and projected size (with the measured speed-up of the model
in hand, and in channel mode the latency model's for the targets), on one line: when narrow it leaves
out its captions, cuts the model label to a fixed width, then leaves out fields by priority: the device and
the size's percent outlast the default method and the dense accuracy; another method outlasts the percent."""

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
    suggested_measured: float | None = None  # of a pending suggestion, measured (shown instead)
    accuracy_predicted: float | None = None  # what a suggestion predicted for the weights now (beside "now")
    projected_macs: int | None = None  # channel mode: MACs (batch 1) the targets give
    file_bytes: int | None = None  # the model file the weights in hand were written to, measured
    file_ratio: float | None = None  # the dense fp32 file's bytes / file_bytes
    recovery: str = ""  # the recovery options on (`+BN +AGP +KD`), shown beside the method
    opened_sparse: bool = False  # the model was opened already pruned (an export): its accuracy is not dense
    speedup: str | None = None  # measured: the model in hand against dense (`1.54x`, `~1.0x` within noise)
    projected_speedup: float | None = None  # channel mode: the latency model's for the targets


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
        if status.projected_speedup is not None:
            size += f" ~{status.projected_speedup:.2f}x"
        return caption, size, "bold"
    size = _size_text(status.suggested_mib, status.dense_mib)
    if status.suggested_measured is not None:  # measured: what pruning to it gives (the prediction is not)
        measured = accuracy_text(status.suggested_measured)
        return ("suggested → ", f"{size} · measured {measured}", "bold magenta") if captions else (
            "→ ", f"{size} measured {measured}", "bold magenta")  # fmt: skip
    predicted = accuracy_text(status.predicted_accuracy)
    if captions:
        return "suggested → ", f"{size} · predicted {predicted}", "bold magenta"
    return "→ ", f"{size} pred {predicted}", "bold magenta"


def _disk_text(status: Status) -> str:
    """The written file's bytes and how much smaller than the dense fp32 file: `25.5 KiB 41.0x`."""
    size = status.file_bytes or 0
    text = (
        f"{size:,} B"
        if size < 10 * 1024
        else f"{size / 1024:.1f} KiB"
        if size < 10 * 2**20
        else f"{size / 2**20:.1f} MiB"
    )
    return f"{text} {status.file_ratio:.1f}x" if status.file_ratio else text


def _now_text(status: Status) -> str:
    """The measured accuracy, and beside it what a suggestion predicted for these weights."""
    if status.accuracy_predicted is None:
        return accuracy_text(status.accuracy)
    return f"{accuracy_text(status.accuracy)} (pred {accuracy_text(status.accuracy_predicted)})"


# When the line is too narrow the captions go; the rest is then one line of three groups: the model
# (label, device, method), the accuracies (`dense X now Y`) and the sizes (`A MiB P% → B MiB P%`). The
# label is cut to LABEL_WIDTH cells, then what LEFT_OUT lists goes in its order (a number: the label cut to
# that many cells), so the device and the size's percent outlast the method and the dense accuracy. With
# MACs (channel mode) the method says what the sizes are: it outlasts everything but the cut label.
# A method other than the default is news too: it outlasts the dense accuracy and the size's percent. A
# written file's size (disk) outlasts the dense accuracy: it is what the user just asked for.
LABEL_WIDTH = 32
DEFAULT_METHOD = "magnitude"
LEFT_OUT = (16, "method", 12, "dense", "disk", "size_percent", "device", 2)
LEFT_OUT_OTHER_METHOD = (16, "dense", 12, "disk", "size_percent", "method", "device", 2)
LEFT_OUT_WITH_MACS = (16, "dense", 12, "disk", "macs", "size_percent", "device", "method", 2)


def status_text(status: Status, captions: bool, leave_out: frozenset[str] = frozenset()) -> Text:
    """Without captions: `dense X now Y` and `A → B` each in one piece, two spaces between the groups."""
    fields = [
        (
            "opened " if status.opened_sparse else "dense ",
            accuracy_text(status.dense_accuracy),
            "bold",
            "dense",
            "  ",
        ),
        ("now ", _now_text(status), "bold", "", "  " if "dense" in leave_out else " "),
        (
            "size " if captions else "",
            _size_text(status.size_mib, status.dense_mib, "size_percent" not in leave_out)
            + (f" {status.speedup}" if status.speedup is not None else ""),
            "bold",
            "",
            "  ",
        ),
        (*_targets_field(status, captions, "macs" not in leave_out), "", " "),
    ]
    if status.file_bytes is not None:
        fields.append(("disk ", _disk_text(status), "bold green", "disk", "  "))  # a bare `1.0x` says nothing
    text = Text(status.model_label, style="bold", no_wrap=True, overflow="ellipsis")
    pieces = ((status.device_label, "italic", "device"), (status.method, "cyan", "method"))
    for part, style, key in (*pieces, (status.recovery, "yellow", "")):
        if part and key not in leave_out:
            text.append(" ")
            text.append(part, style=style)
    for caption, value, style, key, gap in fields:
        if key and key in leave_out:
            continue
        text.append("  │  " if captions else gap, style="dim")
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


def _widest(status: Status) -> Status:
    """`status` with each value as wide as it gets (an accuracy 99.99%, a size the dense size, `n/a` filled
    in): what is left out, and where the label is cut, then depend on the model, the device, the method
    and which fields there are, never on the values, so nothing shifts as values arrive and change."""

    def accuracy(value: float | None) -> float:
        return max(value or 0.0, 99.99)

    def size(value: float | None) -> float:
        return max(value or 0.0, status.dense_mib)

    suggested = status.suggested_mib is not None
    return replace(
        status,
        dense_accuracy=accuracy(status.dense_accuracy),
        accuracy=accuracy(status.accuracy),
        size_mib=size(status.size_mib),
        projected_mib=size(status.projected_mib),
        suggested_mib=size(status.suggested_mib) if suggested else None,
        predicted_accuracy=accuracy(status.predicted_accuracy) if suggested else None,
        suggested_measured=None if status.suggested_measured is None else accuracy(status.suggested_measured),
        accuracy_predicted=None if status.accuracy_predicted is None else accuracy(status.accuracy_predicted),
        speedup=None if status.speedup is None else "99.99x",
        projected_speedup=None if status.projected_speedup is None else max(status.projected_speedup, 99.99),
    )


def fitted_status_text(status: Status, width: int) -> Text:
    """The fullest line that fits `width` cells, leaving out and cutting as listed above, decided on the
    widest values (`_widest`). Always one line."""
    widest = _widest(status)
    captions = status_text(widest, captions=True).cell_len <= width
    leave_out: set[str] = set()
    label = status.model_label if captions else shortened(status.model_label, LABEL_WIDTH)
    if status.projected_macs is not None:
        steps = LEFT_OUT_WITH_MACS
    else:
        steps = LEFT_OUT if status.method == DEFAULT_METHOD else LEFT_OUT_OTHER_METHOD
    for step in [] if captions else steps:
        text = status_text(replace(widest, model_label=label), captions=False, leave_out=frozenset(leave_out))
        if text.cell_len <= width:
            break
        if isinstance(step, int):
            label = shortened(label, step)
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
