"""Gradual pruning: the automated gradual pruner's cubic schedule (Zhu & Gupta 2017, "To prune, or not
to prune").

Each layer goes from its sparsity at the start, s_i, to its target, s_f, over n updates Δt steps apart
from step t0: s_t = s_f + (s_i - s_f) * (1 - (t - t0) / (n Δt))^3, so it prunes fast while the network
can recover and slowly near the end. Masks are recomputed only at update steps, and only grow.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class AGP:
    """Steps are optimizer steps of the finetune (0-based)."""

    start: int  # t0: the first update
    end: int  # t0 + n Δt: the last update, where every layer reaches its target
    every: int = 1  # Δt

    def __post_init__(self):
        if self.start < 0 or self.end < self.start or self.every < 1:
            raise ValueError(f"bad AGP schedule: start {self.start}, end {self.end}, every {self.every}")

    def is_update(self, step: int) -> bool:
        """Whether the masks are recomputed after `step`: every Δt from t0, and always at the end."""
        return step == self.end or (self.start <= step < self.end and (step - self.start) % self.every == 0)

    def sparsity(self, initial: float, final: float, step: int) -> float:
        """s_t at `step` (held at s_i before t0 and at s_f from the end on)."""
        if step >= self.end:
            return final
        if step <= self.start:
            return initial
        progress = (step - self.start) / (self.end - self.start)
        return final + (initial - final) * (1.0 - progress) ** 3


def agp_over(steps: int, fraction: float = 0.75, every: int | None = None) -> AGP:
    """A schedule over the first `fraction` of a finetune of `steps` optimizer steps (the rest trains
    at the final sparsity), with about 100 updates unless `every` says otherwise."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"the schedule's share of the finetune must be in (0, 1], got {fraction}")
    end = max(0, round(steps * fraction) - 1)
    return AGP(start=0, end=end, every=every or max(1, end // 100))
