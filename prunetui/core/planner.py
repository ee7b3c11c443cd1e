"""Per-group channel widths for a measured speed-up, with the least predicted accuracy loss.

- Options: each group's aligned widths (core.latency_model), each with its predicted accuracy loss (the
  channel scan after BN recalibration, linear between scanned ratios: core.suggest.drop_at; EagleEye, Li
  et al. 2020, found recalibrated accuracy ranks pruned candidates well) and the latency model's
  fraction of dense with that group alone at each batch.
- `solve`: a multiple-choice knapsack on latency, relaxed as core.suggest relaxes its size knapsack (HALP,
  Shen et al. 2022, solves the same problem on a latency table): for a price `lam` each group picks the
  width minimising drop + lam x (sum over batches of its latency fraction - 1); a bisection finds the
  least price whose predicted speed-up (plus a measured offset per batch) reaches the goal at every
  batch, and single widening moves give back what the relaxation overshot.
- `search`: NetAdapt's loop (Yang et al. 2018): measure each solution whole (core.timers.measure_speedup),
  correct the model by the measured offset at each batch, solve again; the uniform baseline on the same
  grid is measured too (as core.refine measures the scan's proposal against uniform pruning); the best
  few that reach the goal by measurement are re-ranked by their recalibrated accuracy. A candidate
  measured slower than dense at any batch is never returned; when none reaches the goal the fastest one that is not
  slower is returned as such, and when none is faster nothing is.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from prunetui.core.latency_model import LatencyTable
from prunetui.core.suggest import drop_at
from prunetui.core.timers import Speedup

ROUNDS = 3  # whole measurements of solutions (NetAdapt's measure-and-correct rounds)
KEEP = 2  # candidates reaching the goal whose recalibrated accuracy is measured
HIGH_PRICE = 1e7
TIE = 1e-3  # points per fraction of a group removed: among equal predicted losses, remove the least


@dataclass(frozen=True)
class WidthOption:
    """A group at `width` channels: predicted loss in points and latency fraction of dense per batch."""

    width: int
    drop: float
    fraction: Mapping[int, float]


Options = Mapping[str, Sequence[WidthOption]]
Widths = dict[str, int]


def width_options(
    table: LatencyTable,
    ratios: Sequence[float],
    curves: Mapping[str, Sequence[float]],
    base_accuracy: float,
) -> dict[str, list[WidthOption]]:
    """Every group of `table` that the scan covers, at each grid width within the scanned ratios
    (`curves`: group -> accuracy per ratio of `ratios`, measured on the search images)."""
    options = {}
    top = max(ratios, default=0.0)
    for name, group in table.groups.items():
        curve = curves.get(name)
        if curve is None:
            continue
        found = []
        for width in group.widths:
            ratio = (group.channels - width) / group.channels
            if ratio > top + 1e-9:
                continue
            drop = drop_at(ratio, ratios, curve, base_accuracy) if ratio > 0 else 0.0
            drop += TIE * ratio  # equal predicted losses: the wider width (scans flat at chance, or at 100%)
            fraction = {b: table.predict({name: width}, b) for b in table.setting.batches}
            found.append(WidthOption(width, drop, fraction))
        options[name] = found
    return options


Predict = Callable[[Mapping[str, int], int], float]  # (widths, batch) -> latency as a fraction of dense


def _widths(picked: Mapping[str, WidthOption]) -> Widths:
    return {name: o.width for name, o in picked.items()}


def _pick(options: Options, lam: float, batches: Sequence[int]) -> dict[str, WidthOption]:
    """Each group's width minimising drop + lam x latency change (ties: the wider)."""
    return {
        name: min(opts, key=lambda o: (o.drop + lam * sum(o.fraction[b] - 1.0 for b in batches), -o.width))
        for name, opts in options.items()
        if opts
    }


def solve(
    options: Options,
    goal: float,
    batches: Sequence[int],
    predict: Predict,
    offset: Mapping[int, float] | None = None,
) -> dict[str, WidthOption] | None:
    """The least-loss profile on the price path whose predicted latency (`predict`, plus the measured
    `offset` per batch, as fractions of dense) is at most 1/goal at every batch; None when even the
    narrowest widths are not predicted to reach it. Picks are separable per group; the check is the whole
    prediction (core.latency_model, cross terms included)."""
    offset = offset or {}

    def fits(picked: Mapping[str, WidthOption]) -> bool:
        widths = _widths(picked)
        return all(predict(widths, b) + offset.get(b, 0.0) <= 1.0 / goal + 1e-12 for b in batches)

    if not fits(_pick(options, HIGH_PRICE, batches)):
        return None
    low, high = 0.0, HIGH_PRICE
    for _ in range(80):
        middle = (low + high) / 2
        if fits(_pick(options, middle, batches)):
            high = middle
        else:
            low = middle
    return _widened(_pick(options, high, batches), options, fits)


def _widened(picked: dict[str, WidthOption], options: Options, fits) -> dict[str, WidthOption]:
    """Give back what the relaxation overshot: while some group can be widened with the goal still
    predicted met, widen the one that saves the most predicted loss (the price path jumps between the
    hull's corners; NetAdapt-style single moves fill in between)."""
    while True:
        moves = [
            (current.drop - wider.drop, wider.width, name, wider)
            for name, current in picked.items()
            for wider in options[name]
            if wider.width > current.width and fits({**picked, name: wider})
        ]
        if not moves:
            return picked
        _gain, _width, name, wider = max(moves, key=lambda move: (move[0], move[1]))
        picked = {**picked, name: wider}


def narrowest(options: Options) -> dict[str, WidthOption]:
    """Every group at its narrowest scanned width: the most the grid can remove."""
    return {name: min(opts, key=lambda o: o.width) for name, opts in options.items() if opts}


@dataclass
class Candidate:
    """A profile measured whole: its widths, predicted loss and speed-ups, measured speed-ups, and (for
    the few that are ranked) its accuracy after BN recalibration on the search images."""

    widths: Widths
    predicted_drop: float
    predicted: dict[int, float]
    measured: dict[int, Speedup]
    accuracy: float | None = None
    source: str = "planned"  # "planned" (the solver's), "uniform" (one kept fraction on every group)

    def reaches(self, goal: float) -> bool:
        return all(s.ratio >= goal for s in self.measured.values())

    @property
    def slower(self) -> bool:
        return any(s.slower for s in self.measured.values())

    @property
    def least_speedup(self) -> float:
        return min(s.ratio for s in self.measured.values())


@dataclass
class Search:
    """What `search` found: `best` (None: nothing faster than dense), whether it reaches the goal, every
    candidate measured, and the narrowest profile's measurement when it was needed to say why not."""

    goal: float
    best: Candidate | None
    reached: bool
    candidates: list[Candidate] = field(default_factory=list)
    narrowest: Candidate | None = None
    infeasible: bool = False  # the model predicted the goal out of reach of the grid's widths


Measure = Callable[[Widths], dict[int, Speedup]]


@dataclass(frozen=True)
class Loop:
    """What NetAdapt's loop needs besides the options: the batches, the latency model's prediction,
    `measure(widths)` -> {batch: Speedup} of the whole profile, `accuracy(widths)` -> recalibrated
    accuracy on the search images (both raise to stop: a cancel), and its effort."""

    batches: Sequence[int]
    predict: Predict
    measure: Measure
    accuracy: Callable[[Widths], float]
    rounds: int = ROUNDS
    keep: int = KEEP
    nudge: float = 0.02  # of dense latency, asked for more when a failing profile comes back
    uniform: bool = True  # also measure and rank the uniform baseline on the same grid
    # each whole measurement handed back to the latency model (it refits what `predict` says)
    observe: Callable[[Widths, dict[int, Speedup]], None] | None = None


def _candidate(picked: Mapping[str, WidthOption], loop: Loop, source: str = "planned") -> Candidate:
    widths = _widths(picked)
    drop = sum(o.drop for o in picked.values())
    predicted = {b: 1.0 / loop.predict(widths, b) for b in loop.batches}  # before it is measured
    measured = loop.measure(widths)
    if loop.observe is not None:
        loop.observe(widths, measured)
    return Candidate(widths, drop, predicted, measured, source=source)


def uniform_levels(options: Options) -> list[dict[str, WidthOption]]:
    """One kept fraction on every group, widest first: for each width of the group with the most grid
    widths, every group at its width nearest that fraction of its channels (the uniform baseline, on
    the same aligned grid)."""
    if not options:
        return []
    widest = max(options.values(), key=len)
    full = max(o.width for o in widest)
    levels = []
    for fraction in sorted({o.width / full for o in widest}, reverse=True)[1:]:
        level = {}
        for name, opts in options.items():
            top = max(o.width for o in opts)
            level[name] = min(opts, key=lambda o, top=top: (abs(o.width - fraction * top), o.width))
        levels.append(level)
    return levels


def uniform_candidate(
    options: Options, goal: float, loop: Loop, offset: Mapping[int, float]
) -> Candidate | None:
    """The widest uniform level predicted (with the measured `offset`) to reach the goal, measured; one
    level narrower while it measures short (at most two measurements)."""
    levels = uniform_levels(options)
    fits = [
        i
        for i, level in enumerate(levels)
        if all(loop.predict(_widths(level), b) + offset.get(b, 0.0) <= 1.0 / goal for b in loop.batches)
    ]
    if not levels:
        return None
    start = fits[0] if fits else len(levels) - 1
    candidate = _candidate(levels[start], loop, "uniform")
    if not candidate.reaches(goal) and start + 1 < len(levels):
        candidate = _candidate(levels[start + 1], loop, "uniform")
    return candidate


def search(options: Options, goal: float, loop: Loop) -> Search:
    """NetAdapt's loop (module docstring): solve, measure whole, correct the prediction by the measured
    offset at each batch (latency fractions: measured - predicted), solve again; `loop.rounds` whole
    measurements at most. Then the few reaching the goal ranked by recalibrated accuracy."""
    offset = {b: 0.0 for b in loop.batches}
    found: dict[tuple, Candidate] = {}
    infeasible = False
    widest_cut = narrowest(options)
    for _ in range(4 * max(1, loop.rounds)):  # solves; a solve that repeats a profile measures nothing
        if len(found) >= max(1, loop.rounds):
            break
        picked = solve(options, goal, loop.batches, loop.predict, offset)
        if picked is None:  # out of the model's reach: measure the narrowest, whose offset corrects it
            infeasible = True
            if _key(widest_cut) in found or not widest_cut:
                break
            picked = widest_cut
        key = _key(picked)
        if all(o.width == max(x.width for x in options[n]) for n, o in picked.items()):
            break  # the model, corrected, is content with dense: nothing narrower to measure
        if key in found:  # nudge: a profile that reached the goal asks for less, one that did not for more
            sign = -1.0 if found[key].reaches(goal) else 1.0
            offset = {b: o + sign * loop.nudge for b, o in offset.items()}
            continue
        candidate = found[key] = _candidate(picked, loop)
        widths = candidate.widths  # what the (refitted) model still gets wrong about it
        offset = {b: 1.0 / candidate.measured[b].ratio - loop.predict(widths, b) for b in loop.batches}
    uniform = uniform_candidate(options, goal, loop, offset) if loop.uniform else None
    if uniform is not None:  # the baseline competes on the same measurements (as core.refine's does)
        found.setdefault(tuple(sorted(uniform.widths.items())), uniform)
    return _chosen(options, goal, loop, list(found.values()), infeasible)


def _key(picked: Mapping[str, WidthOption]) -> tuple:
    return tuple(sorted(_widths(picked).items()))


def _chosen(options, goal: float, loop: Loop, candidates: list[Candidate], infeasible: bool) -> Search:
    """The best of the candidates reaching the goal by measured recalibrated accuracy (the `keep` fewest
    predicted losses ranked); with none, the narrowest profile is measured too (what the grid can do at
    most: it may reach the goal where the model said no, else it says why not), then the fastest that
    is not slower than dense is returned as not reaching the goal, or nothing."""
    widest = narrowest(options)
    narrow = next((c for c in candidates if c.widths == _widths(widest)), None)
    if widest and narrow is None and not any(c.reaches(goal) for c in candidates):
        narrow = _candidate(widest, loop)
        candidates.append(narrow)
    passing = [c for c in candidates if c.reaches(goal) and not c.slower]
    if passing:
        planned = sorted((c for c in passing if c.source == "planned"), key=lambda c: c.predicted_drop)
        ranked = planned[: max(1, loop.keep)] + [c for c in passing if c.source == "uniform"]
        for candidate in ranked:
            candidate.accuracy = loop.accuracy(candidate.widths)
        best = max(ranked, key=lambda c: (c.accuracy, -c.predicted_drop))
        return Search(goal, best, True, candidates, narrow, infeasible)
    faster = [c for c in candidates if not c.slower and c.least_speedup > 1.0]
    best = max(faster, key=lambda c: c.least_speedup) if faster else None
    if best is not None:
        best.accuracy = loop.accuracy(best.widths)
    return Search(goal, best, False, candidates, narrow, infeasible)
