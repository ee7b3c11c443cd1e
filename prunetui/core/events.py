"""What a job reports while it runs. Front ends turn these into log lines, progress bars and plots."""

from collections.abc import Callable
from dataclasses import dataclass


class Cancelled(Exception):
    """Raised inside a job when its cancel event is set; jobs catch it and return partial results."""


@dataclass(frozen=True)
class Progress:
    """How far a job is: `done` of `total` in the finest unit the job counts (a scan: evaluation batches
    of all its points; a finetune: training batches of all its epochs), so a front end can take a rate
    and the time left from it (core.eta); `detail`: what it is on ("conv3.weight at 0.70", "batch 40/196")."""

    stage: str  # "evaluate", "scan", "train epoch N"
    done: int
    total: int  # 0 when unknown
    detail: str = ""


@dataclass(frozen=True)
class ScanPoint:
    layer: str
    sparsity: float
    accuracy: float


@dataclass(frozen=True)
class EpochEnd:
    epoch: int  # 1-based
    accuracy: float
    best_accuracy: float | None  # None while a gradual schedule still grows the masks
    seconds: float

    def line(self) -> str:
        """The blog's line format, exactly."""
        if self.best_accuracy is None:
            return (
                f"Epoch {self.epoch} Accuracy {self.accuracy:.2f}% / masks still growing to the targets (AGP)"
            )
        return f"Epoch {self.epoch} Accuracy {self.accuracy:.2f}% / Best Accuracy: {self.best_accuracy:.2f}%"


@dataclass(frozen=True)
class Notice:
    """A line the user should read while the job runs, not after it (a scan's memory plan going over
    its budget); front ends show it as a warning."""

    text: str


Event = Progress | ScanPoint | EpochEnd | Notice
Report = Callable[[Event], None]


def ignore(_event: Event) -> None:
    """The default report: jobs run silently."""


def check_cancel(cancel) -> None:
    """Raise Cancelled when the job's threading.Event is set (None means not cancellable)."""
    if cancel is not None and cancel.is_set():
        raise Cancelled


def batch_count(batches) -> int:
    """Number of batches an iterable yields, or 0 when it cannot say."""
    try:
        return len(batches)
    except TypeError:
        return 0


def sparsity_text(sparsity: float) -> str:
    """Two decimals (`0.60`), more when two would round it (`0.315`, `0.3875`): a scan's grid point or a
    target set from one reads as the value itself, never as a neighbour it was not."""
    text = f"{sparsity:.2f}"
    if abs(float(text) - sparsity) > 1e-9:
        text = f"{sparsity:.4f}".rstrip("0")
    return text


def batch_detail(done: int, total: int) -> str:
    """ "batch 40/196", or "batch 40" when the count is unknown."""
    return f"batch {done}/{total}" if total else f"batch {done}"


def expected_batches(batches, limit: int | None = None) -> int:
    """Batches an evaluation of the first `limit` images of `batches` runs (a DataLoader's own count cut
    to `limit` by its batch size), or 0 when it cannot say."""
    count = batch_count(batches)
    size = getattr(batches, "batch_size", None)
    if count and limit is not None and size:
        return min(count, -(-limit // size))
    return count
