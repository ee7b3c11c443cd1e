"""Suggest targets for a goal typed in the dialog, from the scan the app holds (core/suggest.py does the work)."""

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from prunetui.core.suggest import (
    ScanTable,
    Suggestion,
    suggest_for_budget,
    suggest_for_max_drop,
    suggest_per_layer_drop,
)
from prunetui.tui.scan_curves import ScanCurves

GOAL_FORMS = (
    "25%             size as a percent of dense\n"
    "4.5 or 4.5MiB   size in MiB\n"
    "drop 1.0        predicted accuracy drop of the whole model, in points\n"
    "layer-drop 0.5  each layer's own predicted drop, in points"
)


@dataclass(frozen=True)
class Goal:
    kind: str  # "budget" (value in MiB), "drop" or "layer-drop" (value in points)
    value: float
    text: str  # as typed, for the log


def _number(text: str, what: str) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        raise ValueError(f"{what}: not a number: {text.strip() or 'nothing'}") from None
    if not math.isfinite(value):
        raise ValueError(f"{what}: not a finite number: {text.strip()}")
    return value


def _drop(text: str, kind: str) -> Goal:
    value = _number(text.removeprefix(kind), kind)
    if value < 0:
        raise ValueError(f"{kind}: the tolerated drop must be 0 or more points")
    return Goal(kind, value, text)


def _budget(text: str, dense_mib: float) -> Goal:
    if text.endswith("%"):
        mib = _number(text.removesuffix("%"), "percent of dense") / 100 * dense_mib
    else:
        mib = _number(text.removesuffix("mib"), "size in MiB")
    if not 0 < mib <= dense_mib:
        raise ValueError(f"the size must be above 0 and at most the dense size ({dense_mib:.2f} MiB)")
    return Goal("budget", mib, text)


def parse_goal(text: str, dense_mib: float) -> Goal:
    """'25%', '4.5', '4.5MiB', 'drop 1.0' or 'layer-drop 0.5'; ValueError with a reason otherwise."""
    typed = text.strip().lower()
    if not typed:
        raise ValueError("type a goal, e.g. 25% or drop 1.0")
    for kind in ("layer-drop", "drop"):
        if typed.startswith(kind):
            return _drop(typed, kind)
    return _budget(typed, dense_mib)


def scan_table(curves: ScanCurves, params: Mapping[str, int]) -> ScanTable:
    """What core/suggest.py needs of the scan: the layers scanned at every sparsity of the grid."""
    sparsities = curves.sparsities()
    return ScanTable(sparsities, curves.base_accuracy, curves.complete_rows(sparsities), params)


def propose(
    goal: Goal, table: ScanTable, size_of: Callable[[dict[str, float]], float], locked: Mapping[str, float]
) -> Suggestion:
    """The suggestion for `goal`, as `prunetui suggest` makes it; locked layers keep their targets."""
    if goal.kind == "budget":
        return suggest_for_budget(table, goal.value, size_of, locked)
    if goal.kind == "layer-drop":
        return suggest_per_layer_drop(table, goal.value, size_of, locked)
    return suggest_for_max_drop(table, goal.value, size_of, locked)
