"""Messages a job thread posts to the app. The thread never touches a widget; the app reacts to these."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.message import Message

if TYPE_CHECKING:  # imported by the first frame, before torch: the types only
    from pathlib import Path

    from prunetui.core.events import EpochEnd, Progress, ScanPoint
    from prunetui.core.runs import RunRecord
    from prunetui.core.sensitivity import ScanResult
    from prunetui.core.suggest import Suggestion
    from prunetui.tui.stats import ModelStats
    from prunetui.workflow.goals import Goal


class JobProgress(Message):
    """Replaceable: a newer progress message supersedes one still waiting in the queue."""

    def __init__(self, progress: Progress) -> None:
        super().__init__()
        self.progress = progress

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, JobProgress)


class JobReport(Message):
    """A result a job reports as it goes: a scan point or the end of an epoch."""

    def __init__(self, event: ScanPoint | EpochEnd) -> None:
        super().__init__()
        self.event = event


class JobLine(Message):
    """A line for the log."""

    def __init__(self, text: str, style: str = "") -> None:
        super().__init__()
        self.text = text
        self.style = style


class ScanStarted(Message):
    def __init__(
        self,
        base_accuracy: float,
        sparsities: tuple[float, ...],
        version: int,
        label: str,
        images: int | None,
    ) -> None:
        """`version`, `label`: the model state the scan is of (tui.stats.model_label); `images`: the
        evaluation images it is measured on (None: not known)."""
        super().__init__()
        self.base_accuracy, self.sparsities = base_accuracy, sparsities
        self.version, self.label, self.images = version, label, images


class FinetuneStarted(Message):
    def __init__(self, accuracy_before: float | None) -> None:
        super().__init__()
        self.accuracy_before = accuracy_before


class MethodChanged(Message):
    """The session prunes by another method now (its units were listed in a job)."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name


class ModelChanged(Message):
    def __init__(self, stats: ModelStats) -> None:
        super().__init__()
        self.stats = stats


class RunsLoaded(Message):
    """The run records of this model in the working directory, oldest first."""

    def __init__(self, records: list[RunRecord], unreadable: list[Path]) -> None:
        super().__init__()
        self.records = records
        self.unreadable = unreadable


class ScanLoaded(Message):
    """A scan of the model as it is now, read from the scan cache (not computed)."""

    def __init__(self, result: ScanResult, version: int, label: str) -> None:
        super().__init__()
        self.result, self.version, self.label = result, version, label


class SuggestionReady(Message):
    def __init__(self, goal: Goal, suggestion: Suggestion) -> None:
        super().__init__()
        self.goal = goal
        self.suggestion = suggestion


class PreviewReady(Message):
    """The projected size of `targets` is known (and the threshold of the selected layer's target)."""

    def __init__(
        self,
        targets: dict[str, float],
        projected_mib: float | None,
        cost: object = None,
        channels: dict[str, tuple[int, int]] | None = None,
        error: str | None = None,
        latency: dict[str, tuple[float, float]] | None = None,
        speedup: float | None = None,
    ) -> None:
        super().__init__()
        self.targets = targets
        self.projected_mib = projected_mib
        self.cost = cost  # channel mode: core.cost.Cost of the targets (MACs, params, size)
        self.channels = channels  # channel mode: (kept, total) output channels per group
        self.error = error  # the targets cannot be projected (e.g. a layer that cannot be pruned)
        # channel mode with a latency model: (share of dense latency, saving at the target) per group,
        # and the speed-up the model predicts for the targets
        self.latency = latency
        self.speedup = speedup


class LatencyReady(Message):
    """A latency model of this device (core.latency_model.LatencyTable) for the Time column."""

    def __init__(self, table: object) -> None:
        super().__init__()
        self.table = table


class JobWarning(Message):
    """A warning a job found (a channel prune that measures slower than dense): logged and notified."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class JobFailed(Message):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class JobEnded(Message):
    """Posted from the job thread's own `finally`: only this clears the app's busy flag."""
