"""Honest suggestions: measure a proposal against the standard baselines at the same size, keep the best
measured one, then refine it by measured moves of sparsity between layers that keep the size.

A scan-based proposal (core.suggest) is a prediction from one-layer-at-a-time curves; pruning every
layer at once can hurt more, or (after BatchNorm recalibration) much less. So the proposal is measured
with the evaluation the user will see, next to the two profiles any pruning library offers at the same
size: uniform (one sparsity everywhere) and global magnitude (one threshold over every layer, Han et al.
2015). The best measured one is then improved by hill climbing: move `step` of one layer's weights' worth
of sparsity to another layer (one gets denser, the other sparser, the size stays within the budget),
measure, keep the move when the accuracy rises; smaller steps once no move helps. This is the measured
correction that AMC (He et al. 2018) and EagleEye (Li et al. 2020) make with a cheap evaluation; here the
evaluation is the user's own (with recalibration when asked for), so the search chooses on the same images
it reports: the measured number is what the profile gives on them, not an estimate of unseen data.
"""

import math
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from prunetui.core.events import Progress, Report, check_cancel, ignore

Targets = dict[str, float]
Measure = Callable[[Targets], float]  # prune the dense weights to these targets, evaluate: accuracy in %
SizeOf = Callable[[Targets], float]  # exact size in MiB of pruning to these targets
STEPS = (0.1, 0.05, 0.02)  # sparsity moved per move, coarse to fine
MEASURES = 60  # measured moves at most (each is one prune, recalibration when asked, one evaluation)
DECIMALS = 4  # targets are kept to 4 decimals, as the front ends show and store them
GAIN = 1e-9  # a move is kept only when it raises the measured accuracy


@dataclass(frozen=True)
class Candidate:
    source: str  # "scan" (the scan-based proposal), "global", "uniform", "refined"
    targets: Targets
    accuracy: float  # measured
    size_mib: float


@dataclass
class Refined:
    best: Candidate
    baselines: dict[str, Candidate] = field(default_factory=dict)  # measured at the same size
    tried: int = 0  # measured moves
    kept: int = 0  # moves that raised the accuracy

    @property
    def start(self) -> Candidate:
        """The best of the measured baselines, where the moves started."""
        return max(self.baselines.values(), key=lambda c: c.accuracy)


def _up(value: float) -> float:
    """Rounded up to DECIMALS (a sparser target never breaks a size budget)."""
    scale = 10**DECIMALS
    return min(1.0, math.ceil(round(value * scale, 6)) / scale)


def uniform_targets(
    names: Sequence[str], size_of: SizeOf, budget_mib: float, locked: Mapping[str, float] | None = None
) -> Targets:
    """One sparsity for every unlocked layer, the lowest (to DECIMALS) whose size fits `budget_mib`."""
    locked = dict(locked or {})
    free = [n for n in names if n not in locked]

    def at(s: float) -> Targets:
        return {n: locked.get(n, s) for n in names}

    low, high = 0, 10**DECIMALS  # in units of 10^-DECIMALS: size_of(at(high)) is the smallest there is
    while high - low > 1:
        middle = (low + high) // 2
        if size_of(at(middle / 10**DECIMALS)) <= budget_mib:
            high = middle
        else:
            low = middle
    return at(high / 10**DECIMALS) if free else at(0.0)


def move(
    targets: Targets,
    receiver: str,
    donor: str,
    step: float,
    size_of: SizeOf,
    budget_mib: float,
    numel: Mapping[str, int],
) -> Targets | None:
    """`receiver` `step` denser, `donor` as much sparser as keeps the size within `budget_mib`
    (None when the receiver is dense already or the donor cannot give that much)."""
    if targets[receiver] <= 0.0:
        return None
    moved = dict(targets)
    moved[receiver] = max(0.0, round(targets[receiver] - step, DECIMALS))
    excess_mib = size_of(moved) - budget_mib
    if excess_mib > 0:
        weights = excess_mib * 2**20 * 8 / 32  # the lab's size: nonzeros x 32 bit
        moved[donor] = _up(targets[donor] + weights / numel[donor])
        for _ in range(20):  # ties may keep a weight more than the count says: a notch sparser
            if moved[donor] >= 1.0 or size_of(moved) <= budget_mib:
                break
            moved[donor] = _up(moved[donor] + 10**-DECIMALS)
        if moved[donor] >= 1.0 or size_of(moved) > budget_mib:
            return None
    return moved


def refine(
    start: Candidate,
    measure: Measure,
    size_of: SizeOf,
    budget_mib: float,
    numel: Mapping[str, int],
    locked: Sequence[str] = (),
    steps: Sequence[float] = STEPS,
    measures: int = MEASURES,
    report: Report = ignore,
    cancel: threading.Event | None = None,
) -> tuple[Candidate, int, int]:
    """Hill climbing from `start` by measured moves that keep the size: (best, moves measured, moves
    kept). Every ordered pair of unlocked layers at each step, first improvement taken, until a whole
    round finds none or `measures` moves have been measured."""
    free = [n for n in start.targets if n not in locked]
    best, tried, kept = start, 0, 0
    for step in steps:
        improved = True
        while improved and tried < measures:
            improved = False
            for receiver in free:
                for donor in free:
                    if donor == receiver or tried >= measures:
                        continue
                    targets = move(best.targets, receiver, donor, step, size_of, budget_mib, numel)
                    if targets is None:
                        continue
                    check_cancel(cancel)
                    accuracy = measure(targets)
                    tried += 1
                    report(Progress("refine suggestion", tried, measures))
                    if accuracy > best.accuracy + GAIN:
                        best = Candidate("refined", targets, accuracy, size_of(targets))
                        improved, kept = True, kept + 1
    return best, tried, kept


def choose(
    proposals: Mapping[str, Targets],
    measure: Measure,
    size_of: SizeOf,
    budget_mib: float,
    numel: Mapping[str, int],
    locked: Sequence[str] = (),
    measures: int = MEASURES,
    report: Report = ignore,
    cancel: threading.Event | None = None,
) -> Refined:
    """Measure every proposal (source -> targets, each within `budget_mib`), start from the best, refine.
    The result is never worse, measured, than any proposal."""
    baselines = {}
    for source, targets in proposals.items():
        check_cancel(cancel)
        baselines[source] = Candidate(source, dict(targets), measure(targets), size_of(targets))
    refined = Refined(max(baselines.values(), key=lambda c: c.accuracy), baselines)
    if measures > 0:
        refined.best, refined.tried, refined.kept = refine(
            refined.best, measure, size_of, budget_mib, numel, locked,
            measures=measures, report=report, cancel=cancel,
        )  # fmt: skip
    return refined
