"""Check, before any job, that the model takes the data and can be trained on it.

One start-up check (`check_model_fits_data`): two evaluation images go forward and backward through the
model in eval mode, then in train mode, the logits read by core.outputs.logits_of (the one rule for
tuple, dict and namedtuple outputs). Two images, not one: a BatchNorm in train mode needs more than one
value per channel. The model is left exactly as it was: weights, buffers (BatchNorm running statistics
and batch counts), gradients and every module's train/eval mode.
"""

from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset, IterableDataset, default_collate

from prunetui.core.outputs import logits_of
from prunetui.errors import UserError

PROBE_IMAGES = 2
FORWARD_ERRORS = (RuntimeError, ValueError, IndexError, TypeError, AttributeError, KeyError)


def check_model_fits_data(
    model: nn.Module, data, device: torch.device, label: str | None = None
) -> list[str]:
    """Raise one clear UserError, naming the model (`label`, default its class name) and the problem,
    instead of a deep PyTorch error in the middle of a job; return warnings (without the `warning:`) for
    what may be meant but usually is not: more outputs than the data has classes.

    `data` is a sources.data.Data (its `eval` batches, `spec`, `num_classes`). Refused: a forward that
    fails on the data's images; an output with no logits tensor (core.outputs' rule); logits that are not
    (batch, classes) or have fewer classes than the data; logits whose shape differs between train and eval
    mode; a model with no trainable parameter or whose loss reaches none (it could not be finetuned); a
    train split of one image that the model cannot train on (a BatchNorm over features needs two).
    """
    name = label or type(model).__name__
    images, labels = probe_batch(data)
    images, labels = images.to(device), labels.to(device)
    with _untouched(model):
        if not any(p.requires_grad for p in model.parameters()):
            raise UserError(
                f"model {name}: every parameter is frozen (requires_grad=False), so it cannot be "
                "finetuned: unfreeze them in the factory (model.requires_grad_(True)) before returning it"
            )
        shapes = {
            mode: _forward_backward(model, images, labels, data, name, mode) for mode in ("eval", "train")
        }
        _check_one_image_training(model, images[:1], data, name)
    if shapes["train"] != shapes["eval"]:
        raise UserError(
            f"model {name}: its logits are {_shape(shapes['eval'])} in eval mode but {_shape(shapes['train'])} "
            "in train mode (it must give the same (batch, classes) logits in both)"
        )
    return _extra_outputs(shapes["eval"][1], data, name)


def _forward_backward(model, images, labels, data, name: str, mode: str) -> torch.Size:
    """The logits' shape after a forward and a backward of the cross-entropy in `mode` ("eval"/"train")."""
    model.train(mode == "train")
    with torch.enable_grad():
        try:
            output = model(images)
        except FORWARD_ERRORS as e:
            shape = "x".join(map(str, images.shape[1:]))
            raise UserError(
                f"model {name} cannot take {shape} images from {data.spec} ({mode} mode): {_first_line(e)}"
            ) from None
        try:
            logits = logits_of(output)
        except UserError as e:
            raise UserError(f"model {name} ({mode} mode): {e}") from None
        _check_classes(logits, data, name, mode)
        _backward(logits, labels, name, mode)
    return logits.shape


def _check_one_image_training(model: nn.Module, image: torch.Tensor, data, name: str) -> None:
    """A train split of one image trains in batches of one, which a BatchNorm over (batch, features)
    refuses in train mode (PyTorch: "Expected more than 1 value per channel"): one line now, not an
    internal error in the first finetune step."""
    dataset = getattr(getattr(data, "train", None), "dataset", None)
    if not isinstance(dataset, Dataset) or isinstance(dataset, IterableDataset) or len(dataset) != 1:
        return
    model.train()
    try:
        model(image)
    except FORWARD_ERRORS as e:
        raise UserError(
            f"model {name} cannot train on the 1 image of {data.spec}'s train split (batches of one image): "
            f"{_first_line(e)}; add training images"
        ) from None


def input_channels(model: nn.Module) -> int | None:
    """The channels the model takes: its first convolution's `in_channels` (Conv1d/2d/3d and their
    transposes, in `modules()` order: the stem of torchvision's, timm's and most hand-written CNNs);
    None when it has none, or a lazy one not built yet. What an image folder is read as follows it
    (sources/pixels.py)."""
    first = next((m for m in model.modules() if isinstance(m, nn.modules.conv._ConvNd)), None)
    return first.in_channels if first is not None and first.in_channels > 0 else None


def untrained_parameters(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> list[str]:
    """Names of the trainable parameters that the train-mode loss on `images` leaves without a gradient:
    the cross-entropy is taken on the logits only (core.outputs' rule), so e.g. GoogLeNet's auxiliary
    heads get none. DistributedDataParallel must be told of them. The model is left exactly as it was."""
    with _untouched(model), torch.enable_grad():
        model.train()
        F.cross_entropy(logits_of(model(images)).float(), labels).backward()
        return [name for name, p in model.named_parameters() if p.requires_grad and p.grad is None]


def _check_classes(logits: torch.Tensor, data, name: str, mode: str) -> None:
    if logits.dim() != 2 or not logits.is_floating_point():
        raise UserError(
            f"model {name} gives logits of shape {_shape(logits.shape)} ({logits.dtype}) in {mode} mode, "
            "not floating-point (batch, classes)"
        )
    if logits.shape[1] < data.num_classes:
        raise UserError(
            f"model {name} has {logits.shape[1]} outputs but {data.spec} has {data.num_classes} classes "
            "(for torchvision models give the class count: torchvision:NAME:CLASSES)"
        )


def _extra_outputs(outputs: int, data, name: str) -> list[str]:
    """More outputs than classes is allowed (a head kept on purpose, labels a subset), but it is most
    often a model built for another dataset (torchvision's 1000 ImageNet classes): accuracy is then near 0
    until it is finetuned. Say both numbers and the fix."""
    classes = data.num_classes
    if outputs <= classes:
        return []
    zoo = name.split(":")
    fix = (
        f"{zoo[0]}:{zoo[1]}:{classes} builds a {classes}-class head"
        if len(zoo) in (2, 3) and zoo[0] in ("torchvision", "timm")
        else f"build the model with {classes} outputs"
    )
    return [
        f"model {name} has {outputs} outputs but {data.spec} has {classes} classes, so accuracy counts "
        f"every prediction above class {classes - 1} as wrong: {fix}, or load a checkpoint trained for "
        "these classes"
    ]


def _backward(logits: torch.Tensor, labels: torch.Tensor, name: str, mode: str) -> None:
    if not logits.requires_grad:
        raise UserError(
            f"model {name}: its logits depend on no trainable parameter in {mode} mode (frozen layers, or "
            "a forward under torch.no_grad), so it cannot be finetuned: unfreeze what should learn"
        )
    try:
        F.cross_entropy(logits.float(), labels).backward()
    except FORWARD_ERRORS as e:
        raise UserError(f"model {name} cannot be trained ({mode} mode): {_first_line(e)}") from None


def probe_batch(data) -> tuple[torch.Tensor, torch.Tensor]:
    """PROBE_IMAGES evaluation images and labels, read from the dataset when the loader has one (so a
    large first batch is not read); a single image is doubled."""
    loader = data.eval
    dataset = getattr(loader, "dataset", None)
    if isinstance(dataset, Dataset) and not isinstance(dataset, IterableDataset) and len(dataset) > 0:
        items = [dataset[i] for i in range(min(PROBE_IMAGES, len(dataset)))]
        images, labels = (getattr(loader, "collate_fn", None) or default_collate)(items)
    else:
        images, labels = next(iter(loader))
        images, labels = images[:PROBE_IMAGES], labels[:PROBE_IMAGES]
    if len(images) < PROBE_IMAGES:
        images, labels = images.repeat(2, *[1] * (images.dim() - 1)), labels.repeat(2)
    return images, labels


@contextmanager
def _untouched(model: nn.Module):
    """Put back every parameter and buffer value, every gradient and every module's mode on exit."""
    state = {k: v.detach().clone() for k, v in model.state_dict(keep_vars=True).items()}
    grads = {p: p.grad for p in model.parameters()}
    modes = {m: m.training for m in model.modules()}
    for p in grads:
        p.grad = None
    try:
        yield
    finally:
        with torch.no_grad():
            for k, v in model.state_dict(keep_vars=True).items():
                v.copy_(state[k])
        for p, grad in grads.items():
            p.grad = grad
        for m, training in modes.items():
            m.training = training


def _shape(shape) -> str:
    return "x".join(map(str, shape))


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:160]
