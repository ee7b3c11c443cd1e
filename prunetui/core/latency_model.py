"""A latency model of this device: for every prunable channel group, the whole model's measured latency
with that group alone narrowed to each width of a grid, at each batch size asked for, and a few random
profiles measured whole.

As NetAdapt (Yang et al. 2018) and HALP (Shen et al. 2022) build per-device tables, the model is measured,
not counted: FLOPs and parameters alone do not say what a width costs on a given kernel library. Adding
the groups' own savings does not predict a whole profile, though: the conv between two narrowed groups
shrinks in its inputs and its outputs (the product of their widths), and on a busy machine a group's own
saving is often within the timing noise. So a profile's latency, as a fraction of dense, is predicted as

    latency(profile) / latency(dense) = 1 - s x (1 - MACs(profile) / MACs(dense)) - sum of kept residuals

- MACs of any profile are counted exactly (core.mac_interaction: each layer's share and how its inputs
  and outputs follow each group, read from pruned copies);
- `s` (`mac_scale`, per batch) is the share of the latency that follows the MACs, fitted on the random
  profiles measured whole (core.latency_fit);
- a group's residual at a width is its measured saving alone less s x its MAC saving; it is kept only
  when slower than that by more than NOISE_SIGMAS times the sweeps' noise (a width off the fast kernels:
  the planner then avoids it).
The prediction is checked against other whole measurements (core.latency_fit.prediction_errors) and the
planner (core.planner) corrects what is left with its own, NetAdapt's loop.

- Widths are aligned (`aligned_widths`): multiples of `round_to` (Torch-Pruning's `round_to`, ModelOpt's
  `channel_divisor`; unaligned widths fall off the fast kernels' tiles: 8 by default on CUDA, 1 on the
  CPU) and of the group's equal parts (grouped convs: core.channel.groups `cells`).
- Timing (core.timers): each group is swept in ABBA order (dense, widths narrowing, the same widening,
  dense) so a drift in the machine's load falls on every width alike; fractions are over the group's own
  dense samples.
- Cached in `<state folder>/latency/<key>.json` (core.latency_cache).
"""

import math
import statistics
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from prunetui.core.channel import ChannelGroup, prune_channels
from prunetui.core.events import Progress, Report, check_cancel, ignore
from prunetui.core.latency_fit import calibrate, refit, slow_widths
from prunetui.core.mac_interaction import MacModel, mac_model
from prunetui.core.timers import Timer, measure_speedup, model_dtype

DEFAULT_FRACTIONS = (
    0.8,
    0.65,
    0.5,
    0.35,
    0.2,
)  # kept widths of the grid, as fractions of each group's channels
FLOOR = 0.02  # the least fraction of dense a prediction may say
NOISE_SIGMAS = 4.0  # a group's residual counts when beyond this many sigmas of the sweeps' noise
CALIBRATION = 4  # random profiles measured whole to fit the MAC share


def default_round_to(device: torch.device | str) -> int:
    """8 on CUDA (tensor-core tiles), 1 elsewhere (CPU kernels vectorise any width about as well)."""
    return 8 if torch.device(device).type == "cuda" else 1


def aligned_widths(channels: int, cells: int, round_to: int, fractions: Sequence[float]) -> list[int]:
    """The widths a group of `channels` may keep, widest first: `channels` itself, and for each fraction
    f the multiple of lcm(round_to, cells) at or above channels x f (rounding up keeps every width within
    the scanned ratios), above 0 and below `channels`. A group narrower than one step keeps only itself."""
    step = math.lcm(max(1, round_to), max(1, cells))
    widths = {channels}
    for fraction in fractions:
        width = step * math.ceil(channels * fraction / step - 1e-9)
        if 0 < width < channels:
            widths.add(width)
    return sorted(widths, reverse=True)


def removal_ratios(widths: Mapping[str, int], channels: Mapping[str, int]) -> dict[str, float]:
    """Channel targets (fraction removed) that keep exactly `widths` under core.channel's rules (the lab
    keeps round(c (1 - r)), DepGraph removes round(c r), per equal part), rounded as a session rounds
    targets (4 decimals: exact for groups under 10,000 channels). Full widths are left out."""
    return {
        name: round((channels[name] - width) / channels[name], 4)
        for name, width in widths.items()
        if width < channels[name]
    }


@dataclass(frozen=True)
class Setting:
    """What the timings depend on besides the model's structure: the cache key's fields."""

    device: str
    torch_version: str
    runtime: str
    batches: tuple[int, ...]
    dtype: str
    threads: int
    round_to: int
    fractions: tuple[float, ...] = DEFAULT_FRACTIONS

    def describe(self) -> str:
        batches = ",".join(str(b) for b in self.batches)
        return (
            f"{self.runtime} on {self.device}, batch {batches}, {self.dtype}, "
            f"{self.threads} thread{'s' * (self.threads != 1)}, "
            f"widths multiples of {self.round_to}"
        )


def setting_for(
    model: nn.Module, timer: Timer, batches: Sequence[int], round_to: int, fractions=DEFAULT_FRACTIONS
) -> Setting:
    device = str(next(model.parameters()).device)
    dtype = str(model_dtype(model)).removeprefix("torch.")
    return Setting(device, torch.__version__, timer.runtime, tuple(batches), dtype, timer.threads,
                   round_to, tuple(fractions))  # fmt: skip


@dataclass
class GroupLatency:
    """One group's sweep: its channels and, per batch, the latency fraction of dense at each width."""

    channels: int
    widths: list[int]  # widest first, `channels` included
    fractions: dict[int, dict[int, float]] = field(default_factory=dict)  # batch -> width -> fraction

    def fraction(self, width: int, batch: int) -> float:
        """Measured at grid widths, linear in the width between them; 1 at full width; the narrowest
        grid width's figure below it."""
        points = sorted((w, self.fractions[batch][w]) for w in self.widths if w != self.channels)
        points.append((self.channels, 1.0))
        if width <= points[0][0]:
            return points[0][1]
        for (w0, f0), (w1, f1) in zip(points, points[1:], strict=False):
            if w0 <= width <= w1:
                return f0 + (f1 - f0) * (width - w0) / (w1 - w0)
        return 1.0


@dataclass
class LatencyTable:
    """The latency model (module docstring): dense ms, each group's sweep, the MAC model and its fit,
    per batch."""

    setting: Setting
    dense_ms: dict[int, float]
    groups: dict[str, GroupLatency]
    macs: MacModel | None = None  # MACs of any profile (core.mac_interaction)
    mac_scale: dict[int, float] = field(default_factory=dict)  # batch -> s, the latency share following MACs
    noise: dict[int, float] = field(default_factory=dict)  # batch -> sigma of a sweep's residuals
    # profiles measured whole, [{widths, speedup: {batch: ratio}}]: the random calibration (cached), and
    # what a plan measured since (`observe`; this session's only)
    calibration: list[dict] = field(default_factory=list)
    observed: list[dict] = field(default_factory=list)
    key: str = ""
    seconds: float = 0.0  # spent measuring it
    cached: bool = False

    @property
    def channels(self) -> dict[str, int]:
        return {name: group.channels for name, group in self.groups.items()}

    def observe(self, widths: Mapping[str, int], speedup: Mapping[int, float]) -> None:
        """A profile measured whole ({batch: speed-up}) joins the fit of the MAC share: NetAdapt's
        correction of the model by what it got wrong, on the slope as well as the level."""
        self.observed.append({"widths": dict(widths), "speedup": dict(speedup)})
        refit(self)

    def predict(self, widths: Mapping[str, int], batch: int) -> float:
        """Latency of the profile `widths` (group -> kept channels; others full) as a fraction of dense:
        1 - s x (1 - MAC fraction), less each narrowed group's residual beyond the noise (module
        docstring); the plain sum of the groups' own fractions without a MAC model."""
        widths = {n: w for n, w in widths.items() if n in self.groups}
        if self.macs is None:
            return max(FLOOR, 1.0 + sum(self.groups[n].fraction(w, batch) - 1.0 for n, w in widths.items()))
        scale = self.mac_scale.get(batch, 0.0)
        total = 1.0 - scale * (1.0 - self.macs.fraction(widths, self.channels))
        return max(FLOOR, total - sum(self.kept_residual(n, w, batch) for n, w in widths.items()))

    def residual(self, name: str, width: int, batch: int) -> float:
        """The group's measured saving alone at `width` beyond what its MACs explain (s x MAC saving)."""
        group = self.groups[name]
        if width >= group.channels or self.macs is None:
            return 0.0
        mac_saving = 1.0 - self.macs.fraction({name: width}, self.channels)
        return (1.0 - group.fraction(width, batch)) - self.mac_scale.get(batch, 0.0) * mac_saving

    def kept_residual(self, name: str, width: int, batch: int) -> float:
        """`residual` when it is slower than the MAC line by more than NOISE_SIGMAS times the sweeps'
        noise (a width off the fast kernels), else 0: on a busy machine most single-group figures are
        noise around the line, and a group saving more time than its MACs explain is rare enough that a
        figure saying so is taken for noise (a load spike during its dense samples)."""
        found = self.residual(name, width, batch)
        return found if found < -NOISE_SIGMAS * self.noise.get(batch, 0.0) else 0.0

    def predicted_speedup(self, widths: Mapping[str, int], batch: int) -> float:
        return 1.0 / self.predict(widths, batch)

    def share(self, name: str, batch: int) -> float:
        """The part of the dense latency that scales with the group's width: the predicted saving at its
        narrowest grid width, extrapolated linearly to no channels (0 when it cannot be narrowed)."""
        group = self.groups[name]
        narrowest = group.widths[-1]
        if narrowest >= group.channels:
            return 0.0
        return max(0.0, self.saving(name, narrowest, batch) / (1.0 - narrowest / group.channels))

    def saving(self, name: str, width: int, batch: int) -> float:
        """Predicted fraction of the dense latency saved by the group alone at `width` (negative: slower)."""
        return 1.0 - self.predict({name: width}, batch)

    def as_json(self) -> dict:
        return {
            "setting": asdict(self.setting),
            "dense_ms": {str(b): ms for b, ms in self.dense_ms.items()},
            "groups": {
                name: {
                    "channels": g.channels,
                    "widths": g.widths,
                    "fractions": {
                        str(b): {str(w): f for w, f in by.items()} for b, by in g.fractions.items()
                    },
                }
                for name, g in self.groups.items()
            },
            "macs": self.macs.as_json() if self.macs is not None else None,
            "mac_scale": {str(b): v for b, v in self.mac_scale.items()},
            "noise": {str(b): v for b, v in self.noise.items()},
            "calibration": self.calibration,
            "seconds": self.seconds,
        }

    @classmethod
    def from_json(cls, stored: dict, key: str) -> "LatencyTable":
        raw = stored["setting"]
        setting = Setting(**{**raw, "batches": tuple(raw["batches"]), "fractions": tuple(raw["fractions"])})
        groups = {
            name: GroupLatency(
                g["channels"],
                [int(w) for w in g["widths"]],
                {int(b): {int(w): float(f) for w, f in by.items()} for b, by in g["fractions"].items()},
            )
            for name, g in stored["groups"].items()
        }
        dense = {int(b): float(ms) for b, ms in stored["dense_ms"].items()}
        macs = MacModel.from_json(stored["macs"]) if stored.get("macs") else None
        scale = {int(b): float(v) for b, v in stored.get("mac_scale", {}).items()}
        noise = {int(b): float(v) for b, v in stored.get("noise", {}).items()}
        calibration = [
            {"widths": found["widths"], "speedup": {int(b): r for b, r in found["speedup"].items()}}
            for found in stored.get("calibration", [])
        ]
        seconds = float(stored.get("seconds", 0.0))
        return cls(
            setting, dense, groups, macs, scale, noise, calibration, key=key, seconds=seconds, cached=True
        )


# --- measuring -------------------------------------------------------------------------------------------
def narrowed(base: nn.Module, example: torch.Tensor, widths: Mapping[str, int], channels: Mapping[str, int]):
    """A channel-pruned copy of `base` keeping `widths` (the base itself when nothing is narrowed)."""
    ratios = removal_ratios(widths, channels)
    return prune_channels(base, example, ratios).model.eval() if ratios else base


def measure_table(
    base: nn.Module,
    example: torch.Tensor,
    groups: Sequence[ChannelGroup],
    setting: Setting,
    timer: Timer,
    report: Report = ignore,
    cancel: threading.Event | None = None,
    sweeps: int = 1,
    calibration: int = CALIBRATION,
) -> LatencyTable:
    """Sweep every prunable group of `base` (the model as opened, eval mode) over its aligned widths at
    each of `setting.batches`, `sweeps` times (module docstring); fractions are the least time of each
    width over dense's least (a busy machine only ever adds time: one spike would otherwise mark a width
    slow). Then `calibration` random profiles measured whole fit the MAC share (core.latency_fit).
    Raises Cancelled between timings when `cancel` is set; UserError when a width cannot be pruned
    (core.channel's refusals)."""
    started = time.perf_counter()
    dense_run = timer.prepare(base)
    channels = {g.name: g.channels for g in groups}
    swept, dense_samples, narrowest = {}, {b: [] for b in setting.batches}, {}
    for index, group in enumerate(groups):
        report(Progress("time widths", index, len(groups)))
        widths = aligned_widths(group.channels, group.cells, setting.round_to, setting.fractions)
        entry = GroupLatency(group.channels, widths)
        narrower = widths[1:]
        copies = {w: narrowed(base, example, {group.name: w}, channels) for w in narrower}
        if narrower:
            narrowest[group.name] = (copies[narrower[-1]], narrower[-1])
        runs = {w: timer.prepare(copy) for w, copy in copies.items()}
        for batch in setting.batches:
            samples = _sweep(dense_run, runs, narrower, batch, sweeps, cancel)
            dense = min(samples.pop("dense"))
            dense_samples[batch].append(dense)
            entry.fractions[batch] = {w: min(samples[w]) / dense for w in narrower}
        swept[group.name] = entry
    report(Progress("time widths", len(groups), len(groups)))
    if not groups:  # still know the dense latency
        for batch in setting.batches:
            dense_samples[batch] = [dense_run(batch)]
    dense_ms = {b: statistics.median(samples) for b, samples in dense_samples.items()}
    table = LatencyTable(setting, dense_ms, swept, mac_model(base, example, narrowest, channels))

    def measure(widths: Mapping[str, int]) -> dict[int, float]:
        check_cancel(cancel)
        pruned = timer.prepare(narrowed(base, example, widths, channels))
        rounds = max(2, sweeps)  # a whole profile fits the slope: two ABBA rounds at least
        return {b: s.ratio for b, s in measure_speedup(dense_run, pruned, setting.batches, rounds).items()}

    calibrate(table, measure, calibration)
    _recheck_slow(table, base, example, dense_run, timer, cancel)
    table.seconds = time.perf_counter() - started
    return table


def _recheck_slow(table: LatencyTable, base, example, dense_run, timer: Timer, cancel) -> None:
    """Time each width the model calls slow once more (dense, width, width, dense) and keep the lesser
    fraction: a width is slow only if it stays slow (a load spike during its sweep does not)."""
    found = slow_widths(table)
    for name, width, batch in found:
        run = timer.prepare(narrowed(base, example, {name: width}, table.channels))
        samples = _sweep(dense_run, {width: run}, [width], batch, 1, cancel)
        again = min(samples[width]) / min(samples["dense"])
        fractions = table.groups[name].fractions[batch]
        fractions[width] = min(fractions[width], again)
    if found:
        refit(table)


def _sweep(dense_run, runs, widths: list[int], batch: int, sweeps: int, cancel) -> dict:
    """`sweeps` x (dense, each width narrowing, each widening, dense): 2 x sweeps samples of each."""
    order = ["dense", *widths, *reversed(widths), "dense"] * max(1, sweeps)
    samples: dict = {key: [] for key in ["dense", *widths]}
    for key in order:
        check_cancel(cancel)
        samples[key].append((dense_run if key == "dense" else runs[key])(batch))
    return samples
