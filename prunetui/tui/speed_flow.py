"""Speed-up goals and where the time goes: `2x` typed in the suggest dialog (a) plans channel widths on this
device's measured latency in a job (workflow.planning, as `prunetui suggest --speedup`), its profile then
pending as a suggestion (y accepts it, switching to the channel method and turning B on: its accuracy was
measured after BN recalibration); L measures the latency model alone (batch 1). The latency model of the
last plan or L feeds the preview (tui.preview) for the layer table's Time column and the header's
predicted speed-up; nothing is timed on the UI thread."""

from functools import partial
from typing import TYPE_CHECKING

from prunetui.core.methods import Channel
from prunetui.core.suggest import Suggestion
from prunetui.tui.jobs import JobContext
from prunetui.tui.messages import JobWarning, LatencyReady, SuggestionReady
from prunetui.workflow import planning, planning_lines
from prunetui.workflow.goals import Goal

if TYPE_CHECKING:
    from prunetui.core.latency_model import LatencyTable
    from prunetui.tui.bench import Bench

SOURCE = "speedup"  # a pending Suggestion's source when the planner made it


class SpeedFlow:
    def __init__(self, bench: "Bench") -> None:
        self.bench = bench
        self.table: LatencyTable | None = None  # the latency model the Time column reads
        self.batch = 1  # the batch its column and the header's speed-up are at
        self.effort: planning.Effort | None = None  # None: planning.DEFAULT_EFFORT (tests: a tiny one)
        self.timer = None  # None: the real timer (tests inject a core.timers.Timer)

    def plan(self, goal: Goal) -> None:
        self.bench.write_log(f"Planning channel widths for {goal.text} on this device's measured latency…")
        self.bench.jobs.start("Plan speed-up", partial(self._plan, goal), changes_model=False)

    def _plan(self, goal: Goal, ctx: JobContext) -> None:
        """In the job thread: plan, then post the table and the profile (nothing when none is faster)."""
        session = self.bench.session
        request = planning.SpeedupRequest(goal, goal.batches or (1,))
        planned = planning.plan_speedup(
            session, request, ctx.say, ctx.report, ctx.cancel, self.effort, self.timer
        )
        ctx.post(LatencyReady(planned.table))
        missed = planning_lines.reason(planned)
        if missed is not None:  # said in the log too, where it may scroll away before the answer
            ctx.post(JobWarning(missed))
        if planned.best is None:
            return
        targets = {name: planned.targets.get(name, 0.0) for name in session.layer_names}
        size = Channel().projection(session.state, planned.targets).size_mib
        suggestion = Suggestion(targets, planned.accuracy_heldout, size, planned.accuracy_search, SOURCE)
        ctx.post(SuggestionReady(goal, suggestion))

    def time_groups(self) -> None:
        """L: the latency model at batch 1 (cached on disk as the planner's), for the Time column."""
        self.bench.write_log("Timing each channel group's widths at batch 1 (the Time column)…")
        self.bench.jobs.start("Time groups", self._time, changes_model=False)

    def _time(self, ctx: JobContext) -> None:
        table = planning.measure_latency_model(
            self.bench.session, (1,), ctx.say, ctx.report, ctx.cancel, effort=self.effort, timer=self.timer
        )
        ctx.post(LatencyReady(table))

    def ready(self, table: "LatencyTable") -> None:
        """On LatencyReady: the column follows this table (at its first batch)."""
        self.table = table
        self.batch = table.setting.batches[0]
        self.bench.preview.request()

    def latency_cells(
        self, kept: dict[str, tuple[int, int]]
    ) -> tuple[dict[str, tuple[float, float]], float] | None:
        """In the preview's thread: (share of dense latency, saving at the targets) per timed group and
        the predicted speed-up of the targets, from the kept channels; None without a latency model."""
        table = self.table
        if table is None:
            return None
        widths = {name: k for name, (k, _total) in kept.items() if name in table.groups}
        cells = {
            name: (table.share(name, self.batch), table.saving(name, widths[name], self.batch))
            for name in widths
        }
        return cells, table.predicted_speedup(widths, self.batch)

    def show(self, goal: Goal, suggestion: Suggestion) -> None:
        """The log line of a planned suggestion (measured, not predicted: the planner measured it whole)."""
        held = "n/a" if suggestion.predicted_accuracy is None else f"{suggestion.predicted_accuracy:.2f}%"
        search = "n/a" if suggestion.measured_accuracy is None else f"{suggestion.measured_accuracy:.2f}%"
        self.bench.write_log(
            f"Planned for {goal.text}: {suggestion.size_mib:.2f} MiB, accuracy after BN recalibration "
            f"{held} on held-out images ({search} on the search images); y accepts (method channel, B on)",
            "magenta",
        )
