"""Suggest per-layer targets from a sensitivity scan for a stated goal.

The scan gives, per layer, the accuracy with that layer alone pruned. We predict the accuracy of a
profile as base - sum of per-layer drops (drops interpolated linearly between scanned points, 0 at
sparsity 0, never extrapolated past the highest scanned sparsity). Choosing one sparsity per layer to
remove the most weights for the least predicted drop is a multiple-choice knapsack; we solve its
Lagrangian relaxation: for a price `lam` on each kept weight, every layer independently picks the
sparsity minimising drop + lam * kept, and a bisection on `lam` meets the goal. The additive model is a
prediction, not a measurement: pruning several layers usually hurts more than the sum, so it is clamped
to [0, 100] and core.refine measures the proposal against the uniform and global baselines and refines it.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial

from prunetui.errors import UserError

STEP = 0.05  # finest target the suggestion uses between scanned points


@dataclass(frozen=True)
class Suggestion:
    targets: dict[str, float]
    predicted_accuracy: float | None  # base minus the sum of per-layer scan drops, in [0, 100]; None: no scan
    size_mib: float
    measured_accuracy: float | None = None  # measured before finetuning (core.refine), when it was
    source: str = "scan"  # what the targets came from: "scan", "global", "uniform" or "refined"


def clamp_accuracy(accuracy: float) -> float:
    """A prediction as an accuracy can be: in [0, 100]."""
    return min(100.0, max(0.0, accuracy))


def drop_at(sparsity: float, sparsities: Sequence[float], accuracies: Sequence[float], base: float) -> float:
    """Predicted accuracy loss of one layer at `sparsity`, linear between scanned points, never < 0."""
    points = [(0.0, 0.0)] + sorted(
        (s, max(0.0, base - a)) for s, a in zip(sparsities, accuracies, strict=True)
    )
    for (s0, d0), (s1, d1) in zip(points, points[1:], strict=False):
        if s0 <= sparsity <= s1:
            return d0 if s1 == s0 else d0 + (d1 - d0) * (sparsity - s0) / (s1 - s0)
    raise ValueError(f"sparsity {sparsity} is past the scanned range")


def _candidates(sparsities: Sequence[float]) -> list[float]:
    top = max(sparsities)
    grid = {round(i * STEP, 6) for i in range(int(top / STEP + 1e-9) + 1)}
    return sorted(grid | {round(s, 6) for s in sparsities} | {0.0})


@dataclass(frozen=True)
class _Option:
    sparsity: float
    drop: float
    kept: int


def _options(kept: Callable[[float], int], sparsities, accuracies, base: float) -> list[_Option]:
    return [_Option(s, drop_at(s, sparsities, accuracies, base), kept(s)) for s in _candidates(sparsities)]


def _pick(options: Mapping[str, list[_Option]], lam: float) -> dict[str, _Option]:
    """Each layer's option minimising drop + lam * kept (ties: the sparser one)."""
    return {
        name: min(opts, key=lambda o: (o.drop + lam * o.kept, -o.sparsity)) for name, opts in options.items()
    }


def _bisect(ok: Callable[[float], bool], want_smallest: bool, low: float = 0.0, high: float = 1e9) -> float:
    """The smallest (or largest) price lam in [low, high] with ok(lam). A higher price prunes more,
    so a size budget holds from some lam upwards and a drop limit up to some lam."""
    for _ in range(100):
        middle = (low + high) / 2
        if ok(middle) == want_smallest:
            high = middle
        else:
            low = middle
    return high if want_smallest else low


@dataclass(frozen=True)
class ScanTable:
    """What suggest needs of a scan and a model."""

    sparsities: Sequence[float]
    base_accuracy: float
    curves: Mapping[str, Sequence[float]]  # layer -> accuracy per sparsity
    layers: Sequence[str]  # every prunable layer
    kept: Callable[[str, float], int]  # weights the pruning method keeps of a layer at a sparsity (exact)


def _locked_option(table: ScanTable, name: str, sparsity: float) -> _Option:
    """A locked layer keeps its target; its drop counts when the scan covers it."""
    curve = table.curves.get(name)
    scanned = curve is not None and sparsity <= max(table.sparsities)
    drop = drop_at(sparsity, table.sparsities, curve, table.base_accuracy) if scanned else 0.0
    return _Option(sparsity, drop, table.kept(name, sparsity))


def _layer_options(table: ScanTable, locked: Mapping[str, float]) -> dict[str, list[_Option]]:
    missing = [n for n in table.layers if n not in table.curves and n not in locked]
    if missing:
        raise UserError(f"no scan for {', '.join(missing[:3])}: scan every unlocked layer first")
    options = {}
    for name in table.layers:
        if name in locked:
            options[name] = [_locked_option(table, name, locked[name])]
        else:
            kept = partial(table.kept, name)
            options[name] = _options(kept, table.sparsities, table.curves[name], table.base_accuracy)
    return options


def _result(picked: dict[str, _Option], table: ScanTable, size_of: Callable[[dict], float]) -> Suggestion:
    targets = {name: o.sparsity for name, o in picked.items()}
    predicted = clamp_accuracy(table.base_accuracy - sum(o.drop for o in picked.values()))
    return Suggestion(targets, predicted, size_of(targets))


def suggest_for_budget(
    table: ScanTable,
    budget_mib: float,
    size_of: Callable[[dict[str, float]], float],
    locked: Mapping[str, float] | None = None,
) -> Suggestion:
    """Targets whose size (by `size_of`, exact) is at most `budget_mib`, losing the least predicted accuracy."""
    options = _layer_options(table, locked or {})
    densest = _pick(options, 1e9)  # every layer as sparse as the scan allows
    if size_of({n: o.sparsity for n, o in densest.items()}) > budget_mib:
        best = size_of({n: o.sparsity for n, o in densest.items()})
        raise UserError(
            f"cannot reach {budget_mib:.3f} MiB: pruning every unlocked layer to the highest scanned "
            f"sparsity gives {best:.3f} MiB (scan higher sparsities or unlock layers)"
        )

    def fits(lam: float) -> bool:
        return size_of({n: o.sparsity for n, o in _pick(options, lam).items()}) <= budget_mib

    return _result(_pick(options, _bisect(fits, want_smallest=True)), table, size_of)


def suggest_for_max_drop(
    table: ScanTable,
    max_drop: float,
    size_of: Callable[[dict[str, float]], float],
    locked: Mapping[str, float] | None = None,
) -> Suggestion:
    """The smallest profile whose predicted accuracy drop (sum over layers) stays within `max_drop` points."""
    if max_drop < 0:
        raise UserError(f"the tolerated drop must be 0 or more points, got {max_drop}")
    options = _layer_options(table, locked or {})

    def within(lam: float) -> bool:
        return sum(o.drop for o in _pick(options, lam).values()) <= max_drop + 1e-9

    return _result(_pick(options, _bisect(within, want_smallest=False)), table, size_of)


def suggest_per_layer_drop(
    table: ScanTable,
    max_drop: float,
    size_of: Callable[[dict[str, float]], float],
    locked: Mapping[str, float] | None = None,
) -> Suggestion:
    """Each unlocked layer at the highest sparsity whose own predicted drop is within `max_drop`."""
    options = _layer_options(table, locked or {})
    picked = {name: max((o for o in opts if o.drop <= max_drop + 1e-9), key=lambda o: o.sparsity)
              for name, opts in options.items()}  # fmt: skip
    return _result(picked, table, size_of)
