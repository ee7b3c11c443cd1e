"""The model a session holds: as it was opened, as it is now, and what is held on it.

- as opened: `base` (the architecture the model was opened with) and `opened` (its weights then),
  `opened_stages` (channel stages the opened model already carried: a reopened channel export),
  `start_masks` (zeros present at load, held through prune and finetune unless `regrow`);
- now: `model` (the base itself, or a smaller copy once a channel prune swapped one in), `stages` (the
  channel stages this session applied on top of `opened_stages`), `masks` (True = kept, re-applied
  after every optimizer step);
- `version`: bumped on every change of what the model holds, so derived views (scans, projections,
  suggestions) can say which model they describe.

Nothing else swaps `model`: pruning methods call `restore_opened`, `swap_in` and `hold`.
"""

import copy
from collections.abc import Callable, Iterable
from contextlib import contextmanager

import torch
from torch import nn
from torch.utils.data import Dataset, IterableDataset, default_collate

from prunetui.core import pruning
from prunetui.core.finetune import restore, snapshot
from prunetui.core.layers import LayerInfo, describe_layers, prunable_parameters
from prunetui.core.lineage import ChannelStage, replay
from prunetui.core.runs import fingerprint
from prunetui.core.size import dense_size_mib, percent_of_dense, sparse_size_mib
from prunetui.errors import UserError


class ModelState:
    def __init__(
        self,
        model: nn.Module,
        example: torch.Tensor | None = None,
        opened_stages: Iterable[ChannelStage] = (),
        dense_size: float | None = None,
    ):
        """`example`: one input (1 x C x ...), or None until `example_from` finds one in the data.
        `dense_size`: MiB of the architecture before any channel stage (an export's record says it);
        default: the model as opened."""
        self.base = model.eval()
        self.opened = snapshot(model)
        self.opened_stages = tuple(opened_stages)
        self.layer_names = list(prunable_parameters(model))
        self.start_masks = pruning.existing_zeros(prunable_parameters(model))
        self.regrow = False
        self.model = self.base
        self.stages: tuple[ChannelStage, ...] = ()
        self.masks: pruning.Masks = dict(self.start_masks)
        self.opened_size = dense_size_mib(model)
        self.dense_size = dense_size if dense_size is not None else self.opened_size
        self.opened_fingerprint = fingerprint(self.opened)
        self.example = example
        self.example_source: Iterable | None = None  # batches the example is read from when first needed
        self.version = 0
        self._memo: dict[tuple, object] = {}

    @property
    def device(self) -> torch.device:
        return next(self.base.parameters()).device

    @property
    def channel_pruned(self) -> bool:
        """The model in hand is a smaller copy (this session removed channels)."""
        return bool(self.stages)

    @property
    def all_stages(self) -> tuple[ChannelStage, ...]:
        """Every channel stage from the spec's architecture to the model in hand."""
        return self.opened_stages + self.stages

    # --- changes -----------------------------------------------------------------------------------
    def changed(self) -> None:
        self.version += 1

    def opened_copy(self) -> nn.Module:
        """A copy of the base holding the weights it was opened with, whatever the model in hand holds
        (a magnitude prune masks the base itself): what a channel prune starts from."""
        model = copy.deepcopy(self.base)
        restore(model, self.opened)
        return model

    def restore_opened(self) -> None:
        """The base model, holding the weights it was opened with, in hand; no masks held yet."""
        self.model, self.stages = self.base, ()
        restore(self.base, self.opened)
        self.masks = {}
        self.changed()

    def swap_in(self, smaller: nn.Module, stage: ChannelStage) -> None:
        """A channel-pruned copy of the base in hand. The zeros it inherited from the opened weights
        are held unless `regrow` (they are the zeros present at load, in the kept channels)."""
        self.model = smaller.to(self.device).eval()
        self.stages = (*self.stages, stage)
        held = pruning.existing_zeros(prunable_parameters(self.model)) if self.start_masks else {}
        self.masks = {} if self.regrow else {n: m for n, m in held.items() if n in self.start_masks}
        self.changed()

    def rebuild(self, stages: tuple[ChannelStage, ...]) -> None:
        """The model as opened with this session's channel `stages` replayed on a copy, in hand (a resumed
        run's structure; its weights are loaded after). Masks as they were."""
        import copy

        if stages == self.stages:
            return
        self.restore_opened()
        smaller = replay(copy.deepcopy(self.base), stages) if stages else self.base
        self.model, self.stages = smaller.eval(), tuple(stages)
        self.changed()

    def hold(self, masks: pruning.Masks) -> None:
        """Hold `masks` on the model in hand and zero what they prune."""
        self.masks = dict(masks)
        pruning.apply_masks(self.model, self.masks)
        self.changed()

    def held_at_start(self, masks: pruning.Masks) -> pruning.Masks:
        """`masks` with the zeros present at load kept pruned (unless `regrow`)."""
        return masks if self.regrow else pruning.hold(masks, self.start_masks)

    def reset(self) -> None:
        """Back to the model as opened: its weights, the zeros at load held."""
        self.restore_opened()
        self.masks = {} if self.regrow else dict(self.start_masks)

    def set_regrow(self, regrow: bool, dense: bool) -> None:
        self.regrow = regrow
        if dense:
            self.masks = {} if regrow else dict(self.start_masks)

    @contextmanager
    def kept_on_failure(self):
        """Whatever a job does, if it raises, the model, weights and masks are put back."""
        saved = self.model, self.stages, dict(self.masks), snapshot(self.model)
        try:
            yield
        except BaseException:
            self.model, self.stages, self.masks, weights = saved
            restore(self.model, weights)
            self.changed()
            raise

    @contextmanager
    def scratch(self):
        """Jobs that try profiles on the model: afterwards, always, the model as it was."""
        saved = self.model, self.stages, dict(self.masks), snapshot(self.model)
        try:
            yield
        finally:
            self.model, self.stages, self.masks, weights = saved
            restore(self.model, weights)

    # --- what it is ------------------------------------------------------------------------------------
    def current_size(self) -> float:
        return sparse_size_mib(self.model)

    def reported_size(self) -> float:
        """The dense size while the model is as dense as it was built (as the lab reports a dense model:
        every parameter), else the lab's sparse size (nonzeros)."""
        untouched = not self.masks and not self.all_stages
        return self.dense_size if untouched else self.current_size()

    def percent(self, size_mib: float) -> float:
        return percent_of_dense(size_mib, self.dense_size)

    def layers(self) -> list[LayerInfo]:
        return describe_layers(self.model)

    def sparsity(self) -> dict[str, float]:
        """The fraction of zeros in each prunable tensor now."""
        return {info.name: info.zero_fraction for info in self.layers()}

    def start_sparsity(self) -> dict[str, float]:
        held = pruning.mask_sparsity(self.start_masks)
        return {name: held.get(name, 0.0) for name in self.layer_names}

    def fingerprint(self) -> str:
        """Of the weights in hand (every tensor, its name and shape)."""
        return fingerprint(self.model.state_dict())

    def masks_fingerprint(self) -> str:
        return fingerprint({name: mask.to(torch.uint8) for name, mask in self.masks.items()})

    def teacher(self) -> nn.Module:
        """A frozen copy of the model as opened (what distillation learns from, whatever shape the
        model in hand has now)."""
        import copy

        teacher = copy.deepcopy(self.base)
        restore(teacher, self.opened)
        return teacher.eval().requires_grad_(False)

    def example_input(self) -> torch.Tensor:
        """One input (1 x C x ...) on the model's device: the first image of `example_source` unless one
        was given. UserError when none is known."""
        self.example_from(self.example_source)
        if self.example is None:
            raise UserError("channel pruning and cost need an input shape: give a data spec (--data)")
        return self.example.to(self.device)

    def example_from(self, batches: Iterable | None) -> None:
        """The first image of `batches` becomes the example input, unless one is known (read from the
        loader's dataset when it has one, so a large first batch is not read)."""
        if self.example is not None or batches is None:
            return
        dataset = getattr(batches, "dataset", None)
        if isinstance(dataset, Dataset) and not isinstance(dataset, IterableDataset) and len(dataset):
            collate = getattr(batches, "collate_fn", None) or default_collate
            images = collate([dataset[0]])[0]
        else:
            images = next(iter(batches))[0]
        self.example = images[:1].detach().cpu()

    def memo(self, key: tuple, compute: Callable[[], object], of_opened: bool = False):
        """`compute()` once per `key`: per opened weights (`of_opened`) or per structure of the model in
        hand (recomputed after a channel prune or reset)."""
        full = (key, "opened") if of_opened else (key, len(self.stages), id(self.model))
        if full not in self._memo:
            self._memo[full] = compute()
        return self._memo[full]
