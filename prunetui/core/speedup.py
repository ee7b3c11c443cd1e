"""A measured latency ratio, and whether it is a speed-up or the machine's noise.

The per-prune latency is timed ABBA (core.cost.measure_latency_pair: dense, pruned, pruned, dense), so
each model has two halves timed at different moments; how far a model's two halves are apart is the
noise of this machine right now (`spread`, ms). The ratio dense / pruned then lies between
min(dense halves) / max(pruned halves) and max(dense halves) / min(pruned halves); when that interval
holds 1 the ratio is noise and is printed as such (ENGINEERING.md: a ratio is called a gain only outside
its spread). A model with the dense model's MACs and parameters runs the same dense kernels (fine-grained
zeros are multiplied like any weight), so no ratio is printed for it at all.

Torch-free: the front ends read it from a run's cost dict (core.run_cost keys).
"""

from dataclasses import dataclass

SAME_KERNELS = "no speed-up: the dense kernels run, zeros do not make them faster"


@dataclass(frozen=True)
class Speedup:
    """dense ms / pruned ms (`ratio`), its interval [`low`, `high`] from the halves' spread, and
    `same_kernels`: the pruned model has the dense model's MACs and parameters."""

    ratio: float
    low: float
    high: float
    same_kernels: bool = False

    @property
    def within_noise(self) -> bool:
        return self.same_kernels or self.low <= 1.0 <= self.high

    @property
    def measured_spread(self) -> bool:
        return self.high > self.low

    def short(self) -> str:
        """`1.52x`, or `~1.0x` within noise and for the dense kernels: for a table cell (6 columns)."""
        if self.same_kernels:
            return "~1.0x"
        return "~1.0x" if self.within_noise and self.measured_spread else f"{self.ratio:.2f}x"

    def text(self) -> str:
        """`1.52x speed-up (1.41-1.63x)`, `~1.0x (within noise: 0.93-1.08x)` or SAME_KERNELS."""
        if self.same_kernels:
            return SAME_KERNELS
        if not self.measured_spread:  # a record from before spreads were kept
            return f"{self.ratio:.2f}x"
        interval = f"{self.low:.2f}-{self.high:.2f}x"
        if self.within_noise:
            return f"~1.0x (within noise: {interval})"
        what = "speed-up" if self.ratio > 1 else "slow-down"
        return f"{self.ratio:.2f}x {what} ({interval})"


def speedup(
    dense_ms: float, pruned_ms: float, dense_spread: float = 0.0, pruned_spread: float = 0.0,
    same_kernels: bool = False,
) -> Speedup:  # fmt: skip
    """The ratio of two latencies (ms, each the mean of its two halves) whose halves are `spread` ms
    apart. Raises ZeroDivisionError for a pruned latency of 0 (never measured)."""
    low = (dense_ms - dense_spread / 2) / (pruned_ms + pruned_spread / 2)
    fast = pruned_ms - pruned_spread / 2
    high = (dense_ms + dense_spread / 2) / fast if fast > 0 else float("inf")
    return Speedup(dense_ms / pruned_ms, low, high, same_kernels)


def speedup_of(cost: dict, at_batch: bool = False) -> Speedup | None:
    """The speed-up a run's cost dict records (core.run_cost keys; at batch 1, or at `latency_batch`),
    None when latency was not measured."""
    tail = "_at_batch" if at_batch else ""
    dense, now = cost.get(f"latency_ms_dense{tail}"), cost.get(f"latency_ms{tail}")
    if not dense or not now:
        return None
    same = cost.get("macs") == cost.get("macs_dense") and cost.get("params") == cost.get("params_dense")
    return speedup(
        dense, now, cost.get(f"latency_spread_ms_dense{tail}") or 0.0, cost.get(f"latency_spread_ms{tail}") or 0.0,
        same_kernels=same and cost.get("macs") is not None,
    )  # fmt: skip


def measured_speedup(cost: dict) -> Speedup | None:
    """The speed-up of a run at its latency batch when it was timed there (a speed-up plan's largest
    batch), else at batch 1; None when latency was not measured."""
    return speedup_of(cost, at_batch=cost.get("latency_ms_at_batch") is not None) or speedup_of(cost)


def speedup_json(dense, pruned, same_kernels: bool, tail: str = "") -> dict:
    """The JSON keys of a timed pair (core.cost.Latency with `spread_ms`): both spreads, the ratio, its
    interval and whether it is within noise."""
    ratio = speedup(dense.ms, pruned.ms, dense.spread_ms, pruned.spread_ms, same_kernels)
    return {
        f"latency_spread_ms_dense{tail}": dense.spread_ms,
        f"latency_spread_ms{tail}": pruned.spread_ms,
        f"latency_speedup{tail}": ratio.ratio,
        f"latency_speedup_range{tail}": [ratio.low, ratio.high],
        f"latency_within_noise{tail}": ratio.within_noise,
    }
