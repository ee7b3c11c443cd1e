"""Suggestions (a) and locks (l): a goal typed in a dialog, the search and its measurement in a job (the
scan's proposal measured beside uniform and global pruning at the same size and refined by measured moves,
after BN recalibration when B turned it on: workflow.suggesting), the result pending in the workbench's state until
y accepts or n discards it; the accepted prediction is compared when pruned."""

from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING

from prunetui.core.suggest import ScanTable, Suggestion
from prunetui.errors import UserError
from prunetui.tui.jobs import JobContext
from prunetui.tui.messages import JobFailed, SuggestionReady
from prunetui.tui.screens.ask_dialog import AskDialog
from prunetui.tui.speed_flow import SOURCE
from prunetui.tui.suggestion import scan_table
from prunetui.tui.text import accuracy_text
from prunetui.workflow import suggesting
from prunetui.workflow.goals import GOAL_FORMS, Goal, parse_goal, propose

if TYPE_CHECKING:
    from prunetui.tui.bench import Bench


class SuggestFlow:
    def __init__(self, bench: "Bench") -> None:
        self.bench = bench
        self.accepted: Suggestion | None = None  # its prediction is compared when pruned
        self.accepted_method: str | None = None  # the method it was predicted for
        # (prediction, id of the run before) of the prune job running now
        self.pending: tuple[float, str | None] | None = None
        self.measured: tuple[str, float] | None = None  # (run id, predicted accuracy) once pruned to it

    def toggle_lock(self) -> None:
        bench = self.bench
        layer_name = bench.selected_layer
        if layer_name is None:
            return
        bench.locked_layers = bench.locked_layers ^ {layer_name}
        if layer_name in bench.locked_layers:
            bench.write_log(f"Locked {layer_name} at {bench.targets[layer_name]:.2f}: suggestions keep it")
        else:
            bench.write_log(f"Unlocked {layer_name}")

    def _unscanned_layers(self) -> list[str]:
        bench = self.bench
        scanned = bench.curves.complete_rows(bench.curves.sparsities())
        return [n for n in bench.session.unit_names() if n not in scanned and n not in bench.locked_layers]

    def _scanned(self) -> bool:
        """Every unlocked layer is scanned: what a size or drop goal needs."""
        return self.bench.curves.base_accuracy is not None and not self._unscanned_layers()

    def _parse(self, text: str, dense_mib: float) -> Goal:
        """The dialog's goal: a speed-up needs no scan (the planner scans); other goals do."""
        goal = parse_goal(text, dense_mib)
        if goal.kind != "speedup" and not self._scanned():
            raise ValueError(
                "a size or drop goal needs a scan of every unlocked layer first (s); 2x needs none"
            )
        return goal

    def ask_goal(self) -> None:
        bench = self.bench
        locks = "No layer is locked (l locks the selected one: suggestions keep its target)"
        if bench.locked_layers:
            locks = f"{len(bench.locked_layers)} locked layer(s) keep their targets (l unlocks)"
        if not self._scanned():
            locks = "No scan yet: size and drop goals need one (s); a speed-up (2x) scans on its own"
        dense_mib = bench.session.dense_size
        dialog = AskDialog(
            "Suggest targets",
            f"Goal (dense is {dense_mib:.2f} MiB), one of:\n{GOAL_FORMS}\n{locks}",
            partial(self._parse, dense_mib=dense_mib),
            "25%",
        )
        bench.app.push_screen(dialog, self._goal_chosen)

    def _goal_chosen(self, goal: Goal | None) -> None:
        if goal is None:
            return
        if goal.kind == "speedup":
            self.bench.speed.plan(goal)
            return
        bench, session = self.bench, self.bench.session
        locked = {name: bench.targets[name] for name in bench.locked_layers}
        bench.write_log(f"Suggesting targets for {goal.text}…")
        table = scan_table(bench.curves, session)
        search = partial(self._search, goal, table, locked, bench.recovery.recalibrate_bn)
        bench.jobs.start("Suggest", search, changes_model=False)

    def _search(
        self, goal: Goal, table: ScanTable, locked: dict[str, float], recalibrate: bool, ctx: JobContext
    ) -> None:
        """A job: the search calls projected_size many times, the measurement prunes and evaluates (the
        model is put back as it was)."""
        session = self.bench.session
        try:
            suggestion = propose(goal, table, session.projected_size, locked)
        except UserError as error:
            ctx.post(JobFailed(f"Suggest: {error}"))
            return
        measured = suggesting.measure_and_refine(
            session, suggestion, goal, ctx.say, locked, recalibrate, report=ctx.report, cancel=ctx.cancel
        )
        ctx.post(SuggestionReady(goal, measured.suggestion))

    def show(self, goal: Goal, suggestion: Suggestion) -> None:
        """On SuggestionReady: the proposal becomes the pending suggestion."""
        bench = self.bench
        if suggestion.source == SOURCE:
            bench.speed.show(goal, suggestion)
            bench.write_log("y or enter accepts, n or escape discards", "magenta")
            bench.pending_suggestion = suggestion
            return
        changed = sum(1 for n, t in suggestion.targets.items() if abs(t - bench.targets.get(n, 0.0)) > 5e-5)
        measured = ""
        if suggestion.measured_accuracy is not None:
            recalibrated = " after BN recalibration" if bench.recovery.recalibrate_bn else ""
            measured = f", measured {suggestion.measured_accuracy:.2f}%{recalibrated} ({suggestion.source})"
        bench.write_log(
            f"Suggested for {goal.text}: {suggestion.size_mib:.2f} MiB = "
            f"{bench.session.percent(suggestion.size_mib):.2f}% of dense, predicted accuracy "
            f"{accuracy_text(suggestion.predicted_accuracy)} before finetuning (sum of scan drops){measured}; "
            f"{changed} target(s) change",
            "magenta",
        )
        bench.write_log("y or enter accepts, n or escape discards", "magenta")
        self._warn_missed(goal, suggestion)
        bench.pending_suggestion = suggestion

    def _warn_missed(self, goal: Goal, suggestion: Suggestion) -> None:
        """A drop goal the measurement missed says so, as a speed-up goal not reached does."""
        base, measured = self.bench.curves.base_accuracy, suggestion.measured_accuracy
        if goal.kind != "drop" or base is None or measured is None or base - measured <= goal.value:
            return
        self.bench.show_warning(
            f"Measured {measured:.2f}%: {base - measured:.2f} points under the scan's {base:.2f}%, more than "
            f"the {goal.value:g} asked (scan drops add up to less than pruning the layers together; "
            "finetuning recovers most of it, or ask for less)"
        )

    def accept(self) -> None:
        bench = self.bench
        suggestion = bench.pending_suggestion
        if suggestion is None:
            return
        bench.pending_suggestion = None
        if suggestion.source == SOURCE:
            self._accept_plan()
            suggestion = replace(suggestion, predicted_accuracy=None)  # measured, not a sum of drops
        bench.set_targets(suggestion.targets)
        self.accepted = replace(suggestion, targets=dict(bench.targets))  # as rounded
        self.accepted_method = bench.session.method.name
        bench.write_log("Suggested targets accepted (p prunes to them)")

    def _accept_plan(self) -> None:
        """A speed-up plan's targets are channel widths, and its accuracy was measured after BN
        recalibration: the method and B follow it, so `p` prunes as the plan was measured."""
        bench = self.bench
        if bench.session.method.name != "channel":
            bench.model_flows.use_method("channel")
        if not bench.recovery.recalibrate_bn:
            bench.recovery.toggle()

    def discard(self) -> None:
        self.bench.pending_suggestion = None
        self.bench.write_log("Suggested targets discarded")

    def predicted_accuracy(self) -> float | None:
        """What the accepted suggestion predicted, while the targets and the method are still those it
        was made for (a method switch or a target change drops it)."""
        accepted = self.accepted
        if accepted is None or accepted.targets != self.bench.targets:
            return None
        if self.accepted_method != self.bench.session.method.name:
            return None
        return accepted.predicted_accuracy

    def take_prediction(self) -> float | None:
        """The prediction for a prune to the targets now: said once, beside the measured accuracy; then
        dropped, so a later prune never repeats a stale one."""
        predicted = self.predicted_accuracy()
        before = self.bench.session.current_run
        self.accepted = None
        self.pending = None if predicted is None else (predicted, before.id if before else None)
        return predicted

    def after_job(self) -> None:
        """On ModelChanged: the run a prune to an accepted suggestion made keeps its prediction, for the
        header to show beside the measured accuracy."""
        run, pending = self.bench.session.current_run, self.pending
        if pending is not None and run is not None and run.kind == "prune" and run.id != pending[1]:
            self.measured = (run.id, pending[0])
        self.pending = None

    def shown_prediction(self) -> float | None:
        """The predicted accuracy before finetuning, while the model holds the run pruned to it."""
        run = self.bench.session.current_run
        if self.measured is None or run is None or run.id != self.measured[0]:
            return None
        return self.measured[1]
