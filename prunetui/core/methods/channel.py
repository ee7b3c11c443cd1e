"""The `channel` method: structured pruning, one ratio per channel group.

Where a fine-grained method masks weights, this one removes whole output channels: `prune` swaps a
smaller copy of the model as opened in (core.channel: the lab's algorithm on its VGG, Torch-Pruning's
dependency groups on any other model), recorded as a channel stage (core.lineage), so checkpoints and
processes rebuild it from plain data. A unit is a group, named after the weight of the conv whose
outputs it removes; a target is the fraction of the group's output channels removed.
"""

import copy
import difflib
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from threading import Event

import torch
from torch import nn

from prunetui.core.channel import (
    ChannelGroup,
    algorithm_for,
    channel_groups,
    kept_counts,
    prune_channels,
)
from prunetui.core.cost import measure_cost
from prunetui.core.evaldata import EvalBatches
from prunetui.core.evaluate import count_correct
from prunetui.core.events import Cancelled, Progress, Report, ScanPoint, ignore
from prunetui.core.lineage import ChannelStage
from prunetui.core.methods.base import Method, Projection, Unit
from prunetui.core.recalibrate import recalibrate_bn
from prunetui.core.recipe import Plan
from prunetui.core.run_cost import opened_cost
from prunetui.core.scan_cache import ScanJob
from prunetui.core.sensitivity import ScanOptions, ScanResult
from prunetui.errors import UserError


def coupled(group: str) -> str:
    """Why a member of a group is not set on its own."""
    return f"pruned with the group {group} (coupled channels): set that group"


class Channel(Method):
    name = "channel"
    noun = "groups"

    def groups(self, state, report: Report = ignore, cancel: Event | None = None) -> list[ChannelGroup]:
        """The channel groups of the model as opened, listed once (seconds to minutes for attention
        models: progress to `report`, `cancel` checked between groups, core.channel.channel_groups)."""
        return state.memo(
            ("groups",),
            lambda: channel_groups(state.base, state.example_input(), report, cancel),
            of_opened=True,
        )

    def units(self, state, report: Report = ignore, cancel: Event | None = None) -> list[Unit]:
        """The groups of the model as opened (channel pruning starts from it), unprunable ones too."""
        groups = self.groups(state, report, cancel)
        return [Unit(g.name, g.channels, g.members, g.prunable, g.reason) for g in groups]

    def unknown_unit(self, name: str, units: list[Unit]) -> str:
        owner = next((unit for unit in units if name in unit.members), None)
        if owner is not None:
            return f"{name} is {coupled(owner.name)}"
        prunable = [unit.name for unit in units if unit.prunable]
        close = difflib.get_close_matches(name, prunable, n=3, cutoff=0.5) or prunable[:3]
        what = "is not a channel group (a conv whose outputs can be removed)"
        return f"{name} {what}; closest groups: {', '.join(close)}"

    def counts(self, state, targets: Mapping[str, float]) -> dict[str, tuple[int, int]]:
        """(kept, total) output channels per group at `targets`, nothing pruned."""
        return kept_counts(self.groups(state), targets, algorithm_for(state.base))

    # --- the lifecycle -------------------------------------------------------------------------------
    def prune(self, state, plan: Plan, start: str, train, cancel: Event | None = None) -> None:
        """From the model as opened (core.recipe refuses start "current" for this method)."""
        active = plan.active()
        self.check(state, active)
        state.restore_opened()
        if not active:
            state.hold(state.held_at_start({}))
            return
        example = state.example_input()
        result = prune_channels(state.base, example, active, cancel)
        state.swap_in(result.model, ChannelStage.of(result, example))

    def projection(self, state, targets: Mapping[str, float], start: str = "dense", train=None) -> Projection:
        """MACs, params and size of the model as opened pruned to `targets`, whatever masks the model in
        hand holds (measured on a pruned copy of the opened weights:
        ~0.1 s on the lab VGG, ~0.5 s on resnet18 at 32x32 on one CPU core), and the kept channels."""
        active = {name: s for name, s in targets.items() if s > 0}
        self.check(state, active)
        units = self.units(state)
        reasons = {unit.name: unit.reason for unit in units if not unit.prunable}
        groups = {unit.name for unit in units if unit.prunable}
        reasons |= {m: coupled(u.name) for u in units if u.prunable for m in u.members if m not in groups}
        if not active:
            cost = opened_cost(state)
        else:
            example = state.example_input()
            cost = measure_cost(prune_channels(state.opened_copy(), example, active).model, example)
        return Projection(cost.size_mib, cost, self.counts(state, targets), reasons)

    def kept_count(self, state, name: str, target: float, train=None) -> int:
        """The group's weight shrinks with its kept output channels."""
        kept, total = self.counts(state, {name: target}).get(name, (1, 1))
        return state.opened[name].numel() * kept // total

    def scan_runner(self, state, train: Iterable | None, options: ScanOptions, launcher=None, cancel=None):
        """A runner for core.scan_cache.cached_scan: each group alone at each ratio, on a copy (after
        BN recalibration on `train` with `options.recalibrate`)."""
        if launcher is not None:
            raise UserError("a channel scan runs in one process (drop --nproc)")
        calibration = train if options.recalibrate else None
        example, eval_size = state.example_input(), options.eval_size
        return partial(_scan, example=example, eval_size=eval_size, calibration=calibration)


def _scan(
    job: ScanJob, *, example: torch.Tensor, eval_size: int | None, calibration: Iterable | None
) -> ScanResult:
    started = time.perf_counter()
    model, batches, sparsities, report, cancel = (
        job.model,
        job.batches,
        job.sparsities,
        job.report,
        job.cancel,
    )
    base, layers = job.base_accuracy, job.layers
    held = EvalBatches(None, batches, example.device, eval_size)
    result = ScanResult([float(s) for s in sparsities], base)

    def scored(pruned: nn.Module) -> float:
        nonlocal images
        if calibration is not None:  # on a copy: the model's own statistics never move
            pruned = copy.deepcopy(pruned) if pruned is model else pruned
            recalibrate_bn(pruned, calibration, cancel=cancel)
        correct, images = count_correct(pruned, held, cancel=cancel)
        return correct / images * 100.0

    names, images = list(layers), None
    try:
        if result.base_accuracy is None:
            result.base_accuracy = scored(model)
        for i, name in enumerate(names):
            report(Progress("scan", i, len(names)))
            row = scan_groups(model, example, [name], result.sparsities, scored, cancel).get(name)
            if row is None:
                break
            for ratio, accuracy in zip(result.sparsities, row, strict=True):
                report(ScanPoint(name, ratio, accuracy))
            result.layers[name] = row
        report(Progress("scan", len(result.layers), len(names)))
    except Cancelled:
        pass
    result.cancelled = cancel is not None and cancel.is_set()
    result.seconds, result.images = time.perf_counter() - started, images
    result.path = "channel" if calibration is None else "channel, recalibrated"
    return result


def scan_groups(
    model: nn.Module,
    example_input,
    names: Sequence[str],
    ratios: Sequence[float],
    evaluate: Callable[[nn.Module], float],
    cancel: Event | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, list[float]]:
    """Group-aware sensitivity: each group alone at each ratio, on a copy, then `evaluate(copy)`.

    A residual-coupled group is one unit, so its risk is not hidden (scanning one of its convs alone
    would remove nothing from the add and report no drop). Ratio 0 is evaluated on `model` itself; the
    others on copies. Returns {group: [accuracy per ratio]}; stops
    early when `cancel` is set (the groups done so far are returned). `progress(done, total)` after
    every evaluation.
    """
    results: dict[str, list[float]] = {}
    total, done = len(names) * len(ratios), 0
    for name in names:
        row = []
        for ratio in ratios:
            if cancel is not None and cancel.is_set():
                return results
            pruned = prune_channels(model, example_input, {name: ratio}).model if ratio > 0 else model
            row.append(evaluate(pruned))
            done += 1
            if progress:
                progress(done, total)
        results[name] = row
    return results
