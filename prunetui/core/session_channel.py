"""Channel pruning in a session, and the measured cost of every run. Mixed into core.session.Session.

A channel prune swaps a smaller model in (`Channel().apply` on the dense model): no masks are held,
finetuning trains the smaller model plainly, and `reset` swaps the dense model back. Fine-grained
pruning composes with it: pruning further from the current weights (`start="current"`) masks the
smaller model; pruning from dense puts the dense model back first. The dense model (`base_model`)
keeps the weights the session was opened with.
"""

import difflib
import threading
import time
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from prunetui.core.channel import ChannelGroup, ChannelResult, algorithm_for, kept_counts
from prunetui.core.cost import (
    Cost,
    Latency,
    cost_report,
    count_macs,
    count_params,
    measure_latency,
    measure_latency_pair,
)
from prunetui.core.evaldata import EvalBatches
from prunetui.core.evaluate import evaluate
from prunetui.core.events import Cancelled, Progress, Report, ScanPoint, ignore
from prunetui.core.finetune import restore
from prunetui.core.methods import Plan, is_structured
from prunetui.core.methods.channel import scan_groups
from prunetui.core.scan_cache import cached_scan
from prunetui.core.sensitivity import ScanResult
from prunetui.core.size import sparse_size_mib
from prunetui.errors import UserError

# latency timing per model state: short, so a prune stays quick (the benchmark times longer)
LATENCY_MIN_RUN_TIME = 0.2
# run record fields holding a run's measured cost (prune and runs JSON use the same keys)
COST_KEYS = ("macs_dense", "macs", "params_dense", "params", "latency_ms_dense", "latency_ms")


class SessionChannel:
    """Needs of the session: `model`, `device`, `data`, `dense_state`, `method`, `masks`, `targets`,
    `layer_names`, `current_run`, `accuracy`, `dense_accuracy`, `_new_run`, `_save`."""

    def _init_channel(self) -> None:
        self.base_model: nn.Module = self.model  # the dense model, whatever is swapped in
        self.channel_result: ChannelResult | None = None  # the smaller model's kept indices
        self.example: torch.Tensor | None = None  # 1 x C x H x W (from the data, else set by the opener)
        self._groups: list[ChannelGroup] | None = None
        self._dense_cost: Cost | None = None
        self._cost_lock = threading.Lock()
        self.latency_min_run_time = LATENCY_MIN_RUN_TIME
        self.latency_batch = 1  # a second latency at this batch when > 1 (stated in the record)

    @property
    def structured(self) -> bool:
        """The session's method removes whole channels."""
        return is_structured(self.method)

    @property
    def channel_pruned(self) -> bool:
        """The model is a smaller (channel-pruned) copy of the dense one."""
        return self.channel_result is not None

    # --- example input and groups ----------------------------------------------------------------
    def example_input(self) -> torch.Tensor:
        """One input (1 x C x H x W): the first evaluation image, else what the opener set."""
        if self.example is None and self.data is not None:
            from prunetui.sources.fit import probe_batch

            self.example = probe_batch(self.data)[0][:1].detach().cpu()
        if self.example is None:
            raise UserError("channel pruning and cost need an input shape: give a data spec (--data)")
        return self.example.to(self.device)

    def channel_groups(self) -> list[ChannelGroup]:
        """The dense model's channel groups (model order, unprunable ones with their reason), cached."""
        if self._groups is None:
            self._groups = self.method_channel().groups(self.base_model, self.example_input())
        return self._groups

    def method_channel(self):
        from prunetui.core.methods import Channel

        return self.method if self.structured else Channel()

    def group_names(self) -> list[str]:
        """The prunable groups: the names a channel profile sets."""
        return [group.name for group in self.channel_groups() if group.prunable]

    def channel_counts(self, targets: Mapping[str, float] | None = None) -> dict[str, tuple[int, int]]:
        """(kept, total) output channels per group at `targets` (default: the session's), nothing pruned."""
        targets = self.targets if targets is None else targets
        return kept_counts(self.channel_groups(), targets, algorithm_for(self.base_model))

    def check_channel_targets(self, targets: Mapping[str, float], context: str = "") -> None:
        """Every name with a target > 0 must be a prunable group; the error names the closest groups, or
        why the layer cannot be pruned."""
        groups = {group.name: group for group in self.channel_groups()}
        prunable = self.group_names()
        for name, ratio in targets.items():
            if ratio <= 0:
                continue
            group = groups.get(name)
            if group is not None and not group.prunable:
                raise UserError(f"{context}channel group {name} cannot be pruned: {group.reason}")
            owner = next((g for g in groups.values() if name in g.members), None)
            if group is None and owner is not None:
                raise UserError(
                    f"{context}{name} is pruned with the group {owner.name} (coupled channels): set that group"
                )
            if group is None:
                close = difflib.get_close_matches(name, prunable, n=3, cutoff=0.5) or prunable[:3]
                what = "is not a channel group (a conv whose outputs can be removed)"
                raise UserError(f"{context}{name} {what}; closest groups: {', '.join(close)}")

    # --- pruning ---------------------------------------------------------------------------------
    def _prune_channels(self, targets: dict[str, float], run_name: str, start: str) -> None:
        """Swap in the dense model pruned to `targets` by channels, recorded as a run."""
        if start == "current" and not self.is_dense:
            raise UserError(
                "channel pruning starts from the dense model (p); prune further (P) is for fine-grained methods"
            )
        self.check_channel_targets(targets)
        self._back_to_dense_model()
        restore(self.base_model, self.dense_state)
        plan = Plan(self.method.name, {n: s for n, s in targets.items() if s > 0})
        if plan.active():
            result = self.method.apply(self.base_model, plan, self.example_input())
            self.model, self.channel_result = result.model.to(self.device).eval(), result
        self.masks = {}
        self.accuracy = self.dense_accuracy if not plan.active() else None
        self.current_run = self._new_run("prune", run_name, targets)
        self.current_run.start, self.current_run.status = "dense", "finished"
        self._save(self.current_run)

    def _back_to_dense_model(self) -> None:
        """The dense model in place of a smaller one (its weights as they are: restore them after)."""
        self.model, self.channel_result = self.base_model, None

    def _structure(self) -> tuple:
        return self.model, self.channel_result

    def _set_structure(self, structure: tuple) -> None:
        self.model, self.channel_result = structure

    def _refuse_distributed(self) -> None:
        if self.channel_pruned:
            raise UserError(
                "a channel-pruned model runs in one process (each process would rebuild the dense model)"
            )

    # --- projected and measured cost -------------------------------------------------------------
    def projected_cost(self, targets: Mapping[str, float] | None = None) -> Cost:
        """MACs, params and size that channel pruning to `targets` gives (a pruned copy, measured)."""
        targets = dict(self.targets if targets is None else targets)
        self.check_channel_targets(targets)
        plan = Plan("channel", {n: s for n, s in targets.items() if s > 0})
        if not plan.active():
            cost = self.dense_cost()
            return Cost(cost.macs, cost.params, self.dense_size)
        return self.method_channel().projected_cost(self.base_model, plan, self.example_input())

    def dense_cost(self) -> Cost:
        """The dense model's MACs and params (measured once)."""
        with self._cost_lock:
            if self._dense_cost is None:
                # MACs and params of the dense architecture do not depend on the weights it holds
                model, x = self.base_model, self.example_input()
                self._dense_cost = Cost(count_macs(model, x), count_params(model), self.dense_size)
            return self._dense_cost

    def _latency(self, model: nn.Module, batch: int) -> Latency:
        return measure_latency(model, self.example_input(), batch, min_run_time=self.latency_min_run_time)

    def _latency_pair(self, batch: int) -> tuple[Latency, Latency]:
        """Dense and current side by side (ABBA), so the ratio is not the machine's load changing."""
        x, run_time = self.example_input(), self.latency_min_run_time
        return measure_latency_pair(self.base_model, self.model, x, batch, min_run_time=run_time)

    def measure_run_cost(self, latency: bool = True) -> dict:
        """The measured cost of the model as it is now against the dense one, stored in the current run.

        Keys as `core.cost.cost_report` (MACs at batch 1, latency in ms at batch 1), plus
        `latency_ms_dense_at_batch` and `latency_ms_at_batch` when `latency_batch` > 1."""
        dense = self.dense_cost()
        x = self.example_input()
        now = Cost(count_macs(self.model, x), count_params(self.model), sparse_size_mib(self.model))
        report = cost_report(dense, now)
        if latency:
            report = cost_report(dense, now, *self._latency_pair(1))
            if self.latency_batch > 1:
                at_dense, at_batch = self._latency_pair(self.latency_batch)
                report["latency_batch"] = self.latency_batch
                report["latency_ms_dense_at_batch"] = at_dense.ms
                report["latency_ms_at_batch"] = at_batch.ms
        run = self.current_run
        if run is not None:
            run.cost = dict(report)
            self._save(run)
        return report

    def run_cost(self) -> dict:
        """The current run's measured cost (every COST_KEYS key; None when not measured)."""
        run = self.current_run
        stored = run.cost if run is not None else {}
        return {key: stored.get(key) for key in COST_KEYS} | {
            k: v for k, v in stored.items() if k not in COST_KEYS
        }

    # --- group-aware scan ------------------------------------------------------------------------
    def _channel_scan_runner(self, eval_size: int | None):
        """A `run_scan` for scan_cache.cached_scan: each group alone at each ratio, on a copy."""
        example = self.example_input()

        def run(model, batches, sparsities, layers, report: Report = ignore, cancel=None, base=None):
            started = time.perf_counter()
            held = EvalBatches(None, batches, self.device, eval_size)
            result = ScanResult([float(s) for s in sparsities], base)
            if result.base_accuracy is None:
                result.base_accuracy = evaluate(model, held, cancel=cancel)
            names = list(layers)

            def scored(pruned: nn.Module) -> float:
                return evaluate(pruned, held, cancel=cancel)

            try:
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
            result.seconds, result.path = time.perf_counter() - started, "channel"
            return result

        return run

    def channel_scan(self, sparsities, layers, report, cancel, options, use_cache, launcher) -> ScanResult:
        """The group-aware scan of the model as it is now, cached apart (the method is in the key)."""
        if launcher is not None:
            raise UserError("a channel scan runs in one process")
        names = self.channel_scan_layers(layers)
        whole = options.eval_size is None
        cache = self._scan_cache(sparsities, options) if use_cache else None
        run = self._channel_scan_runner(options.eval_size)
        base = self.accuracy if whole else None
        data = self._require_data()
        result = cached_scan(cache, self.model, data.eval, sparsities, names, report, cancel, base, run)
        if result.base_accuracy is not None and whole:
            self.accuracy = result.base_accuracy
        return result

    def channel_scan_layers(self, layers: Sequence[str] | None) -> list[str]:
        """The groups a channel scan covers: `layers` (checked) or every prunable group."""
        if layers is None:
            return self.group_names()
        self.check_channel_targets({name: 1.0 for name in layers})
        return list(layers)
