"""What a job reports while it runs. Front ends turn these into log lines, progress bars and plots."""

from collections.abc import Callable
from dataclasses import dataclass


class Cancelled(Exception):
    """Raised inside a job when its cancel event is set; jobs catch it and return partial results."""


@dataclass(frozen=True)
class Progress:
    stage: str  # "evaluate", "scan", "train"
    done: int
    total: int  # 0 when unknown


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


Event = Progress | ScanPoint | EpochEnd
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
