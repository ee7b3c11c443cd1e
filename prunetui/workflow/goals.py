"""What a suggestion aims for, parsed one way for the CLI's flags and the TUI's goal dialog."""

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from prunetui.errors import UserError

GOAL_FORMS = (
    "25%             size as a percent of dense\n"
    "4.5 or 4.5MiB   size in MiB\n"
    "drop 1.0        predicted accuracy drop of the whole model, in points\n"
    "layer-drop 0.5  each layer's own predicted drop, in points\n"
    "2x, 2x batch 64 measured speed-up (channel widths planned on this device)"
)
SPEEDUP = re.compile(r"([0-9.]+)\s*x(?:\s+(?:at\s+)?(?:batch(?:es)?\s+)?([0-9,\s]+))?")


@dataclass(frozen=True)
class Goal:
    kind: str  # "budget" (value in MiB), "drop" or "layer-drop" (value in points), "speedup" (a ratio)
    value: float
    text: str  # as typed, for the log and the JSON
    batches: tuple[int, ...] = ()  # a speed-up goal's batch sizes (empty: the default, batch 1)

    def as_json(self) -> dict:
        """`prunetui suggest --json`'s goal: {budget, max_drop, per_layer} (a speed-up goal's keys are
        workflow.planning.planned_json's)."""
        budget = self.text if self.kind == "budget" else None
        max_drop = self.value if self.kind != "budget" else None
        return {"budget": budget, "max_drop": max_drop, "per_layer": self.kind == "layer-drop"}


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


def parse_batches(text: str) -> tuple[int, ...]:
    """'1,64' -> (1, 64): positive batch sizes, each once, in the order given; ValueError otherwise."""
    parts = [part.strip() for part in text.split(",") if part.strip()]
    if not parts or not all(part.isdigit() and int(part) > 0 for part in parts):
        raise ValueError(f"batch sizes are positive whole numbers separated by commas, got '{text.strip()}'")
    return tuple(dict.fromkeys(int(part) for part in parts))


def _speedup(match: re.Match, text: str) -> Goal:
    value = _number(match.group(1), "speed-up")
    if value <= 1.0:
        raise ValueError("a speed-up goal is above 1x (e.g. 1.5x or 2x)")
    batches = parse_batches(match.group(2)) if match.group(2) else ()
    return Goal("speedup", value, text, batches)


def parse_goal(text: str, dense_mib: float) -> Goal:
    """'25%', '4.5', '4.5MiB', 'drop 1.0', 'layer-drop 0.5', or a speed-up '2x' / '2x batch 1,64';
    ValueError with a reason otherwise."""
    typed = text.strip().lower()
    if not typed:
        raise ValueError("type a goal, e.g. 25%, drop 1.0 or 2x")
    speedup = SPEEDUP.fullmatch(typed)
    if speedup is not None:
        return _speedup(speedup, typed)
    for kind in ("layer-drop", "drop"):
        if typed.startswith(kind):
            return _drop(typed, kind)
    return _budget(typed, dense_mib)


def goal_from_flags(budget: str | None, max_drop: float | None, per_layer: bool, dense_mib: float) -> Goal:
    """`suggest --budget B` or `--max-drop D [--per-layer]` as the same Goal the dialog makes."""
    text = budget if budget is not None else f"{'layer-drop' if per_layer else 'drop'} {max_drop}"
    try:
        return parse_goal(text, dense_mib)
    except ValueError as e:
        flag = "--budget" if budget is not None else "--max-drop"
        raise UserError(f"bad {flag} '{budget if budget is not None else max_drop}': {e}") from None


def propose(goal: Goal, table, size_of: Callable[[dict[str, float]], float], locked: Mapping[str, float]):
    """The core.suggest Suggestion for `goal` from a ScanTable; locked layers keep their targets."""
    from prunetui.core import suggest  # the engine only when a suggestion is made

    if goal.kind == "budget":
        return suggest.suggest_for_budget(table, goal.value, size_of, locked)
    if goal.kind == "layer-drop":
        return suggest.suggest_per_layer_drop(table, goal.value, size_of, locked)
    return suggest.suggest_for_max_drop(table, goal.value, size_of, locked)
