"""Evaluation data read once and held as tensors on the model's device, re-batched for the device.

A scan evaluates the same images dozens of times; reading them through a DataLoader each time costs
collation and host-to-device copies every pass. Data too large to hold is streamed instead.
"""

import math
import threading
from collections.abc import Iterable, Iterator

import torch

from prunetui.core.accel import input_memory_format
from prunetui.core.events import check_cancel

Batch = tuple[torch.Tensor, torch.Tensor]

GIB = 2**30


def default_batch_size(device: torch.device) -> int:
    """Small batches keep a CPU convolution's working set in cache; a GPU wants many images at once."""
    return 1024 if device.type == "cuda" else 256 if device.type == "mps" else 64


def default_data_budget(device: torch.device) -> int:
    """Most bytes of evaluation images held on `device`."""
    return _free_memory_share(device, 0.25) if device.type == "cuda" else 2 * GIB


def default_activation_budget(device: torch.device) -> int:
    """Most bytes of cached activations a scan holds before it recomputes them instead."""
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
    """Re-iterable (images, labels) batches on `device`: held in memory when they fit, else streamed."""

    def __init__(
        self,
        held: list[Batch] | None,
        source: Iterable,
        device: torch.device,
        limit: int | None,
        channels_last: bool = False,
    ):
        self.held = held
        self._source, self._device, self._limit, self._channels_last = source, device, limit, channels_last

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


def hold_eval_data(
    batches: Iterable,
    device: torch.device,
    batch_size: int,
    limit: int | None = None,
    max_bytes: int | None = None,
    channels_last: bool = False,
    cancel: threading.Event | None = None,
) -> EvalBatches:
    """Read the first `limit` images of `batches` (all when None) onto `device`, re-batched to `batch_size`.

    When they would take more than `max_bytes` (default: chosen for the device) they are streamed
    from `batches` on every pass instead, in its own batch size.
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
    all_images = _to_device(torch.cat(images), device, channels_last)
    held = _rebatch(all_images, torch.cat(labels), batch_size)
    return EvalBatches(held, batches, device, limit, channels_last)


def _to_device(images: torch.Tensor, device: torch.device, channels_last: bool) -> torch.Tensor:
    return input_memory_format(images.to(device, non_blocking=True), channels_last)


def _rebatch(images: torch.Tensor, labels: torch.Tensor, batch_size: int) -> list[Batch]:
    """Views into the held tensors, in order: no copies."""
    return [
        (images[i : i + batch_size], labels[i : i + batch_size]) for i in range(0, len(labels), batch_size)
    ]


def standard_error(accuracy: float, images: int) -> float:
    """Standard error, in points, of an accuracy of `accuracy` % measured on `images` images."""
    return math.sqrt(accuracy * (100.0 - accuracy) / images)
