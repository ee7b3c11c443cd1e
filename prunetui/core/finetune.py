"""Finetune a pruned model with its masks held; the best epoch is the result."""

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from prunetui.core.accel import Acceleration, autocast, grad_scaler, model_memory_format, wants_channels_last
from prunetui.core.evaluate import evaluate, model_device
from prunetui.core.events import Cancelled, EpochEnd, Progress, Report, batch_count, check_cancel, ignore
from prunetui.core.pruning import Masks, apply_masks


@dataclass(frozen=True)
class FinetuneSettings:
    """PRODUCT.md's defaults: SGD, cosine schedule over the whole run, cross-entropy."""

    epochs: int = 5
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-4
    amp: str | None = None  # "bf16" or "fp16" autocast (fp16 with loss scaling on CUDA), None for fp32
    channels_last: bool | None = None  # None: chosen for the device (core.accel)

    @property
    def acceleration(self) -> Acceleration:
        return Acceleration(self.amp, self.channels_last)


@dataclass
class FinetuneResult:
    epochs: list[EpochEnd] = field(default_factory=list)
    best_accuracy: float | None = None
    best_epoch: int | None = None
    cancelled: bool = False

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


def _resume_state(model, optimizer, scheduler, result: FinetuneResult, best_state: dict) -> dict:
    return {
        "model": snapshot(model),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "best_model": best_state,
        "epochs": [asdict(e) for e in result.epochs],
        "best_epoch": result.best_epoch,
    }


def _load_resume_state(model, optimizer, scheduler, result: FinetuneResult, state: dict) -> dict:
    """Put model, optimizer, schedule and epoch log back as `_resume_state` saved them; the best weights."""
    restore(model, state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    result.epochs = [EpochEnd(**e) for e in state["epochs"]]
    result.best_epoch = state["best_epoch"]
    result.best_accuracy = max((e.accuracy for e in result.epochs), default=None)
    return state["best_model"]


def _train_epoch(
    model,
    batches,
    optimizer,
    scheduler,
    masks,
    criterion,
    epoch,
    report,
    cancel,
    accel: Acceleration | None = None,
    scaler: torch.amp.GradScaler | None = None,
) -> None:
    """One pass over `batches`; nothing here waits for the device (no .item()), so a GPU runs ahead."""
    accel = accel or Acceleration()
    model.train()
    device = model_device(model)
    scaler = scaler or grad_scaler(accel, device)
    total = batch_count(batches)
    for i, (images, labels) in enumerate(batches):
        check_cancel(cancel)
        images = images.to(device, non_blocking=True)
        labels = labels.to(device, non_blocking=True)
        optimizer.zero_grad(set_to_none=True)
        with autocast(accel, device):
            loss = criterion(model(images), labels)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        apply_masks(model, masks)
        report(Progress(f"train epoch {epoch}", i + 1, total))


def masks_like_params(model: nn.Module, masks: Masks) -> Masks:
    """Each mask as a 0/1 tensor of its parameter's device, dtype and memory layout, made once, so that
    re-applying it after every step is one multiply."""
    params = dict(model.named_parameters())
    return {name: torch.empty_like(params[name]).copy_(mask) for name, mask in masks.items()}


def finetune(
    model: nn.Module,
    train_batches: Iterable,
    eval_batches: Iterable,
    masks: Masks,
    settings: FinetuneSettings = FinetuneSettings(),
    report: Report = ignore,
    cancel: threading.Event | None = None,
    save_state: Callable[[dict], None] | None = None,
    resume: dict | None = None,
) -> FinetuneResult:
    """Train `settings.epochs` epochs, re-applying `masks` after every optimizer step.

    When it returns the model holds the best epoch's weights. Cancelled before the first epoch
    ends, the model is put back exactly as it was; cancelled later, it keeps the best epoch so far.
    `save_state(state)` receives everything needed to go on after each completed epoch; passing that
    state back as `resume` continues the run where it stopped, schedule and momentum included.
    """
    start_state = snapshot(model)
    optimizer = torch.optim.SGD(
        model.parameters(), lr=settings.lr, momentum=settings.momentum, weight_decay=settings.weight_decay
    )
    steps = max(1, settings.epochs * max(1, batch_count(train_batches)))
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    criterion = nn.CrossEntropyLoss()
    result = FinetuneResult()
    best_state = start_state
    if resume is not None:
        best_state = _load_resume_state(model, optimizer, scheduler, result, resume)
    accel, device = settings.acceleration, model_device(model)
    scaler = grad_scaler(accel, device)  # one for the run: its loss scale carries over between epochs
    with model_memory_format(model, wants_channels_last(accel, device)):
        device_masks = masks_like_params(model, masks)
        try:
            for epoch in range(result.completed + 1, settings.epochs + 1):
                started = time.perf_counter()
                _train_epoch(
                    model,
                    train_batches,
                    optimizer,
                    scheduler,
                    device_masks,
                    criterion,
                    epoch,
                    report,
                    cancel,
                    accel,
                    scaler,
                )
                with autocast(accel, device):
                    accuracy = evaluate(model, eval_batches, cancel=cancel)
                if result.best_accuracy is None or accuracy > result.best_accuracy:
                    result.best_accuracy, result.best_epoch = accuracy, epoch
                    best_state = snapshot(model)
                event = EpochEnd(epoch, accuracy, result.best_accuracy, time.perf_counter() - started)
                result.epochs.append(event)
                if save_state is not None:
                    save_state(_resume_state(model, optimizer, scheduler, result, best_state))
                report(event)
        except Cancelled:
            result.cancelled = True
        restore(model, best_state)
    model.eval()
    return result
