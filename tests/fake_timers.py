"""Timers the latency model and the planner take (core.timers.Timer) that compute a model's time from its
structure: no timing noise, so tests assert exact choices. Injected, never mocking torch."""

import torch
from torch import nn

from prunetui.core.mac_interaction import dense_macs


class StructureTimer:
    """ms = 0.1 overhead + batch x the model's MACs / 10,000 (core.mac_interaction's count); a conv with
    `slow` output channels costs `penalty` times more (an unaligned width off the fast kernels). Counts
    the runs it times."""

    runtime, threads = "torch", 1

    def __init__(self, example: torch.Tensor, slow: int | None = None, penalty: float = 1.0):
        self.example, self.slow, self.penalty, self.calls = example, slow, penalty, 0

    def prepare(self, model: nn.Module):
        modules = dict(model.named_modules())
        cost = 0.0
        for name, macs in dense_macs(model, self.example).items():
            slow = isinstance(modules[name], nn.Conv2d) and modules[name].out_channels == self.slow
            cost += macs / 10_000 * (self.penalty if slow else 1.0)

        def run(batch: int) -> float:
            self.calls += 1
            return 0.1 + batch * cost

        return run


class NarrowedSlower(StructureTimer):
    """Any model with a conv narrower than in `dense` takes 1.25x dense's time, whatever is narrowed (a
    device where fewer channels fall off the fast kernels): no width helps."""

    def __init__(self, example: torch.Tensor, dense: nn.Module):
        super().__init__(example)
        self.dense_widths = _conv_widths(dense)
        self.dense_run = StructureTimer(example).prepare(dense)

    def prepare(self, model: nn.Module):
        if _conv_widths(model) == self.dense_widths:
            return super().prepare(model)
        return lambda batch: 1.25 * self.dense_run(batch)


def _conv_widths(model: nn.Module) -> list[int]:
    return [m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d)]
