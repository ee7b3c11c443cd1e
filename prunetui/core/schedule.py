"""Gradual pruning: the automated gradual pruner's cubic schedule (Zhu & Gupta 2017, "To prune, or not
to prune").

Each layer goes from its sparsity at the start, s_i, to its target, s_f, over n updates Δt steps apart
from step t0: s_t = s_f + (s_i - s_f) * (1 - (t - t0) / (n Δt))^3, so it prunes fast while the network
can recover and slowly near the end. Masks are recomputed only at update steps, and only grow.
"""

from dataclasses import dataclass

import torch

from prunetui.core.pruning import lab_mask
from prunetui.errors import UserError


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


class GradualScores:
    """What an AGP schedule ranks a layer's weights by at an update: |w| (magnitude), or first-order
    Taylor importance |w * dL/dw| summed over the optimizer steps since the last update (Molchanov et al.
    2019 sum it over minibatches; here they are the finetune's own steps, so the scores follow the
    weights as they train and cost one multiply per weight per step)."""

    def __init__(self, accumulate: bool):
        self.accumulate = accumulate
        self.totals: dict[str, torch.Tensor] = {}

    @classmethod
    def magnitude(cls) -> "GradualScores":
        return cls(accumulate=False)

    @classmethod
    def taylor(cls) -> "GradualScores":
        return cls(accumulate=True)

    @torch.no_grad()
    def observe(self, held: dict[str, tuple[torch.nn.Parameter, torch.Tensor]]) -> None:
        """After an optimizer step: add this step's |w * grad| (Taylor) to each layer's total."""
        if not self.accumulate:
            return
        for name, (param, _) in held.items():
            if param.grad is not None:
                term = (param.detach() * param.grad).abs().float()
                self.totals[name] = self.totals[name] + term if name in self.totals else term

    def take(self, name: str, param: torch.nn.Parameter) -> torch.Tensor:
        """The scores of `name` now (Taylor: the total so far, then started again). Raises UserError for
        a layer no gradient reached (its weights cannot be ranked: they would all be pruned)."""
        if not self.accumulate:
            return param.detach().abs()
        total = self.totals.pop(name, None)
        if total is None or not bool(total.any()):
            raise UserError(
                f"taylor: no gradient reached {name} while finetuning, so its weights cannot be ranked "
                "(a frozen or detached layer?): use the magnitude method"
            )
        return total


class GradualMasks:
    """Grows held masks during a finetune on an AGP schedule: at each update step, each layer's mask
    becomes the lab's rule on the method's scores (`GradualScores`) at s_t, intersected with the mask it
    had (masks only grow: the pruned weights are zero, so they score 0 and are the first the rule takes
    again)."""

    def __init__(
        self,
        held: dict[str, tuple[torch.nn.Parameter, torch.Tensor]],
        targets: dict[str, float],
        schedule: AGP,
        step: int = 0,
        initial: dict[str, float] | None = None,
        scores: GradualScores | None = None,
    ):
        """`held`: name -> (parameter, its 0/1 mask as applied after every step); `step`: where the run
        starts and `initial`: each layer's sparsity when the run began (a resumed run passes both);
        `scores`: the method's (default: |w|)."""
        self.held, self.targets, self.schedule, self.step = held, targets, schedule, step
        self.initial = initial or {name: 1.0 - float(mask.float().mean()) for name, (_, mask) in held.items()}
        self.scores = scores or GradualScores.magnitude()

    @property
    def done(self) -> bool:
        """Every layer is at its target (the last update has run)."""
        return self.step > self.schedule.end

    @torch.no_grad()
    def after_step(self) -> None:
        self.scores.observe(self.held)
        if self.schedule.is_update(self.step):
            for name, (param, mask) in self.held.items():
                if not bool(mask.any()):  # nothing left to rank
                    continue
                final = self.targets.get(name, self.initial[name])
                sparsity = self.schedule.sparsity(
                    self.initial[name], max(final, self.initial[name]), self.step
                )
                scores = self.scores.take(name, param).to(param.device)
                mask.copy_(lab_mask(scores, sparsity) & mask.bool())
                param.mul_(mask)
        self.step += 1
