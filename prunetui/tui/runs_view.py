"""What the Runs tab shows of the run records: numbers, accuracies, the Pareto-best runs, profile diffs."""

import re

from prunetui.core.runs import RunRecord

RESUMABLE = ("unfinished", "cancelled", "failed")


def run_accuracy(run: RunRecord) -> float | None:
    """After finetuning when there is one, else before."""
    return run.accuracy_after if run.accuracy_after is not None else run.accuracy_before


def _dominates(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """(percent of dense, accuracy): `a` is no larger and no less accurate than `b`, and better in one."""
    return a[0] <= b[0] and a[1] >= b[1] and a != b


def pareto_best(runs: list[RunRecord]) -> list[int]:
    """Numbers (1 = oldest) of the runs no other run beats on both size and accuracy, as shown (2 decimals)."""
    points = {
        number: (round(run.percent_of_dense, 2), round(accuracy, 2))
        for number, run in enumerate(runs, 1)
        if (accuracy := run_accuracy(run)) is not None
    }
    return [n for n, p in points.items() if not any(_dominates(q, p) for q in points.values())]


def is_resumable(run: RunRecord) -> bool:
    return run.kind == "finetune" and run.resume_file is not None and run.status in RESUMABLE


def profile_name_of(run: RunRecord) -> str:
    """The name of the profile a run was made from: run4+ft5+ft2 -> run4."""
    return re.sub(r"(\+ft\d+)+$", "", run.name) or run.name


def run_targets(run: RunRecord, layer_names: list[str]) -> dict[str, float]:
    return {name: run.profile.get(name, 0.0) for name in layer_names}


def targets_diff(
    layer_names: list[str], reference: dict[str, float], other: dict[str, float]
) -> list[tuple[str, float, float]]:
    """(layer, reference target, other target) for every layer, in the model's order."""
    return [(name, reference.get(name, 0.0), other.get(name, 0.0)) for name in layer_names]
