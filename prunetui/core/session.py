"""The one object both front ends drive: a model, its data, its dense weights, targets and masks."""

import threading
from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from torch import nn

from prunetui.core import pruning
from prunetui.core.evaluate import evaluate
from prunetui.core.events import Report, ignore
from prunetui.core.finetune import FinetuneResult, FinetuneSettings, finetune, restore, snapshot
from prunetui.core.layers import LayerInfo, describe_layers, prunable_parameters
from prunetui.core.profile import Profile, check_layers
from prunetui.core.sensitivity import DEFAULT_SPARSITIES, ScanResult, scan
from prunetui.core.size import (
    dense_size_mib,
    kept_count,
    percent_of_dense,
    projected_size_mib,
    sparse_size_mib,
)


@dataclass
class Splits:
    """What a session needs of a dataset: iterables of (images, labels) batches."""

    train: Iterable
    eval: Iterable


class Session:
    """Model + data + masks. Jobs (evaluate, prune, finetune, scan) take a report callback and a cancel
    event; run them one at a time."""

    def __init__(self, model: nn.Module, data: Splits | None = None, label: str = "model"):
        self.model = model.eval()
        self.data = data
        self.label = label
        self.device = next(model.parameters()).device
        self.dense_state = snapshot(model)
        self.layer_names = list(prunable_parameters(model))
        self.targets = {name: 0.0 for name in self.layer_names}
        self.masks: pruning.Masks = {}
        self.dense_size = dense_size_mib(model)
        self.dense_accuracy: float | None = None
        self.accuracy: float | None = None  # of the model as it is now, when known
        self._kept: dict[tuple[str, float], int] = {}

    # --- sizes -----------------------------------------------------------------------------------
    def current_size(self) -> float:
        return sparse_size_mib(self.model)

    def percent(self, size_mib: float) -> float:
        return percent_of_dense(size_mib, self.dense_size)

    def projected_size(self, targets: dict[str, float] | None = None) -> float:
        """Size that pruning the dense weights to `targets` (default: the current targets) gives."""
        dense_params = {name: self.dense_state[name] for name, _ in self.model.named_parameters()}
        return projected_size_mib(dense_params, targets or self.targets, kept=self._kept_count)

    def _kept_count(self, name: str, sparsity: float) -> int:
        key = (name, round(sparsity, 6))
        if key not in self._kept:
            self._kept[key] = kept_count(self.dense_state[name], sparsity)
        return self._kept[key]

    def layers(self) -> list[LayerInfo]:
        return describe_layers(self.model)

    # --- targets ---------------------------------------------------------------------------------
    def set_target(self, name: str, value: float) -> float:
        self.targets[name] = round(min(max(float(value), 0.0), 1.0), 4)
        return self.targets[name]

    def apply_profile(self, profile: Profile) -> None:
        """Targets become the profile's (unlisted layers 0). Unknown layer names raise UserError."""
        check_layers(profile, self.layer_names)
        self.targets = {name: profile.sparsity.get(name, 0.0) for name in self.layer_names}

    def profile(self, name: str, description: str | None = None) -> Profile:
        sparsity = {layer: s for layer, s in self.targets.items() if s > 0}
        return Profile(name=name, sparsity=sparsity, model=self.label, description=description)

    # --- jobs ------------------------------------------------------------------------------------
    def _require_data(self) -> Splits:
        if self.data is None:
            raise ValueError("no data: give a data spec to evaluate, scan or finetune")
        return self.data

    def evaluate(self, report: Report = ignore, cancel: threading.Event | None = None) -> float:
        self.accuracy = evaluate(self.model, self._require_data().eval, report, cancel)
        if not self.masks and self.dense_accuracy is None:
            self.dense_accuracy = self.accuracy
        return self.accuracy

    def prune(self) -> None:
        """Restore the dense weights, then prune them to the current targets and keep the masks."""
        restore(self.model, self.dense_state)
        self.masks = pruning.prune(self.model, self.targets)
        self.accuracy = None if self.masks else self.dense_accuracy

    def finetune(
        self,
        settings: FinetuneSettings = FinetuneSettings(),
        report: Report = ignore,
        cancel: threading.Event | None = None,
    ) -> FinetuneResult:
        data = self._require_data()
        result = finetune(self.model, data.train, data.eval, self.masks, settings, report, cancel)
        if result.best_accuracy is not None:
            self.accuracy = result.best_accuracy
        return result

    def scan(
        self,
        sparsities: Sequence[float] = DEFAULT_SPARSITIES,
        layers: Sequence[str] | None = None,
        report: Report = ignore,
        cancel: threading.Event | None = None,
    ) -> ScanResult:
        """Scan the model as it is now (dense, or pruned and finetuned)."""
        data = self._require_data()
        result = scan(self.model, data.eval, sparsities, layers, report, cancel, self.accuracy)
        if result.base_accuracy is not None:
            self.accuracy = result.base_accuracy
        return result

    def reset(self) -> None:
        """Back to the dense weights, no masks (targets are kept)."""
        restore(self.model, self.dense_state)
        self.masks = {}
        self.accuracy = self.dense_accuracy

    @contextmanager
    def transaction(self):
        """Run a job; if it raises, put the weights, masks and accuracy back as they were."""
        state = snapshot(self.model)
        masks, accuracy, dense_accuracy = dict(self.masks), self.accuracy, self.dense_accuracy
        try:
            yield
        except BaseException:
            restore(self.model, state)
            self.masks, self.accuracy, self.dense_accuracy = masks, accuracy, dense_accuracy
            raise

    def pruned_sparsity(self) -> dict[str, float]:
        """Actual fraction of zeros in each prunable tensor now."""
        return {info.name: info.zero_fraction for info in self.layers()}
