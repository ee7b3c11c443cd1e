"""The speed-up planner, once for both front ends (`prunetui suggest --speedup 2x`, `2x` in the TUI's `a`).

From the model as opened, by the channel method whatever the session's method is:
1. the latency model of this device (core.latency_model: each group's widths timed at each batch, cached
   in `<state folder>/latency/`);
2. the evaluation images split into search and held-out images (core.holdout);
3. a channel scan after BN recalibration on the search images (cached as scans are);
4. the planner (core.planner): solve, measure whole, correct, re-solve; the best few that reach the
   goal re-ranked by recalibrated accuracy on the search images;
5. the chosen profile's accuracy after BN recalibration on the held-out images, and the latency model's
   error over random profiles and the candidates, both measured whole.
The session's model, weights and targets are left as they were; `Planned.targets` is the profile.
"""

import threading
import time
from dataclasses import dataclass, field

import torch

from prunetui.core.evaldata import standard_error
from prunetui.core.evaluate import evaluate
from prunetui.core.events import Report, check_cancel, ignore
from prunetui.core.holdout import HELD_OUT_SHARE, EvalSplit, split_eval
from prunetui.core.latency_cache import LATENCY_DIR, LatencyCache, latency_table
from prunetui.core.latency_fit import prediction_errors, random_profiles
from prunetui.core.latency_model import (
    DEFAULT_FRACTIONS,
    LatencyTable,
    default_round_to,
    narrowed,
    removal_ratios,
    setting_for,
)
from prunetui.core.methods import Channel, Plan
from prunetui.core.planner import KEEP, ROUNDS, Candidate, Loop, Search, search, width_options
from prunetui.core.recalibrate import recalibrate_bn
from prunetui.core.scan_cache import cached_scan
from prunetui.core.scans import Scans
from prunetui.core.sensitivity import ScanOptions, ScanResult
from prunetui.core.session import Session
from prunetui.core.timers import Speedup, Timer, measure_speedup, speedups_json, timer_for
from prunetui.errors import UserError
from prunetui.workflow import planning_lines as lines
from prunetui.workflow.goals import Goal


@dataclass(frozen=True)
class Effort:
    """How much measuring the planner does (the defaults: figures worth reporting on a busy 2-core CPU;
    tests pass tiny ones). Seconds are per timing call (core.timers)."""

    fractions: tuple[float, ...] = DEFAULT_FRACTIONS  # the width grid, kept fractions of each group
    table_run_time: float = 0.1  # per timing of the latency model's sweeps
    sweeps: int = 1  # ABBA sweeps of each group's widths (2 samples of each width per sweep)
    calibration: int = 4  # random profiles measured whole to fit the latency model (core.latency_fit)
    measure_run_time: float = 0.2  # per timing of a whole candidate
    measure_rounds: int = 3  # ABBA rounds per whole measurement (2 pairs each)
    rounds: int = ROUNDS  # measure-and-correct rounds (core.planner.search)
    keep: int = KEEP  # candidates reaching the goal ranked by recalibrated accuracy
    check_profiles: int = 3  # random profiles measured whole to check the latency model
    held_out_share: float = HELD_OUT_SHARE


DEFAULT_EFFORT = Effort()


@dataclass(frozen=True)
class SpeedupRequest:
    """A speed-up goal and where it is measured: `batches` (each must reach the goal), `runtime` (torch or
    onnxruntime), `round_to` (None: 8 on CUDA, 1 on the CPU), `threads` (None: torch's current count)."""

    goal: Goal
    batches: tuple[int, ...] = (1,)
    max_drop: float | None = None
    runtime: str = "torch"
    round_to: int | None = None
    threads: int | None = None


@dataclass
class Planned:
    """What planning found. `search.best` is None when nothing measured faster than dense."""

    request: SpeedupRequest
    table: LatencyTable
    split: EvalSplit
    scan: ScanResult
    search: Search
    targets: dict[str, float]  # the profile as channel targets ({} when nothing is returned)
    accuracy_dense_search: float | None  # dense, BN recalibrated as the scan measures it
    accuracy_dense_heldout: float | None
    accuracy_heldout: float | None
    model_error: dict[int, float] = field(default_factory=dict)  # mean |pred - meas| / meas per batch
    model_checks: int = 0
    seconds: float = 0.0

    @property
    def best(self) -> Candidate | None:
        return self.search.best

    @property
    def speedup(self) -> dict[int, Speedup]:
        return self.best.measured if self.best is not None else {}

    @property
    def accuracy_search(self) -> float | None:
        return self.best.accuracy if self.best is not None else None

    def standard_errors(self) -> tuple[float | None, float | None]:
        """Of the search and held-out accuracies, in points (core.evaldata.standard_error)."""
        search = self.accuracy_search
        held = self.accuracy_heldout
        return (
            standard_error(search, self.split.search_images) if search is not None else None,
            standard_error(held, self.split.held_out_images) if held is not None else None,
        )

    @property
    def drop_heldout(self) -> float | None:
        if self.accuracy_heldout is None or self.accuracy_dense_heldout is None:
            return None
        return self.accuracy_dense_heldout - self.accuracy_heldout


def check_request(request: SpeedupRequest) -> None:
    """UserError, before any work, for a goal or a setting the planner cannot take."""
    if request.goal.kind != "speedup" or request.goal.value <= 1.0:
        raise UserError(f"a speed-up goal is above 1x, got {request.goal.text}")
    if not request.batches or any(b < 1 for b in request.batches):
        raise UserError(f"batch sizes must be positive, got {list(request.batches)}")
    if request.round_to is not None and request.round_to < 1:
        raise UserError(f"--round-to must be 1 or more, got {request.round_to}")
    if request.threads is not None and request.threads < 1:
        raise UserError(f"--threads must be 1 or more, got {request.threads}")
    if request.max_drop is not None and request.max_drop < 0:
        raise UserError(f"--max-drop must be 0 or more points, got {request.max_drop}")


def latency_cache(session: Session) -> LatencyCache:
    """`<state folder>/latency/` beside the scans (nothing cached when scans are not)."""
    folder = session.scans.folder
    return LatencyCache(folder.parent / LATENCY_DIR if folder is not None else None)


def plan_speedup(
    session: Session,
    request: SpeedupRequest,
    say,
    report: Report = ignore,
    cancel: threading.Event | None = None,
    effort: Effort | None = None,
    timer: Timer | None = None,
) -> Planned:
    """Plan channel widths for `request` (module docstring). `effort`: default DEFAULT_EFFORT; `timer`: a
    core.timers Timer for every timing (default: the request's runtime with the effort's run times). Raises UserError without data,
    for a model without channel groups, or for a bad request; Cancelled when cancelled."""
    started = time.perf_counter()
    effort = effort or DEFAULT_EFFORT
    check_request(request)
    if session.data is None:
        raise UserError("suggest --speedup needs data: give a data spec (--data)")
    state = session.state
    table = measure_latency_model(session, request.batches, say, report, cancel, request, effort, timer)
    threads = table.setting.threads
    measure_timer = timer or timer_for(
        request.runtime, state.example_input(), threads, effort.measure_run_time
    )
    split = split_eval(session.data.eval, effort.held_out_share)
    with state.scratch():
        state.restore_opened()
        scan = _search_scan(session, split, effort, list(table.groups), report, cancel)
        say(lines.scan_done(scan, split), "dim")
        options = width_options(table, scan.sparsities, scan.layers, scan.base_accuracy)
        trial = _Trials(session, table, measure_timer, request.batches, effort.measure_rounds, cancel)
        loop = Loop(request.batches, table.predict, trial.measure_said(say), trial.accuracy_on(split.search),
                    effort.rounds, effort.keep, observe=table_observer(table))  # fmt: skip
        found = search(options, request.goal.value, loop)
        best = found.best
        held = trial.accuracy_on(split.held_out)(best.widths) if best is not None else None
        dense_held = evaluate(state.model, split.held_out, cancel=cancel)
        checks = trial.random_checks(effort.check_profiles, found.candidates)
    errors = prediction_errors(checks)
    targets = removal_ratios(best.widths, table.channels) if best is not None else {}
    planned = Planned(request, table, split, scan, found, targets, scan.base_accuracy, dense_held, held,
                      errors, len(checks), time.perf_counter() - started)  # fmt: skip
    for text, style in lines.outcome(planned):
        say(text, style)
    return planned


def measure_latency_model(
    session: Session,
    batches: tuple[int, ...],
    say,
    report: Report = ignore,
    cancel: threading.Event | None = None,
    request: SpeedupRequest | None = None,
    effort: Effort | None = None,
    timer: Timer | None = None,
) -> LatencyTable:
    """The latency model of the session's model as opened at `batches` (the request's runtime, alignment
    and threads; default torch, the device's alignment, torch's threads), from the cache or measured.
    UserError for a model without a prunable channel group or without a known input shape."""
    effort = effort or DEFAULT_EFFORT
    session.example_input()
    state = session.state
    groups = [g for g in Channel().groups(state) if g.prunable]
    if not groups:
        raise UserError("the model has no channel group that can be pruned: no width to plan")
    example = state.example_input()
    runtime = request.runtime if request else "torch"
    threads = (request.threads if request else None) or torch.get_num_threads()
    table_timer = timer or timer_for(runtime, example, threads, effort.table_run_time)
    round_to = (request.round_to if request else None) or default_round_to(state.device)
    setting = setting_for(state.base, table_timer, batches, round_to, effort.fractions)
    say(lines.timing(setting, len(groups)), "dim")
    cache = latency_cache(session)
    table = latency_table(
        state.base,
        example,
        groups,
        setting,
        table_timer,
        cache,
        report,
        cancel,
        effort.sweeps,
        effort.calibration,
    )
    say(lines.table_done(table), "dim")
    return table


def table_observer(table: LatencyTable):
    """core.planner.Loop's `observe`: each candidate measured whole refits the table's MAC share."""

    def observe(widths: dict[str, int], measured: dict[int, Speedup]) -> None:
        table.observe(widths, {b: s.ratio for b, s in measured.items()})

    return observe


def _search_scan(session: Session, split: EvalSplit, effort: Effort, names, report, cancel) -> ScanResult:
    """The channel scan after BN recalibration of the model as opened, on the search images only, at the
    ratios of the width grid; cached under the data's key and the split's (another scan than a plain one)."""
    ratios = sorted({round(1.0 - f, 4) for f in effort.fractions if f < 1.0})
    options = ScanOptions(recalibrate=True)
    runner = Channel().scan_runner(session.state, session.train, options, None, cancel)
    data_key = session.scans.data_key
    scans = Scans(session.scans.folder, f"{data_key}|{split.key}" if data_key else None)
    cache = scans.cache(session.model, "channel", ratios, options)
    return cached_scan(cache, session.model, split.search, ratios, names, report, cancel, None, runner)


@dataclass
class _Trials:
    """Whole measurements and recalibrated accuracies of profiles, on the session's model state (inside
    its scratch: the caller puts the model back)."""

    session: Session
    table: LatencyTable
    timer: Timer
    batches: tuple[int, ...]
    rounds: int
    cancel: threading.Event | None
    _dense: object = None

    def measure(self, widths: dict[str, int]) -> dict[int, Speedup]:
        check_cancel(self.cancel)
        state = self.session.state
        if self._dense is None:
            self._dense = self.timer.prepare(state.base)
        pruned = narrowed(state.base, state.example_input(), widths, self.table.channels)
        return measure_speedup(self._dense, self.timer.prepare(pruned), self.batches, self.rounds)

    def measure_said(self, say):
        """`measure`, each candidate's figures said as they come."""

        def measured(widths: dict[str, int]) -> dict[int, Speedup]:
            result = self.measure(widths)
            predicted = {b: self.table.predicted_speedup(widths, b) for b in self.batches}
            say(lines.candidate(widths, self.table, predicted, result), "dim")
            return result

        return measured

    def accuracy_on(self, batches):
        """widths -> accuracy of the opened weights pruned to them, BN recalibrated, on `batches`."""

        def accuracy(widths: dict[str, int]) -> float:
            session, state = self.session, self.session.state
            targets = removal_ratios(widths, self.table.channels)
            Channel().prune(state, Plan("channel", targets), "dense", session.train, self.cancel)
            recalibrate_bn(state.model, session.train, cancel=self.cancel)
            result = evaluate(state.model, batches, cancel=self.cancel)
            state.restore_opened()
            return result

        return accuracy

    def random_checks(self, count: int, candidates: list[Candidate]) -> list[tuple[dict, dict]]:
        """({batch: predicted speed-up}, measured) of the candidates (predicted before each was measured)
        and of `count` random profiles measured now (predicted by the model as corrected by then)."""
        checks = [(c.predicted, c.measured) for c in candidates]
        for widths in random_profiles(self.table, count, seed=len(candidates)):
            predicted = {b: self.table.predicted_speedup(widths, b) for b in self.batches}
            checks.append((predicted, self.measure(widths)))
        return checks


def planned_json(planned: Planned) -> dict:
    """The planner's JSON keys (PRODUCT.md's names where they exist): `speedup` {batch: measured ratio},
    `speedup_spread` {batch: [low, high]}, `accuracy_search`, `accuracy_heldout` and their standard
    errors, `latency_model_error` {batch: mean relative error}, the goal, and every candidate."""
    speedup, spread = speedups_json(planned.speedup)
    search_error, held_error = planned.standard_errors()
    request, best = planned.request, planned.best
    return {
        "goal": {
            "speedup": request.goal.value,
            "batches": list(request.batches),
            "max_drop": request.max_drop,
            "runtime": request.runtime,
            "round_to": planned.table.setting.round_to,
            "threads": planned.table.setting.threads,
        },
        "reached": planned.search.reached,
        "reason": lines.reason(planned),
        "speedup": speedup,
        "speedup_spread": spread,
        "predicted_speedup": {str(b): s for b, s in best.predicted.items()} if best else {},
        "accuracy_dense_search": planned.accuracy_dense_search,
        "accuracy_dense_heldout": planned.accuracy_dense_heldout,
        "accuracy_search": planned.accuracy_search,
        "accuracy_heldout": planned.accuracy_heldout,
        "standard_error_search": search_error,
        "standard_error_heldout": held_error,
        "search_images": planned.split.search_images,
        "heldout_images": planned.split.held_out_images,
        "max_drop_met": lines.max_drop_met(planned),
        "latency_model_error": {str(b): e for b, e in planned.model_error.items()},
        "latency_model_checks": planned.model_checks,
        "latency_model": {
            "cached": planned.table.cached,
            "seconds": planned.table.seconds,
            "setting": planned.table.setting.describe(),
            "dense_ms": {str(b): ms for b, ms in planned.table.dense_ms.items()},
        },
        "widths": dict(best.widths) if best else {},
        "targets": planned.targets,
        "candidates": [_candidate_json(c) for c in planned.search.candidates],
        "planner_seconds": planned.seconds,
    }


def _candidate_json(candidate: Candidate) -> dict:
    return {
        "widths": candidate.widths,
        "predicted_drop": candidate.predicted_drop,
        "predicted_speedup": {str(b): s for b, s in candidate.predicted.items()},
        "speedup": {str(b): s.ratio for b, s in candidate.measured.items()},
        "speedup_spread": {str(b): [s.low, s.high] for b, s in candidate.measured.items()},
        "accuracy_search": candidate.accuracy,
        "source": candidate.source,
    }
