"""Fine-grained pruning: a criterion scores every weight, the lab's rule masks each tensor, shapes never
change. Pruning from the dense weights uses the scores of the weights as opened (computed once per
criterion); pruning further (start "current", Han et al. 2015's iterative pruning) scores the weights as
they are and keeps every mask already held, so a layer's sparsity only grows."""

import math
from collections.abc import Iterable, Mapping
from functools import partial
from threading import Event, RLock
from typing import TYPE_CHECKING

import torch

from prunetui.core import pruning
from prunetui.core.global_magnitude import global_magnitude_targets
from prunetui.core.methods.base import Criterion, Method, Projection, Scoring, Unit
from prunetui.core.recipe import Plan
from prunetui.core.schedule import GradualScores
from prunetui.core.sensitivity import ScanOptions, scan_runner
from prunetui.core.size import BITS, MIB, projected_size_mib
from prunetui.errors import UserError

if TYPE_CHECKING:
    from prunetui.core.model_state import ModelState

_SCORING = RLock()  # preview threads and jobs may ask for the same scores at once


class FineGrained(Method):
    """A Criterion applied by the lab's rule. Subclasses name the criterion (`criterion`)."""

    criterion: Criterion

    def units(self, state: "ModelState", report=None, cancel=None) -> list[Unit]:
        params = dict(state.model.named_parameters())
        return [Unit(name, params[name].numel(), (name,)) for name in state.layer_names]

    # --- scores --------------------------------------------------------------------------------------
    def opened_scores(
        self, state: "ModelState", train: Iterable | None, cancel: Event | None = None
    ) -> dict[str, torch.Tensor]:
        """The importance of every weight as opened, computed once per criterion."""
        compute = partial(
            self.criterion.scores, Scoring(state.base, state.opened, state.layer_names, train, cancel)
        )
        with _SCORING:
            return state.memo(("scores", self.name), compute, of_opened=True)

    def current_scores(self, state: "ModelState", train, cancel=None) -> dict[str, torch.Tensor]:
        model = state.model
        return self.criterion.scores(Scoring(model, model.state_dict(), state.layer_names, train, cancel))

    # --- the lifecycle -------------------------------------------------------------------------------
    def prune(self, state, plan: Plan, start: str, train, cancel=None) -> None:
        targets = dict(plan.targets)
        if start == "current":
            masks = self.further_masks(state, targets, self.current_scores(state, train, cancel))
        else:
            scores = self.opened_scores(state, train, cancel)
            state.restore_opened()
            masks = state.held_at_start(pruning.masks_from_scores(scores, targets))
        state.hold(masks)

    def further_masks(self, state, targets, scores) -> pruning.Masks:
        """Masks of `targets` on `scores` of the weights in hand, every mask held now kept."""
        return pruning.hold(pruning.masks_from_scores(scores, targets), state.masks)

    def projection(self, state, targets: Mapping[str, float], start: str = "dense", train=None) -> Projection:
        if start == "current":
            return Projection(self._size_further(state, targets, train))
        if not state.start_masks and not any(s > 0 for s in targets.values()) and not state.all_stages:
            return Projection(state.dense_size)
        params = {name: state.opened[name] for name, _ in state.base.named_parameters()}
        kept = partial(self.kept_count, state, train=train)
        return Projection(projected_size_mib(params, targets, kept=kept))

    def _size_further(self, state, targets, train) -> float:
        masks = self.further_masks(state, targets, self.current_scores(state, train))
        params = dict(state.model.named_parameters())
        kept = {name: int(mask.sum()) for name, mask in masks.items()}
        count = sum(kept[n] if n in kept else int(torch.count_nonzero(p)) for n, p in params.items())
        return count * BITS / MIB

    def kept_count(self, state, name: str, target: float, train=None) -> int:
        """Weights the criterion keeps of `name` as opened at `target` (exact, ties included; cached)."""
        scores = self.opened_scores(state, train)
        key = ("kept", self.name, name, round(target, 6))
        return state.memo(key, lambda: self.criterion.kept(scores[name], target), of_opened=True)

    def weight_cut(self, state, name: str, target: float, train=None) -> float | None:
        scores = self.opened_scores(state, train)
        return self.criterion.weight_cut(state.opened[name], scores[name], target)

    def gradual_scores(self) -> GradualScores:
        return GradualScores.magnitude()

    def scan_runner(self, state, train: Iterable | None, options: ScanOptions, launcher=None, cancel=None):
        """A runner for core.scan_cache.cached_scan: each tensor alone at each sparsity, by the scores of
        the weights as they are now (over several processes when a `launcher` is given)."""
        scores = self.current_scores(state, train, cancel)
        if launcher is not None:
            return partial(launcher.scan, scores=scores)
        return scan_runner(options, scores, train if options.recalibrate else None)

    def global_targets(
        self, state, budget_mib: float, locked: Mapping[str, float], cap: float | None = None, train=None
    ) -> dict[str, float]:
        """Global pruning at `budget_mib`: one threshold over the unlocked layers' scores as opened (for
        magnitude, |w|: torch.nn.utils.prune.global_unstructured's masks when `cap` does not bind). The
        weights kept: the budget in parameters (every nonzero parameter, 32 bit) less the nonzero
        parameters that are not pruned (biases, BatchNorm) and the locked layers' kept weights. Raises
        UserError when the budget is below what those weigh."""
        allowed = math.floor(budget_mib * MIB / BITS + 1e-6)
        names = state.layer_names
        fixed = sum(
            int(torch.count_nonzero(state.opened[name]))
            for name, _ in state.base.named_parameters()
            if name not in names or (name in locked and locked[name] <= 0)
        )
        fixed += sum(self.kept_count(state, name, s, train) for name, s in locked.items() if s > 0)
        if allowed < fixed:
            raise UserError(
                f"{budget_mib:.3f} MiB is below what the unpruned parameters and locked layers weigh "
                f"({fixed * BITS / MIB:.3f} MiB)"
            )
        scores = self.opened_scores(state, train)
        free = {name: scores[name] for name in names if name not in locked}
        targets = global_magnitude_targets(free, allowed - fixed, cap)
        return {name: locked.get(name, targets.get(name, 0.0)) for name in names}
