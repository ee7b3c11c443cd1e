"""Fitting the latency model (core.latency_model) to whole measurements, and checking it against others.

- The MAC share `s` (per batch): the latency saved by a profile over the MACs it saves, least squares
  through dense (no saving at no MAC saving), in [0, 1]. Fitted on a few random profiles measured whole
  (`calibrate`), whose MAC savings are large; a group narrowed alone saves a few percent, often less than
  the timing noise of a busy machine, so single-group sweeps only start the fit (their median ratio). Measured on this 2-core CPU (benchmarks/README.md), the MAC line fitted so predicts whole
  profiles within 12-18% where adding the groups' own savings was off by 44-74%.
- The noise (per batch): 1.4826 x the median |residual| of the sweeps' grid points around the MAC line
  (the MAD's normal-consistent scale); a residual counts in a prediction only beyond a few of these.
- Checking: random profiles drawn on the grid's alignment (`random_profiles`, seeds apart from the
  calibration's), the error |predicted - measured| / measured latency (`prediction_errors`).
"""

import math
import random
import statistics
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prunetui.core.latency_model import LatencyTable

CALIBRATION_SEED = 1000  # random profiles that fit the model; checks draw from seeds below it
MAD_SCALE = 1.4826
REFITS = 3  # rounds of fitting the MAC share on whole profiles and the noise on the sweeps


def fit_scale(pairs: Sequence[tuple[float, float]]) -> float:
    """s minimising sum (saving - s x mac_saving)^2 over (saving, mac_saving) pairs, in [0, 1]; 0 when
    no pair saves MACs."""
    denominator = sum(m * m for _, m in pairs)
    if denominator <= 0:
        return 0.0
    return min(1.0, max(0.0, sum(t * m for t, m in pairs) / denominator))


def sweep_pairs(table: "LatencyTable", batch: int) -> list[tuple[float, float]]:
    """(measured saving, MAC saving) of every group alone at every grid width."""
    channels = table.channels
    return [
        (1.0 - group.fractions[batch][width], 1.0 - table.macs.fraction({name: width}, channels))
        for name, group in table.groups.items()
        for width in group.widths[1:]
    ]


def noise_level(table: "LatencyTable", batch: int) -> float:
    """The sweeps' scatter around the MAC line at `batch` (module docstring)."""
    residuals = [abs(table.residual(n, w, batch)) for n, g in table.groups.items() for w in g.widths[1:]]
    return MAD_SCALE * statistics.median(residuals) if residuals else 0.0


def median_scale(pairs: Sequence[tuple[float, float]]) -> float:
    """The median of saving / mac_saving over pairs that save MACs, in [0, 1]: a start that a few
    widths off the fast kernels cannot drag."""
    ratios = [t / m for t, m in pairs if m > 1e-6]
    return min(1.0, max(0.0, statistics.median(ratios))) if ratios else 0.0


def calibrate(
    table: "LatencyTable", measure: Callable[[Mapping[str, int]], dict[int, float]], count: int
) -> None:
    """Fit `table.mac_scale` and `table.noise` at each batch: started on the sweeps (`median_scale`),
    then refitted (`fit_scale`) on `count` random profiles measured whole by `measure(widths)` ->
    {batch: speed-up} (kept in `table.calibration`), less the residuals the model keeps for their widths
    (so a slow width in a calibration profile is not read as a slow model), a few times over."""
    if table.macs is None:
        return
    for widths in random_profiles(table, count, seed=CALIBRATION_SEED):
        table.calibration.append({"widths": dict(widths), "speedup": measure(widths)})
    refit(table)


def refit(table: "LatencyTable") -> None:
    """`table.mac_scale` and `table.noise` at each batch from its sweeps and calibration profiles."""
    for batch in table.setting.batches:
        table.mac_scale[batch] = median_scale(sweep_pairs(table, batch))
        table.noise[batch] = noise_level(table, batch)
        for _ in range(REFITS if table.calibration or table.observed else 0):
            table.mac_scale[batch] = fit_scale(_whole_pairs(table, batch))
            table.noise[batch] = noise_level(table, batch)


def slow_widths(table: "LatencyTable") -> list[tuple[str, int, int]]:
    """(group, width, batch) of every residual the model keeps: the widths it would steer away from."""
    return [
        (name, width, batch)
        for batch in table.setting.batches
        for name, group in table.groups.items()
        for width in group.widths[1:]
        if table.kept_residual(name, width, batch) != 0.0
    ]


def _whole_pairs(table: "LatencyTable", batch: int) -> list[tuple[float, float]]:
    """(measured saving less the kept residuals, MAC saving) of each profile measured whole."""
    pairs = []
    for found in [*table.calibration, *table.observed]:
        widths = found["widths"]
        kept = sum(table.kept_residual(n, w, batch) for n, w in widths.items())
        saving = 1.0 - 1.0 / found["speedup"][batch] - kept
        pairs.append((saving, 1.0 - table.macs.fraction(widths, table.channels)))
    return pairs


def random_profiles(table: "LatencyTable", count: int, seed: int = 0) -> list[dict[str, int]]:
    """`count` profiles, each group at a width drawn between its narrowest grid width and full, aligned
    as the grid is (so interpolation between grid widths is checked too)."""
    rng = random.Random(seed)
    profiles = []
    for _ in range(count):
        profile = {}
        for name, group in table.groups.items():
            low, step = group.widths[-1], _step(group.widths)
            profile[name] = min(group.channels, low + step * rng.randint(0, (group.channels - low) // step))
        profiles.append(profile)
    return profiles


def _step(widths: list[int]) -> int:
    """The alignment step of a group's widths (their greatest common divisor)."""
    return math.gcd(*widths) if len(widths) > 1 else max(1, widths[0])


def relative_error(predicted_fraction: float, measured_speedup: float) -> float:
    """|predicted - measured| / measured latency, both as fractions of dense."""
    measured = 1.0 / measured_speedup
    return abs(predicted_fraction - measured) / measured


def prediction_errors(checks: Sequence[tuple[Mapping[int, float], Mapping]]) -> dict[int, float]:
    """Mean relative error per batch over `checks`: ({batch: predicted speed-up}, {batch: Speedup})
    pairs, each prediction made before its profile was measured (so no fit had seen it)."""
    errors: dict[int, list[float]] = {}
    for predicted, measured in checks:
        for batch, speedup in measured.items():
            errors.setdefault(batch, []).append(relative_error(1.0 / predicted[batch], speedup.ratio))
    return {batch: statistics.mean(found) for batch, found in errors.items()}
