"""What every pruning method is: one lifecycle, whether it masks weights or removes channels.

As `torch.ao.pruning`'s `BaseSparsifier` and `BaseStructuredSparsifier` share prepare / step / squash /
convert, a fine-grained method (core.methods.fine_grained: masks, shapes unchanged) and a structured one
(core.methods.channel: whole channels removed, a smaller model) are siblings with the same steps, so no
caller asks which kind it has:

- `units(state)`: what a plan names (prunable tensors, or channel groups), unprunable ones with why;
- `check(state, targets)`: every name with a target above 0 is a prunable unit;
- `resolve(state, sparsity)`: a profile's glob keys as unit names (core.patterns);
- `prune(state, plan, start, train, cancel)`: the model state pruned to the plan;
- `projection(state, targets, start)`: the size (and cost, and kept channels) pruning would give;
- `kept_count(state, name, target)`: exact kept weights of one unit, for suggestions' size projections;
- `scan_runner(...)`: the sensitivity scan of each unit alone;
- `gradual_scores()`: what an AGP schedule ranks weights by at each update (None: the method cannot be
  grown gradually, and core.recipe refuses the combination).

The importance of weights is kept apart from the method that applies it (Torch-Pruning keeps
`Importance.__call__(group)` apart from its pruner): a new fine-grained criterion is one `Criterion`
subclass with a `scores` method.
"""

import difflib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from threading import Event
from typing import TYPE_CHECKING, ClassVar

import torch
from torch import nn

from prunetui.core.events import Report, ignore
from prunetui.core.patterns import Resolved, resolve
from prunetui.core.pruning import lab_mask, lab_threshold
from prunetui.core.recipe import METHODS, MethodTraits, Plan
from prunetui.errors import UserError

if TYPE_CHECKING:
    from prunetui.core.cost import Cost
    from prunetui.core.model_state import ModelState
    from prunetui.core.schedule import GradualScores


@dataclass(frozen=True)
class Scoring:
    """What a criterion scores: the tensors `names` of `model` holding the weights `state` (every parameter
    and buffer of `model`, as `state_dict()` names them; the model's own tensors are never modified),
    with training (images, labels) `batches` for criteria that need data, and a cancel event."""

    model: nn.Module
    state: Mapping[str, torch.Tensor]
    names: Sequence[str]
    batches: Iterable | None = None
    cancel: Event | None = None


class Criterion:
    """A fine-grained pruning criterion: importance scores per weight, then the lab's k and tie rule."""

    name: ClassVar[str]
    needs_data: ClassVar[bool] = False  # True: `scores` reads training batches

    def scores(self, scoring: Scoring) -> dict[str, torch.Tensor]:
        """Importance of every weight of the tensors `scoring.names`, each of its weight's shape, >= 0.
        Raises UserError when it cannot score."""
        raise NotImplementedError

    def mask(self, scores: torch.Tensor, sparsity: float) -> torch.Tensor:
        """True = kept: the lab's rule on the scores (k = round(n * s), ties at the threshold pruned)."""
        return lab_mask(scores, sparsity)

    def kept(self, scores: torch.Tensor, sparsity: float) -> int:
        """How many weights `mask` keeps (exact, ties included): what the size projection counts."""
        return int(self.mask(scores, sparsity).sum())

    def weight_cut(self, weight: torch.Tensor, scores: torch.Tensor, sparsity: float) -> float | None:
        """The |w| at or below which weights are pruned, when the criterion is |w| itself; else None
        (the weights histogram then marks no single cut)."""
        return None

    def threshold(self, scores: torch.Tensor, sparsity: float) -> float:
        return lab_threshold(scores, sparsity)


@dataclass(frozen=True)
class Unit:
    """What a plan sets: a prunable tensor (size: weights) or a channel group (size: output channels,
    members: every layer whose outputs go with it). Unprunable units carry the reason."""

    name: str
    size: int
    members: tuple[str, ...] = ()
    prunable: bool = True
    reason: str = ""


@dataclass(frozen=True)
class Projection:
    """What pruning to some targets would give, nothing pruned: the size (MiB), and for methods that
    change the architecture its measured cost and the channels each group keeps ((kept, total))."""

    size_mib: float
    cost: "Cost | None" = None
    kept: Mapping[str, tuple[int, int]] | None = None
    reasons: Mapping[str, str] = field(default_factory=dict)  # unprunable unit -> why


class Method:
    """The lifecycle every pruning method has (module docstring)."""

    name: ClassVar[str]
    noun: ClassVar[str] = "layers"  # what its units are called in messages

    @property
    def traits(self) -> MethodTraits:
        return METHODS[self.name]

    @property
    def summary(self) -> str:
        return self.traits.summary

    @property
    def needs_data(self) -> bool:
        return self.traits.needs_data

    def units(self, state: "ModelState", report: Report = ignore, cancel: Event | None = None) -> list[Unit]:
        """Every unit in model order. A method whose units take long to find reports its progress to
        `report` and raises core.events.Cancelled when `cancel` is set (computed once per model as opened)."""
        raise NotImplementedError

    def unit_names(self, state: "ModelState") -> list[str]:
        """The prunable units, in model order: what a whole-model scan or suggestion covers."""
        return [unit.name for unit in self.units(state) if unit.prunable]

    def check(self, state: "ModelState", targets: Mapping[str, float], context: str = "") -> None:
        """Every name with a target above 0 is a prunable unit, and every other name a unit or a layer
        of the model: UserError naming the closest units, or why the unit cannot be pruned."""
        units = {unit.name: unit for unit in self.units(state)}
        for name, target in targets.items():
            unit = units.get(name)
            if unit is None and target <= 0 and name in state.layer_names:
                continue  # a layer at 0 (the session's targets list every layer)
            if unit is None:
                raise UserError(f"{context}{self.unknown_unit(name, list(units.values()))}")
            if target > 0 and not unit.prunable:
                raise UserError(f"{context}{name} cannot be pruned: {unit.reason}")

    def resolve(self, state: "ModelState", sparsity: Mapping[str, float], context: str = "") -> Resolved:
        """A profile's keys as exact unit names: its patterns (`"*"`, `"layer3.*"`) resolved against the
        units (core.patterns: exact over glob, the most specific glob wins). Raises UserError for a
        pattern that matches nothing or only units that cannot be pruned; exact names are `check`'s."""
        return resolve(sparsity, self.units(state), context, self.noun)

    def unknown_unit(self, name: str, units: list[Unit]) -> str:
        """Why `name` is not a unit, with the closest names (subclasses say more)."""
        names = [unit.name for unit in units]
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.5) or names[:3]
        return f"unknown layer {name}; closest: {', '.join(close)}"

    def prune(
        self,
        state: "ModelState",
        plan: Plan,
        start: str,
        train: Iterable | None,
        cancel: Event | None = None,
    ) -> None:
        raise NotImplementedError

    def projection(
        self, state: "ModelState", targets: Mapping[str, float], start: str = "dense", train=None
    ) -> Projection:
        raise NotImplementedError

    def kept_count(self, state: "ModelState", name: str, target: float, train=None) -> int:
        raise NotImplementedError

    def weight_cut(self, state: "ModelState", name: str, target: float, train=None) -> float | None:
        """The |w| cut a target draws on the weights histogram, for methods that have one."""
        return None

    def gradual_scores(self) -> "GradualScores | None":
        return None

    def scan_runner(self, state: "ModelState", train, options, launcher=None, cancel: Event | None = None):
        """The runner core.scan_cache.cached_scan calls for the units it does not hold."""
        raise NotImplementedError

    def global_targets(self, state: "ModelState", budget_mib: float, locked, cap=None, train=None):
        """One threshold over every unit at a size budget (the global baseline), or None when the method
        has no such baseline."""
        return None
