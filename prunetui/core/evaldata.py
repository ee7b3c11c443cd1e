"""Evaluation data read once and held as tensors on the model's device, re-batched for the device.

A scan evaluates the same images dozens of times; reading them through a DataLoader each time costs
collation and host-to-device copies every pass. Data too large to hold is streamed instead.

One evaluation batching (the rule every accuracy follows): the evaluation split's own batches, as its
loader gives them, define the accuracy. Re-batching for the device is allowed only where it cannot change
a prediction: a model whose output for an image depends on the other images in its batch
(`batch_dependent`: a BatchNorm without running statistics normalises with the batch's own mean and
variance even in eval mode) is always evaluated in the loader's own batches.
"""

import math
import threading
from collections.abc import Iterable, Iterator

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from prunetui.core.accel import input_memory_format
from prunetui.core.events import check_cancel
from prunetui.core.outputs import logits_of

Batch = tuple[torch.Tensor, torch.Tensor]

GIB = 2**30


def default_batch_size(device: torch.device) -> int:
    """Small batches keep a CPU convolution's working set in cache; a GPU wants many images at once."""
    return 1024 if device.type == "cuda" else 256 if device.type == "mps" else 64


def default_data_budget(device: torch.device) -> int:
    """Most bytes of evaluation images held on `device`."""
    return _free_memory_share(device, 0.25) if device.type == "cuda" else 2 * GIB


def default_activation_budget(device: torch.device) -> int:
    """Most bytes of activations a scan holds and creates at once (core.scan_memory plans its batches
    and the inputs it holds to it, recomputing the rest): a quarter of free CUDA memory, else 1 GiB."""
    return _free_memory_share(device, 0.25) if device.type == "cuda" else GIB


def _free_memory_share(device: torch.device, share: float) -> int:
    free, _total = torch.cuda.mem_get_info(device)
    return int(free * share)


def first_images(batches: Iterable, limit: int | None) -> Iterator[Batch]:
    """The batches holding the first `limit` images (the last one cut short); all when `limit` is None."""
    left = limit
    for images, labels in batches:
        if left is not None:
            if left <= 0:
                return
            images, labels = images[:left], labels[:left]
            left -= len(labels)
        yield images, labels


class EvalBatches:
    """Re-iterable (images, labels) batches on `device`: held in memory when they fit, else streamed
    from `source` in its own batches."""

    def __init__(
        self,
        held: list[Batch] | None,
        source: Iterable,
        device: torch.device,
        limit: int | None,
        channels_last: bool = False,
        whole: Batch | None = None,
    ):
        self.held = held
        self._source, self._device, self._limit, self._channels_last = source, device, limit, channels_last
        self._whole = whole  # the held images and labels as two tensors, which `held` views

    def __iter__(self) -> Iterator[Batch]:
        if self.held is not None:
            return iter(self.held)
        return (
            (
                _to_device(images, self._device, self._channels_last),
                labels.to(self._device, non_blocking=True),
            )
            for images, labels in first_images(self._source, self._limit)
        )

    def __len__(self) -> int:
        if self.held is None:
            raise TypeError("streamed batches have no known length")
        return len(self.held)

    def rebatched(self, batch_size: int) -> "EvalBatches":
        """The same images in batches of `batch_size` (views, no copies); streamed data stays as it is."""
        if self.held is None:
            return self
        images, labels = self._whole or (
            torch.cat([x for x, _ in self.held]),
            torch.cat([y for _, y in self.held]),
        )
        held = _split(images, labels, [batch_size] * math.ceil(len(labels) / batch_size))
        return EvalBatches(
            held, self._source, self._device, self._limit, self._channels_last, (images, labels)
        )


def hold_eval_data(
    batches: Iterable,
    device: torch.device,
    batch_size: int | None,
    limit: int | None = None,
    max_bytes: int | None = None,
    channels_last: bool = False,
    cancel: threading.Event | None = None,
) -> EvalBatches:
    """Read the first `limit` images of `batches` (all when None) onto `device`, re-batched to `batch_size`
    (None: kept in `batches`' own batches, the last one cut at `limit`).

    When they would take more than `max_bytes` (default: chosen for the device) they are streamed
    from `batches` on every pass instead, in its own batch size. Raises ValueError on an empty split.
    """
    max_bytes = default_data_budget(device) if max_bytes is None else max_bytes
    images, labels, size = [], [], 0
    for x, y in first_images(batches, limit):
        check_cancel(cancel)
        size += x.element_size() * x.numel()
        if size > max_bytes:
            return EvalBatches(None, batches, device, limit, channels_last)
        images.append(x.to(device, non_blocking=True))
        labels.append(y.to(device, non_blocking=True))
    if not images:
        raise ValueError("the evaluation split is empty")
    whole = _to_device(torch.cat(images), device, channels_last), torch.cat(labels)
    held = _split(*whole, [len(y) for y in labels])
    data = EvalBatches(held, batches, device, limit, channels_last, whole)
    return data if batch_size is None else data.rebatched(batch_size)


def batch_dependent(model: nn.Module, images: torch.Tensor | None = None) -> bool:
    """Whether `model`'s eval-mode output for an image can depend on the other images in its batch.

    Structurally: a BatchNorm (any dimension, SyncBatchNorm and lazy ones included) with
    `track_running_stats=False` or with its running mean or variance set to None normalises with the
    current batch's statistics in eval mode too (torch.nn.BatchNorm2d's documentation).
    InstanceNorm, GroupNorm and LayerNorm are per image. Empirically, for normalisation written by hand
    (`F.batch_norm(..., training=True)`): the first images of `images` alone, then with as many others,
    give different logits (far beyond a kernel's last-bit differences). A probe that fails to run
    counts as dependent. The model is expected in eval mode; nothing in it changes.
    """
    if any(_normalises_with_batch(module) for module in model.modules()):
        return True
    if images is None or len(images) < 2:
        return False
    half = min(4, len(images) // 2)
    try:
        with torch.inference_mode():
            alone = logits_of(model(images[:half].clone())).float()
            together = logits_of(model(images[: 2 * half].clone()))[:half].float()
    except Exception:  # any failure: the safe answer keeps the loader's batches
        return True
    scale = max(1.0, float(together.abs().max()))
    return alone.shape != together.shape or not torch.allclose(alone, together, rtol=1e-2, atol=1e-3 * scale)


def _normalises_with_batch(module: nn.Module) -> bool:
    return isinstance(module, _BatchNorm) and (
        not module.track_running_stats or module.running_mean is None or module.running_var is None
    )


def _to_device(images: torch.Tensor, device: torch.device, channels_last: bool) -> torch.Tensor:
    return input_memory_format(images.to(device, non_blocking=True), channels_last)


def _split(images: torch.Tensor, labels: torch.Tensor, sizes: list[int]) -> list[Batch]:
    """Views into the held tensors, in order, of the given sizes (the last one may be short): no copies."""
    held, start = [], 0
    for size in sizes:
        if start >= len(labels):
            break
        held.append((images[start : start + size], labels[start : start + size]))
        start += size
    return held


def standard_error(accuracy: float, images: int) -> float:
    """Standard error, in points, of an accuracy of `accuracy` % measured on `images` images."""
    return math.sqrt(accuracy * (100.0 - accuracy) / images)
