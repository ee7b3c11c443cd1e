"""What a session does to recover accuracy and to suggest honestly: BatchNorm recalibration of the model
as it is, measuring a profile without keeping it, the uniform and global baselines at a size. Mixed into
core.session.Session."""

import math
import threading
from collections.abc import Mapping
from contextlib import contextmanager

import torch

from prunetui.core import pruning
from prunetui.core.evaluate import evaluate
from prunetui.core.events import Report, ignore
from prunetui.core.finetune import restore, snapshot
from prunetui.core.global_magnitude import global_magnitude_targets
from prunetui.core.methods import is_structured
from prunetui.core.recalibrate import batch_norms, recalibrate_bn
from prunetui.core.refine import Targets, uniform_targets
from prunetui.core.size import BITS, MIB
from prunetui.errors import UserError


class SessionRecovery:
    """Needs of the session: `model`, `dense_state`, `layer_names`, `masks`, `start_masks`, `regrow`,
    `accuracy`, `current_run`, `method`, `_require_data()`, `dense_scores()`, `kept_count()`,
    `projected_size()`, `_save()`."""

    def recalibrate(self, report: Report = ignore, cancel: threading.Event | None = None) -> float:
        """Recalibrate the BatchNorm statistics of the model as it is (weights and masks untouched) and
        measure it; the model keeps the new statistics and the current run records the accuracy."""
        data = self._require_data()
        if self.current_run is None:
            raise UserError("nothing is pruned: the dense model's statistics already fit its weights")
        if not batch_norms(self.model):
            raise UserError("the model has no BatchNorm with running statistics: nothing to recalibrate")
        recalibrate_bn(self.model, data.train, report=report, cancel=cancel)
        self.accuracy = evaluate(self.model, data.eval, report, cancel)
        self.current_run.accuracy_recalibrated = self.accuracy
        self._save(self.current_run)
        return self.accuracy

    @contextmanager
    def scratch(self):
        """Jobs that try profiles on the model (a suggestion measured and refined): whatever happens, the
        weights, statistics, masks and accuracy are put back as they were."""
        state = snapshot(self.model)
        kept = dict(self.masks), self.accuracy
        try:
            yield
        finally:
            restore(self.model, state)
            self.masks, self.accuracy = kept

    def measure_targets(
        self, targets: Mapping[str, float], recalibrate: bool = False, cancel: threading.Event | None = None
    ) -> float:
        """The accuracy of the dense weights pruned to `targets` by the session's method (and then
        recalibrated), as a prune would measure it; the model is left so (use inside `scratch`)."""
        data = self._require_data()
        restore(self.model, self.dense_state)
        masks = pruning.masks_from_scores(self.dense_scores(cancel), dict(targets))
        pruning.apply_masks(self.model, masks if self.regrow else pruning.hold(masks, self.start_masks))
        if recalibrate:
            recalibrate_bn(self.model, data.train, cancel=cancel)
        return evaluate(self.model, data.eval, cancel=cancel)

    def uniform_targets(self, budget_mib: float, locked: Mapping[str, float] | None = None) -> Targets:
        """One sparsity for every unlocked layer: the lowest whose projected size fits `budget_mib`."""
        return uniform_targets(self.layer_names, self.projected_size, budget_mib, locked)

    def global_targets(
        self, budget_mib: float, locked: Mapping[str, float] | None = None, cap: float | None = None
    ) -> Targets:
        """Global pruning at `budget_mib`: one threshold over the unlocked layers' scores by the session's
        method (for magnitude, |w|: torch.nn.utils.prune.global_unstructured's masks when `cap` does not
        bind). The weights kept: the budget in parameters (all nonzero parameters, 32 bit) less the
        nonzero parameters that are not pruned (biases, BatchNorm) and the locked layers' kept weights."""
        if is_structured(self.method):
            raise UserError(
                f"global pruning is fine-grained: not available for the {self.method.name} method"
            )
        locked = dict(locked or {})
        allowed = math.floor(budget_mib * MIB / BITS + 1e-6)
        fixed = sum(
            int(torch.count_nonzero(self.dense_state[name]))
            for name, _ in self.model.named_parameters()
            if name not in self.layer_names or (name in locked and locked[name] <= 0)
        )
        fixed += sum(self.kept_count(name, s) for name, s in locked.items() if s > 0)
        kept = allowed - fixed
        if kept < 0:
            raise UserError(
                f"{budget_mib:.3f} MiB is below what the unpruned parameters and locked layers weigh "
                f"({fixed * BITS / MIB:.3f} MiB)"
            )
        scores = self.dense_scores()
        free = {name: scores[name] for name in self.layer_names if name not in locked}
        targets = global_magnitude_targets(free, kept, cap)
        return {name: locked.get(name, targets.get(name, 0.0)) for name in self.layer_names}

    # --- a finetune's recovery options, for core.session.Session.finetune ----------------------------
    @staticmethod
    def _finetune_profile(settings, profile: dict[str, float]) -> dict[str, float]:
        """What a finetune run records as its profile: the targets an AGP schedule ends at, else `profile`
        (the pruned run's)."""
        return dict(settings.gradual_targets) if settings.schedule == "agp" else profile

    @staticmethod
    def _record_recovery(record, settings) -> None:
        record.schedule = settings.schedule
        record.distill = (
            {"temperature": settings.temperature, "alpha": settings.alpha} if settings.distill else None
        )

    def _keep_grown_masks(self, settings, result) -> None:
        """After an AGP run reached its targets, the masks held are those it grew (True = kept)."""
        if settings.schedule == "agp" and result.masks is not None and result.best_epoch is not None:
            self.masks = {name: mask.to(self.device) for name, mask in result.masks.items()}
