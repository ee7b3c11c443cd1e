"""Progress and cancel of a group listing, which takes seconds to minutes on attention models (swin_t
at 64x64 on one CPU thread: 3 s to trace, 18 s to walk 17 groups, 53 s of forward checks).

Each unit of work (a layer's group walked, a group rebuilt for its check, a forward check of pruned
copies) is one step: the cancel event is checked before it and a core.events.Progress is reported
after it. The number of forward checks is known only as the bisection goes (core.channel.verify), so
`total` grows by what each stage adds when it starts.
"""

from dataclasses import dataclass
from threading import Event

from prunetui.core.events import Progress, Report, check_cancel, ignore

STAGE = "channel groups"


@dataclass
class Steps:
    """Counts steps for `report` (`Progress(STAGE, done, total, detail)`); `step` raises
    core.events.Cancelled when `cancel` is set."""

    report: Report = ignore
    cancel: Event | None = None
    done: int = 0
    total: int = 0

    def expect(self, count: int) -> None:
        """`count` more steps are coming."""
        self.total += count

    def step(self, detail: str = "") -> None:
        """Check the cancel event, then count one step done and report it."""
        check_cancel(self.cancel)
        self.done += 1
        self.total = max(self.total, self.done)
        self.report(Progress(STAGE, self.done, self.total, detail))
