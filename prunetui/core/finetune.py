"""Finetune a pruned model with its masks held; the best epoch is the result.

The one training loop of prunetui, for one process and for N (torchvision's reference shape): `train_epochs`
builds the optimizer and schedule, resumes, runs `train_one_epoch` per epoch, evaluates through the
`evaluate_fn` it is given, keeps the best epoch and hands a resume state to `save_state` after each
epoch. `finetune` runs it in this process; prunetui.distributed.worker runs it on every rank, changing only the
data (a DistributedSampler, a sharded evaluation), the module it trains through (DDP) and who saves.
"""

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from prunetui.core.accel import Acceleration, autocast, grad_scaler, model_memory_format, wants_channels_last
from prunetui.core.distill import distillation_loss
from prunetui.core.evaluate import evaluate, model_device
from prunetui.core.events import (
    Cancelled,
    EpochEnd,
    Progress,
    Report,
    batch_count,
    batch_detail,
    check_cancel,
    ignore,
)
from prunetui.core.held_masks import HeldMasks, hold_masks, reapply
from prunetui.core.outputs import logits_of
from prunetui.core.pruning import Masks
from prunetui.core.recipe import Finetune, Recipe, Recovery
from prunetui.core.schedule import GradualMasks, GradualScores, agp_over


@dataclass
class FinetuneResult:
    epochs: list[EpochEnd] = field(default_factory=list)
    best_accuracy: float | None = None
    best_epoch: int | None = None
    cancelled: bool = False
    masks: Masks | None = None  # the masks at the end (a gradual schedule grows them), True = kept

    @property
    def completed(self) -> int:
        return len(self.epochs)


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of every parameter and buffer."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@torch.no_grad()
def restore(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Copy `state` back into the model's own tensors (in place: optimizers and masks stay valid)."""
    for k, v in model.state_dict().items():
        v.copy_(state[k])


EvaluateFn = Callable[[nn.Module], float]  # the (unwrapped) model -> top-1 accuracy in %


def sgd_with_cosine(model: nn.Module, settings: Finetune, steps_per_epoch: int) -> tuple:
    """PRODUCT.md's optimizer over `model.parameters()` in their order, and a cosine over every step of
    the run; (optimizer, scheduler)."""
    optimizer = torch.optim.SGD(
        model.parameters(), lr=settings.lr, momentum=settings.momentum, weight_decay=settings.weight_decay
    )
    steps = max(1, settings.epochs * max(1, steps_per_epoch))
    return optimizer, torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)


def resume_state(
    model, optimizer, scheduler, result: FinetuneResult, best_state: dict, masks: Masks | None = None
) -> dict:
    """Everything needed to go on after the last completed epoch (tensors and plain data only)."""
    return {
        "model": snapshot(model),
        "held_masks": masks,  # as they are after that epoch (a gradual schedule changes them)
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "best_model": best_state,
        "epochs": [asdict(e) for e in result.epochs],
        "best_epoch": result.best_epoch,
    }


def load_resume_state(model, optimizer, scheduler, result: FinetuneResult, state: dict) -> dict:
    """Put model, optimizer, schedule and epoch log back as `resume_state` saved them; the best weights."""
    restore(model, state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    result.epochs = [EpochEnd(**e) for e in state["epochs"]]
    result.best_epoch = state["best_epoch"]
    result.best_accuracy = best_of(result)
    return state["best_model"]


def best_of(result: FinetuneResult) -> float | None:
    """The best epoch's accuracy (not the highest of all: a gradual run's early epochs are not eligible)."""
    return next((e.accuracy for e in result.epochs if e.epoch == result.best_epoch), None)


def train_one_epoch(
    model: nn.Module,
    batches: Iterable,
    optimizer: torch.optim.Optimizer,
    scheduler,
    held: HeldMasks,
    epoch: int,
    report: Report = ignore,
    cancel: threading.Event | None = None,
    accel: Acceleration | None = None,
    scaler: torch.amp.GradScaler | None = None,
    loss_fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    after_step: Callable[[], None] | None = None,
    epochs: int | None = None,
) -> None:
    """One pass over `batches` of (images N x C x H x W, labels N) through `model` (plain or DDP):
    cross-entropy on the logits (core.outputs.logits_of: auxiliary outputs such as GoogLeNet's train-mode
    aux heads are not in the loss), one optimizer and schedule step a batch, the masks re-applied after each.

    `loss_fn(logits, images, labels)` replaces the cross-entropy (distillation); `after_step()` runs after
    the masks are re-applied (a gradual schedule growing them).
    Raises Cancelled before a batch when `cancel` is set. Nothing here waits for the device (no .item()),
    so a GPU runs ahead, and a step does no host work it need not (what is the same for every step is
    made once) so that a fast GPU is not kept waiting. Progress counts the batches of all `epochs` of
    the run (of this epoch when not given), its detail the batch of this epoch.
    """
    accel = accel or Acceleration()
    model.train()
    device = model_device(model)
    scaler = scaler or grad_scaler(accel, device)
    criterion = nn.CrossEntropyLoss()
    mixed = autocast(accel, device)  # entered once a step (torch.autocast is reusable, not reentrant)
    stage = f"train epoch {epoch}"
    total = batch_count(batches)
    before, run_total = ((epoch - 1) * total, epochs * total) if epochs else (0, total)
    for i, (images, labels) in enumerate(batches):
        check_cancel(cancel)
        images = images.to(device, non_blocking=True)
        labels = labels.to(device, non_blocking=True)
        optimizer.zero_grad(set_to_none=True)
        with mixed:
            logits = logits_of(model(images))
            loss = criterion(logits, labels) if loss_fn is None else loss_fn(logits, images, labels)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        reapply(held)
        if after_step is not None:
            after_step()
        report(Progress(stage, before + i + 1, run_total, batch_detail(i + 1, total)))


def set_sampler_epoch(batches: Iterable, epoch: int) -> None:
    """Tell a sampler that reshuffles per epoch (DistributedSampler) which epoch this is; others ignore it."""
    set_epoch = getattr(getattr(batches, "sampler", None), "set_epoch", None)
    if set_epoch is not None:
        set_epoch(epoch)


@dataclass
class _Training:
    """One run's moving parts, so each epoch is one call."""

    model: nn.Module  # the model itself: optimized, evaluated, snapshotted
    trained: nn.Module  # what the batches go through: the model or its DDP wrapper
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    held: HeldMasks
    accel: Acceleration
    result: FinetuneResult
    best_state: dict
    names: list[str]  # of the held masks, in order
    loss_fn: Callable | None = None  # distillation
    gradual: GradualMasks | None = None
    epochs: int | None = None  # of the whole run: progress counts its batches

    def epoch(
        self,
        epoch: int,
        batches: Iterable,
        evaluate_fn: EvaluateFn,
        report: Report,
        cancel: threading.Event | None,
    ) -> EpochEnd:
        """Train and evaluate epoch `epoch`; keep its weights when it is the best so far."""
        started = time.perf_counter()
        set_sampler_epoch(batches, epoch)
        train_one_epoch(
            self.trained,
            batches,
            self.optimizer,
            self.scheduler,
            self.held,
            epoch,
            report,
            cancel,
            accel=self.accel,
            scaler=self.scaler,
            loss_fn=self.loss_fn,
            after_step=self.gradual.after_step if self.gradual is not None else None,
            epochs=self.epochs,
        )
        with autocast(self.accel, model_device(self.model)):
            accuracy = evaluate_fn(self.model)
        result = self.result
        reached = self.gradual is None or self.gradual.done  # a gradual run's best is at its targets
        if reached and (result.best_accuracy is None or accuracy > result.best_accuracy):
            result.best_accuracy, result.best_epoch = accuracy, epoch
            self.best_state = snapshot(self.model)
        event = EpochEnd(epoch, accuracy, result.best_accuracy, time.perf_counter() - started)
        result.epochs.append(event)
        return event

    def masks(self) -> Masks:
        """The held masks as they are now, True = kept."""
        return {name: mask.bool().cpu() for name, (_, mask) in zip(self.names, self.held, strict=True)}

    def state(self) -> dict:
        state = resume_state(
            self.model, self.optimizer, self.scheduler, self.result, self.best_state, self.masks()
        )
        state["gradual_initial"] = self.gradual.initial if self.gradual is not None else None
        return state


def _distillation(recovery: Recovery, teacher: nn.Module | None) -> Callable | None:
    """The loss of a distilling run, learning from `teacher` (frozen, in eval mode)."""
    if not recovery.distill:
        return None
    if teacher is None:
        raise ValueError("a distilling run needs a teacher model")

    @torch.no_grad()
    def teacher_logits(images: torch.Tensor) -> torch.Tensor:
        return logits_of(teacher(images))

    def loss_fn(logits: torch.Tensor, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return distillation_loss(logits, teacher_logits(images), labels, recovery.temperature, recovery.alpha)

    return loss_fn


def _held_masks(model: nn.Module, masks: Masks, recipe: Recipe) -> Masks:
    """A gradual run holds every layer it will prune, from the start (all kept when not pruned yet)."""
    if not recipe.recovery.gradual:
        return masks
    params = dict(model.named_parameters())
    ones = {name: torch.ones_like(params[name], dtype=torch.bool) for name in recipe.plan.active()}
    return {**ones, **masks}


def gradual_scores(method: str) -> GradualScores:
    """What an AGP schedule of `method` ranks weights by (core.recipe refuses methods without)."""
    from prunetui.core.methods import get_method  # the methods import this module's helpers

    scores = get_method(method).gradual_scores()
    if scores is None:
        raise ValueError(f"the {method} method cannot be grown on an AGP schedule")
    return scores


def train_epochs(
    model: nn.Module,
    train_batches: Iterable,
    masks: Masks,
    recipe: Recipe,
    evaluate_fn: EvaluateFn,
    report: Report = ignore,
    cancel: threading.Event | None = None,
    save_state: Callable[[dict], None] | None = None,
    resume: dict | None = None,
    wrap: Callable[[nn.Module], nn.Module] | None = None,
    teacher: nn.Module | None = None,
    channels_last: bool | None = None,
) -> FinetuneResult:
    """The epoch loop `finetune` documents, the recipe's finetune and recovery applied, for one process
    or one rank.

    `evaluate_fn(model)` gives an epoch's accuracy (run under the recipe's autocast); `wrap(model)`, when
    given, returns the module the batches go through (DDP), made once the memory format is set.
    `teacher`: the frozen model a distilling run learns from (the model as opened). `channels_last`:
    None chooses for the device (core.accel).
    """
    settings, recovery = recipe.finetune, recipe.recovery
    start_state = snapshot(model)
    steps_per_epoch = batch_count(train_batches)
    optimizer, scheduler = sgd_with_cosine(model, settings, steps_per_epoch)
    result, best_state = FinetuneResult(), start_state
    loss_fn = _distillation(recovery, teacher)
    masks = _held_masks(model, masks, recipe)
    if resume is not None:
        best_state = load_resume_state(model, optimizer, scheduler, result, resume)
        masks = resume.get("held_masks") or masks
    accel, device = Acceleration(settings.amp, channels_last), model_device(model)
    with model_memory_format(model, wants_channels_last(accel, device)):
        trained = model if wrap is None else wrap(model)
        held = hold_masks(model, masks)
        gradual = None
        if recovery.gradual:
            schedule = agp_over(settings.epochs * max(1, steps_per_epoch), recovery.agp_share)
            initial = resume.get("gradual_initial") if resume is not None else None
            step = result.completed * max(1, steps_per_epoch)
            named = dict(zip(masks, held, strict=True))
            scores = gradual_scores(recipe.plan.method)
            gradual = GradualMasks(named, recipe.plan.active(), schedule, step, initial, scores)
        # one scaler for the run: its loss scale carries over between epochs
        run = _Training(
            model,
            trained,
            optimizer,
            scheduler,
            scaler=grad_scaler(accel, device),
            held=held,
            accel=accel,
            result=result,
            best_state=best_state,
            names=list(masks),
            loss_fn=loss_fn,
            gradual=gradual,
            epochs=settings.epochs,
        )
        try:
            for epoch in range(result.completed + 1, settings.epochs + 1):
                event = run.epoch(epoch, train_batches, evaluate_fn, report, cancel)
                if save_state is not None:
                    save_state(run.state())
                report(event)
        except Cancelled:
            result.cancelled = True
        restore(model, run.best_state)
        result.masks = run.masks() if result.best_epoch is not None or resume is not None else masks
    model.eval()
    return result


def finetune(
    model: nn.Module,
    train_batches: Iterable,
    eval_batches: Iterable,
    masks: Masks,
    recipe: Recipe,
    report: Report = ignore,
    cancel: threading.Event | None = None,
    save_state: Callable[[dict], None] | None = None,
    resume: dict | None = None,
    teacher: nn.Module | None = None,
    channels_last: bool | None = None,
) -> FinetuneResult:
    """Train `recipe.finetune.epochs` epochs in this process, re-applying `masks` after every optimizer
    step (an AGP schedule grows them to `recipe.plan`'s targets; a distilling run learns from `teacher`).

    When it returns the model holds the best epoch's weights. Cancelled before the first epoch
    ends, the model is put back exactly as it was; cancelled later, it keeps the best epoch so far.
    `save_state(state)` receives everything needed to go on after each completed epoch; passing that
    state back as `resume` continues the run where it stopped, schedule and momentum included.
    """

    def evaluate_fn(evaluated: nn.Module) -> float:
        return evaluate(evaluated, eval_batches, report, cancel)

    return train_epochs(
        model,
        train_batches,
        masks,
        recipe,
        evaluate_fn,
        report,
        cancel,
        save_state,
        resume,
        teacher=teacher,
        channels_last=channels_last,
    )
