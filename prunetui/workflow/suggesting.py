"""The suggestion, once for both front ends: scan the unlocked units, propose targets for a goal
(core.suggest), measure the proposal against uniform and global pruning at the same size and refine it
by measured moves (core.refine), prune to the result and measure it. Every method: sizes are projected
by the session's method, units are its units (layers, or channel groups)."""

import threading
from collections.abc import Sequence
from dataclasses import dataclass

from prunetui.core.events import Report, ignore
from prunetui.core.recipe import Recovery
from prunetui.core.refine import MEASURES, Refined, choose, uniform_targets
from prunetui.core.sensitivity import ScanOptions, ScanResult
from prunetui.core.session import Session
from prunetui.core.suggest import ScanTable, Suggestion
from prunetui.errors import UserError
from prunetui.workflow import steps
from prunetui.workflow.goals import Goal, propose


def scan_table(session: Session, result: ScanResult | None = None, **curves) -> ScanTable:
    """What core.suggest needs of a scan: the grid, the base accuracy, the curves, the session's prunable
    units and its method's exact kept counts. Pass a ScanResult, or `sparsities`, `base_accuracy` and
    `curves`."""
    if result is not None:
        curves = {
            "sparsities": result.sparsities,
            "base_accuracy": result.base_accuracy,
            "curves": result.layers,
        }
    return ScanTable(
        curves["sparsities"],
        curves["base_accuracy"],
        curves["curves"],
        session.unit_names(),
        session.kept_count,
    )


def propose_targets(session: Session, table: ScanTable, goal: Goal, locked: dict[str, float]) -> Suggestion:
    """The suggested targets for `goal` (sizes projected exactly by the session's method)."""
    return propose(goal, table, session.projected_size, locked)


@dataclass
class Measured:
    """What measuring and refining a suggestion found (None fields: not measured)."""

    suggestion: Suggestion  # the final targets, their measured accuracy and where they came from
    refined: Refined | None = None


@dataclass
class Suggested:
    scan: ScanResult | None  # None for a global suggestion (no scan)
    suggestion: Suggestion
    pruned: steps.Pruned  # the prune to the suggestion, measured (and recalibrated when asked)
    measured: Measured | None = None  # the baselines and the refinement

    @property
    def accuracy_before(self) -> float | None:
        return self.pruned.accuracy_before

    @property
    def accuracy_recalibrated(self) -> float | None:
        return self.pruned.accuracy_recalibrated


def global_targets(session: Session, budget_mib: float, locked: dict[str, float], cap: float | None = None):
    """Global pruning at `budget_mib` by the session's method. UserError for a method without it."""
    targets = session.method.global_targets(session.state, budget_mib, locked, cap, session.train)
    if targets is None:
        raise UserError(f"global pruning is fine-grained: not available for the {session.method.name} method")
    return targets


def global_suggestion(
    session: Session, goal: Goal, locked: dict[str, float], cap: float | None = None
) -> Suggestion:
    """`suggest --global`: one threshold over every unlocked layer at a size budget (no scan)."""
    if goal.kind != "budget":
        raise UserError("--global needs a size goal (--budget): it has no accuracy prediction to aim with")
    targets = global_targets(session, goal.value, locked, cap)
    return Suggestion(targets, None, session.projected_size(targets), source="global")


def measure_and_refine(
    session: Session,
    proposal: Suggestion,
    goal: Goal,
    say,
    locked: dict[str, float],
    recalibrate: bool = False,
    measures: int = MEASURES,
    report: Report = ignore,
    cancel: threading.Event | None = None,
) -> Measured:
    """Measure the scan's proposal, uniform and (for methods that have it) global pruning at the same
    size (the goal's budget, or the proposal's size for a drop goal) with the same evaluation
    (recalibrated when asked), keep the best, refine it by measured moves (core.refine). The model is
    left as it was."""
    budget = goal.value if goal.kind == "budget" else proposal.size_mib
    units = session.unit_names()
    proposals = {
        "scan": proposal.targets,
        "uniform": uniform_targets(units, session.projected_size, budget, locked),
    }
    global_ = session.method.global_targets(session.state, budget, locked, None, session.train)
    if global_ is not None:
        proposals["global"] = global_
    sizes = {unit.name: unit.size for unit in session.units()}

    def measure(targets: dict[str, float]) -> float:
        return session.trial(targets, recalibrate, cancel)

    with session.state.scratch():
        refined = choose(
            proposals, measure, session.projected_size, budget, sizes, list(locked), measures, report, cancel
        )
    _say_measured(session, refined, recalibrate, say)
    best = refined.best
    final = Suggestion(best.targets, proposal.predicted_accuracy, best.size_mib, best.accuracy, best.source)
    return Measured(final, refined)


def _say_measured(session: Session, refined: Refined, recalibrate: bool, say) -> None:
    how = "after BN recalibration" if recalibrate else "before finetuning"
    names = {"scan": "scan suggestion", "global": "global", "uniform": "uniform"}
    measured = ", ".join(
        f"{names[c.source]} {c.accuracy:.2f}% ({session.percent(c.size_mib):.2f}%)"
        for c in refined.baselines.values()
    )
    say(f"Measured {how} (% of dense): {measured}", "dim")
    start = refined.start
    say(
        f"Refined from {names[start.source]} by measured moves between layers: {refined.tried} tried, "
        f"{refined.kept} kept: {start.accuracy:.2f}% -> {refined.best.accuracy:.2f}%",
        "dim",
    )


def suggest(
    session: Session,
    goal: Goal,
    say,
    sparsities: Sequence[float],
    locked_names: Sequence[str] = (),
    report: Report = ignore,
    cancel: threading.Event | None = None,
    recalibrate: bool = False,
    use_global: bool = False,
    cap: float | None = None,
    measures: int = MEASURES,
    activation_budget: int | None = None,
) -> Suggested:
    """Scan the unlocked units (after BN recalibration with `recalibrate`; `activation_budget`: bytes,
    None for the device's default), propose targets for `goal`, measure them against uniform and global
    pruning at the same size and refine them by measured moves, prune to the result and measure it.
    `use_global`: global pruning at the budget instead (no scan, `cap` per layer)."""
    steps.require_data(session, "suggest")
    locked = {n: session.targets[n] for n in locked_names}
    result, measured = None, None
    if use_global:
        suggestion = global_suggestion(session, goal, locked, cap)
    else:
        unlocked = [n for n in session.unit_names() if n not in locked_names]
        options = ScanOptions(recalibrate=recalibrate, activation_budget=activation_budget)
        result = steps.scan(session, say, report, cancel, sparsities, unlocked, options)
        suggestion = propose_targets(session, scan_table(session, result), goal, locked)
        measured = measure_and_refine(
            session, suggestion, goal, say, locked, recalibrate, measures, report, cancel
        )
        suggestion = measured.suggestion
    session.targets = {name: suggestion.targets.get(name, 0.0) for name in session.layer_names}
    recipe = session.recipe(recovery=Recovery(recalibrate_bn=recalibrate))
    pruned = steps.prune(session, say, report, cancel, recipe, predicted=suggestion.predicted_accuracy)
    return Suggested(result, suggestion, pruned, measured)


def suggested_line(session: Session, outcome: Suggested) -> str:
    """The closing line of `prunetui suggest`: size, predicted and measured accuracy."""
    proposal = outcome.suggestion
    measured = "n/a" if outcome.accuracy_before is None else f"{outcome.accuracy_before:.2f}%"
    predicted = (
        "no prediction (global pruning)"
        if proposal.predicted_accuracy is None
        else f"predicted {proposal.predicted_accuracy:.2f}% (sum of per-layer scan drops)"
    )
    recalibrated = ""
    if outcome.accuracy_recalibrated is not None:
        recalibrated = f", {outcome.accuracy_recalibrated:.2f}% after BN recalibration"
    return (
        f"Suggested profile ({proposal.source}): {proposal.size_mib:.2f} MiB = "
        f"{session.percent(proposal.size_mib):.2f}% of dense; accuracy before finetuning {predicted}, "
        f"measured {measured}{recalibrated}"
    )


def measured_json(session: Session, measured: Measured | None) -> dict:
    """`suggest --json`'s `baselines` ({scan, global, uniform: {accuracy, percent_of_dense}}, measured
    the same way as the result) and `refine` ({tried, kept}); empty without a measurement."""
    if measured is None or measured.refined is None:
        return {"baselines": {}, "refine": None}
    refined = measured.refined
    return {
        "baselines": {
            source: {"accuracy": c.accuracy, "percent_of_dense": session.percent(c.size_mib)}
            for source, c in refined.baselines.items()
        },
        "refine": {"tried": refined.tried, "kept": refined.kept, "accuracy": refined.best.accuracy},
    }
