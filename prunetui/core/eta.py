"""Time left from progress events: the rate over a sliding window, and the words both front ends show.

A job's `Progress` counts its finest unit (core.events); `Eta` keeps the last WINDOW seconds of
(time, done) samples per count (`total`), so a finetune's training count carries on after its epoch's
evaluation reported a count of its own, and the time that evaluation took is in the rate.
"""

import time
from collections import deque
from collections.abc import Callable

from prunetui.core.events import Progress

WINDOW = 10.0  # seconds of history the rate is measured over
MIN_SPAN = 1.0  # seconds of history before the first estimate
COUNTS = 4  # distinct counts (totals) remembered at once


class Eta:
    """Feed it every Progress of one job (`update`); ask for `seconds_left` or `text`."""

    def __init__(self, window: float = WINDOW, clock: Callable[[], float] = time.monotonic):
        self.window, self.clock = window, clock
        self._samples: dict[int, deque[tuple[float, int]]] = {}
        self._current: Progress | None = None

    def reset(self) -> None:
        self._samples.clear()
        self._current = None

    def update(self, progress: Progress, now: float | None = None) -> None:
        now = self.clock() if now is None else now
        self._current = progress
        if progress.total <= 0:
            return
        samples = self._samples.pop(progress.total, None)
        if samples is None or progress.done < samples[-1][1]:  # a new count, or the same size started over
            samples = deque()
        self._samples[progress.total] = samples  # the most recent count last
        while len(self._samples) > COUNTS:
            del self._samples[next(iter(self._samples))]
        samples.append((now, progress.done))
        while len(samples) > 2 and samples[1][0] <= now - self.window:
            samples.popleft()  # keep one sample at or before the window's start

    def rate(self, now: float | None = None) -> float | None:
        """Units a second over the window up to `now` (a stall lowers it), None before MIN_SPAN."""
        if self._current is None or self._current.total <= 0:
            return None
        samples = self._samples.get(self._current.total)
        now = self.clock() if now is None else now
        if not samples or now - samples[0][0] < MIN_SPAN:
            return None
        advanced = samples[-1][1] - samples[0][1]
        return advanced / (now - samples[0][0]) if advanced > 0 else None

    def seconds_left(self, now: float | None = None) -> float | None:
        current = self._current
        if current is None or current.total <= 0:
            return None
        if current.done >= current.total:
            return 0.0
        rate = self.rate(now)
        return None if rate is None else (current.total - current.done) / rate

    def text(self, now: float | None = None) -> str:
        """ "1 min 20 s left", "estimating..." before a rate, "" when the count is unknown or done."""
        current = self._current
        if current is None or current.total <= 0 or current.done >= current.total:
            return ""
        left = self.seconds_left(now)
        return "estimating..." if left is None else f"{duration(left)} left"


def duration(seconds: float) -> str:
    """ "42 s", "3 min 05 s", "1 h 02 min"."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def describe(progress: Progress) -> str:
    """What a job is on, as both front ends name it: "scan conv3.weight at 0.70"."""
    return f"{progress.stage} {progress.detail}".strip()


def percent(progress: Progress) -> str:
    return f"{progress.done / progress.total:.0%}" if progress.total > 0 else ""


def line(progress: Progress, eta: Eta, now: float | None = None) -> str:
    """The whole progress line: "scan conv3.weight at 0.70 · 42% · 1 min 20 s left"."""
    return " · ".join(part for part in (describe(progress), percent(progress), eta.text(now)) if part)
