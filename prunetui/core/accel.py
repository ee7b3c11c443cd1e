"""Device options for scans and finetuning: mixed precision (autocast) and channels_last.

Both change how a convolution is computed, not what it computes; the numbers can differ in the last
bits, so autocast is off unless asked for.
"""

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class Acceleration:
    amp: str | None = None  # "bf16", "fp16" or None (full fp32)
    channels_last: bool | None = None  # None: on for CUDA and CPU (faster convolutions), off for MPS

    def __post_init__(self) -> None:
        if self.amp is not None and self.amp not in AMP_DTYPES:
            raise ValueError(f"amp must be one of {', '.join(AMP_DTYPES)} or None, got {self.amp!r}")


def wants_channels_last(options: Acceleration, device: torch.device) -> bool:
    if options.channels_last is not None:
        return options.channels_last
    return device.type in ("cuda", "cpu")


def autocast(options: Acceleration, device: torch.device) -> contextlib.AbstractContextManager:
    """torch.autocast for `options.amp` on `device`, or a context that does nothing."""
    if options.amp is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=AMP_DTYPES[options.amp])


def grad_scaler(options: Acceleration, device: torch.device) -> torch.amp.GradScaler:
    """fp16 gradients underflow without loss scaling; bf16 and fp32 need none (the scaler is then off)."""
    return torch.amp.GradScaler(device.type, enabled=options.amp == "fp16" and device.type == "cuda")


@contextlib.contextmanager
def model_memory_format(model: nn.Module, channels_last: bool) -> Iterator[None]:
    """Hold 4-D weights channels_last while the block runs, then give them back their usual layout.

    `Module.to` keeps each Parameter object (it swaps `.data`), so masks, optimizers and the
    caller's references stay valid; values are never changed.
    """
    if not channels_last:
        yield
        return
    model.to(memory_format=torch.channels_last)
    try:
        yield
    finally:
        model.to(memory_format=torch.contiguous_format)


def input_memory_format(images: torch.Tensor, channels_last: bool) -> torch.Tensor:
    if channels_last and images.dim() == 4:
        return images.contiguous(memory_format=torch.channels_last)
    return images
