"""The recovery steps, once for both front ends: BatchNorm recalibration after a prune, gradual (AGP)
pruning while finetuning, distillation from the dense model, and the measured suggestion (the scan's
proposal against uniform and global pruning at the same size, refined by measured moves: core.refine).

Each takes the session, `say` for the human lines (workflow.lines), the core's `report` and a cancel
event, and returns plain data, as workflow.steps does.
"""

import threading
from dataclasses import dataclass

from prunetui.core.events import Report, ignore
from prunetui.core.finetune import FinetuneSettings
from prunetui.core.methods import is_structured
from prunetui.core.refine import MEASURES, Refined, choose
from prunetui.core.sensitivity import ScanOptions
from prunetui.core.session import Session
from prunetui.core.suggest import Suggestion
from prunetui.errors import UserError
from prunetui.workflow import lines
from prunetui.workflow.goals import Goal


@dataclass(frozen=True)
class Recovery:
    """The recovery options of a prune (and its finetune): all off by default, the lab's numbers exact."""

    recalibrate: bool = False  # recalibrate the BatchNorm statistics after pruning
    schedule: str = "oneshot"  # "agp": no one-shot prune; the finetune grows the masks to the targets
    agp_share: float = 0.75  # the part of the finetune's steps the schedule takes
    distill: bool = False  # learn from the dense model while finetuning
    temperature: float = 4.0
    alpha: float = 0.9

    def settings(self, targets: dict[str, float], **finetune) -> FinetuneSettings:
        """FinetuneSettings (`finetune`: epochs, lr, amp...) with these options; `targets` are where an
        AGP schedule ends."""
        gradual = {name: s for name, s in targets.items() if s > 0} if self.schedule == "agp" else None
        if self.schedule == "agp" and not gradual:
            raise UserError("--schedule agp needs targets above 0 (a --profile that prunes)")
        return FinetuneSettings(
            **finetune,
            distill=self.distill,
            temperature=self.temperature,
            alpha=self.alpha,
            schedule=self.schedule,
            agp_share=self.agp_share,
            gradual_targets=gradual,
        )


def recalibrate(
    session: Session,
    say,
    report: Report = ignore,
    cancel: threading.Event | None = None,
    predicted: float | None = None,
) -> float | None:
    """Recalibrate the model as it is now and say its accuracy (None without data); `predicted`: what a
    suggestion planned on recalibrated scan curves predicted, said beside it."""
    if session.data is None:
        say(lines.NO_DATA, "yellow")
        return None
    accuracy = session.recalibrate(report, cancel)
    say(lines.accuracy_recalibrated(accuracy))
    if predicted is not None:
        say(
            f"Predicted {predicted:.2f}% after BN recalibration (sum of scan drops); measured {accuracy:.2f}%"
        )
    return accuracy


def prepare_gradual(session: Session, say, options: "Recovery") -> None:
    """An AGP run starts from the dense weights (the zeros at load held) and prunes while it trains."""
    session.reset()
    say(
        f"Gradual pruning (AGP): no one-shot prune; the finetune grows the masks from the dense weights "
        f"to the targets over its first {options.agp_share:.0%}",
        "dim",
    )


def describe(settings: FinetuneSettings) -> str:
    """The recovery options of a finetune, for its header line ("" when none)."""
    parts = []
    if settings.schedule == "agp":
        layers = len(settings.gradual_targets or {})
        parts.append(
            f"AGP schedule: {layers} layers pruned gradually over {settings.agp_share:.0%} of the steps"
        )
    if settings.distill:
        parts.append(
            f"distilling from the dense model (T {settings.temperature:g}, alpha {settings.alpha:g})"
        )
    text = ", ".join(parts)
    return text[:1].upper() + text[1:]


# --- the measured suggestion ---------------------------------------------------------------------------
@dataclass
class Measured:
    """What measuring and refining a suggestion found (None fields: not measured)."""

    suggestion: Suggestion  # the final targets, their measured accuracy and where they came from
    refined: Refined | None = None


def global_suggestion(
    session: Session, goal: Goal, locked: dict[str, float], cap: float | None = None
) -> Suggestion:
    """`suggest --global`: one threshold over every unlocked layer at a size budget (no scan)."""
    if goal.kind != "budget":
        raise UserError("--global needs a size goal (--budget): it has no accuracy prediction to aim with")
    targets = session.global_targets(goal.value, locked, cap)
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
    """Measure the scan's proposal, uniform and global pruning at the same size (the goal's budget, or
    the proposal's size for a drop goal) with the same evaluation (recalibrated when asked), keep the
    best, refine it by measured moves (core.refine). The model is left as it was."""
    if is_structured(session.method):
        return Measured(proposal)  # whole channels: the moves and the baselines are fine-grained
    budget = goal.value if goal.kind == "budget" else proposal.size_mib
    proposals = {
        "scan": proposal.targets,
        "global": session.global_targets(budget, locked),
        "uniform": session.uniform_targets(budget, locked),
    }
    numel = {name: session.dense_state[name].numel() for name in session.layer_names}

    def measure(targets: dict[str, float]) -> float:
        return session.measure_targets(targets, recalibrate, cancel)

    with session.scratch():
        refined = choose(
            proposals, measure, session.projected_size, budget, numel, list(locked), measures, report, cancel
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


def scan_options(recalibrate: bool) -> ScanOptions | None:
    return ScanOptions(recalibrate=True) if recalibrate else None


def check_measures(measures: int) -> int:
    if measures < 0:
        raise UserError(f"--refine must be 0 or more measured moves, got {measures}")
    return measures


def prune(
    session: Session, say, options: Recovery, report: Report = ignore, cancel: threading.Event | None = None
) -> tuple[float | None, float | None]:
    """`prunetui prune`'s prune step with its recovery options: (accuracy before finetuning, after BN
    recalibration). An AGP schedule prunes nothing here (both None): its finetune does."""
    from prunetui.workflow import steps  # steps uses this module for the suggestion

    if options.schedule == "agp":
        prepare_gradual(session, say, options)
        return None, None
    before = steps.prune(session, say, report, cancel)
    recalibrated = recalibrate(session, say, report, cancel) if options.recalibrate else None
    return before, recalibrated


def suggested_line(session: Session, outcome) -> str:
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
