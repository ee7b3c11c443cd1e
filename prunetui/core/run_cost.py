"""The measured cost of a run: MACs, params and latency of the model in hand against the model as opened
(core.cost's counters and timers), whatever method pruned it."""

from collections.abc import Callable
from dataclasses import dataclass

from prunetui.core.cost import (
    Cost,
    Latency,
    cost_report,
    count_macs,
    count_params,
    measure_latency_pair,
)
from prunetui.core.model_state import ModelState
from prunetui.core.size import sparse_size_mib
from prunetui.core.speedup import speedup_json

# latency timing per model state: short, so a prune stays quick (the benchmark times longer)
LATENCY_MIN_RUN_TIME = 0.2
# run record fields holding a run's measured cost (prune and runs JSON use the same keys)
COST_KEYS = ("macs_dense", "macs", "params_dense", "params", "latency_ms_dense", "latency_ms")


def opened_cost(state: ModelState) -> Cost:
    """MACs and params of the model as opened (measured once: they do not depend on the weights), and
    its size as the lab counts a dense model."""

    def measure() -> Cost:
        example = state.example_input()
        return Cost(count_macs(state.base, example), count_params(state.base), state.dense_size)

    return state.memo(("opened cost",), measure, of_opened=True)


@dataclass
class CostMeter:
    """Measures the model in hand against the model as opened. `latency_batch` > 1: a second latency at
    that batch (stated in the record)."""

    state: ModelState
    latency_batch: int = 1
    min_run_time: float | None = None  # None: LATENCY_MIN_RUN_TIME as it is when measuring
    timer: Callable[..., Latency] | None = None  # None: core.cost.measure_latency (tests inject one)

    def measure(self, latency: bool = True) -> dict:
        """Keys as core.cost.cost_report (MACs at batch 1, latency in ms at batch 1) and
        core.speedup.speedup_json (the halves' spreads, the ratio, its interval, within noise), plus
        `latency_batch`, `latency_ms_dense_at_batch`, `latency_ms_at_batch` and the same speed-up keys
        ending `_at_batch` when `latency_batch` > 1. Raises what the model raises when it cannot be
        traced or run on one example."""
        state, example = self.state, self.state.example_input()
        model = state.model
        now = Cost(count_macs(model, example), count_params(model), sparse_size_mib(model))
        if not latency:
            return cost_report(opened_cost(state), now)
        dense = opened_cost(state)
        same = (now.macs, now.params) == (dense.macs, dense.params)
        pair = self._pair(1)
        report = cost_report(dense, now, *pair) | speedup_json(*pair, same)
        if self.latency_batch > 1:
            at_dense, at_batch = self._pair(self.latency_batch)
            report["latency_batch"] = self.latency_batch
            report["latency_ms_dense_at_batch"] = at_dense.ms
            report["latency_ms_at_batch"] = at_batch.ms
            report |= speedup_json(at_dense, at_batch, same, "_at_batch")
        return report

    def _pair(self, batch: int):
        """As opened and in hand, side by side (ABBA), so the ratio is not the machine's load changing."""
        run_time = self.min_run_time if self.min_run_time is not None else LATENCY_MIN_RUN_TIME
        state = self.state
        return measure_latency_pair(
            state.base, state.model, state.example_input(), batch, min_run_time=run_time, measure=self.timer
        )


def cost_of(record) -> dict:
    """A run record's measured cost: every COST_KEYS key (None when not measured), and the rest it holds."""
    stored = record.cost if record is not None else {}
    return {key: stored.get(key) for key in COST_KEYS} | {
        k: v for k, v in stored.items() if k not in COST_KEYS
    }
