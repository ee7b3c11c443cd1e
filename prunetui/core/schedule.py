"""Gradual pruning: the automated gradual pruner's cubic schedule (Zhu & Gupta 2017, "To prune, or not
to prune").

Each layer goes from its sparsity at the start, s_i, to its target, s_f, over n updates Δt steps apart
from step t0: s_t = s_f + (s_i - s_f) * (1 - (t - t0) / (n Δt))^3, so it prunes fast while the network
can recover and slowly near the end. Masks are recomputed only at update steps, and only grow.
"""

from dataclasses import dataclass

import torch

from prunetui.core.pruning import lab_mask


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


class GradualMasks:
    """Grows held masks during a finetune on an AGP schedule: at each update step, each layer's mask
    becomes the lab's rule on the current |w| at s_t, intersected with the mask it had (masks only grow:
    the pruned weights are zero, so they are the first the rule takes again)."""

    def __init__(
        self,
        held: dict[str, tuple[torch.nn.Parameter, torch.Tensor]],
        targets: dict[str, float],
        schedule: AGP,
        step: int = 0,
        initial: dict[str, float] | None = None,
    ):
        """`held`: name -> (parameter, its 0/1 mask as applied after every step); `step`: where the run
        starts and `initial`: each layer's sparsity when the run began (a resumed run passes both)."""
        self.held, self.targets, self.schedule, self.step = held, targets, schedule, step
        self.initial = initial or {name: 1.0 - float(mask.float().mean()) for name, (_, mask) in held.items()}

    @property
    def done(self) -> bool:
        """Every layer is at its target (the last update has run)."""
        return self.step > self.schedule.end

    @torch.no_grad()
    def after_step(self) -> None:
        if self.schedule.is_update(self.step):
            for name, (param, mask) in self.held.items():
                final = self.targets.get(name, self.initial[name])
                sparsity = self.schedule.sparsity(
                    self.initial[name], max(final, self.initial[name]), self.step
                )
                mask.copy_(lab_mask(param.detach().abs(), sparsity) & mask.bool())
                param.mul_(mask)
        self.step += 1
