"""Turn a --device value into a torch.device, with a clear error when it cannot be used."""

import re

import torch

from prunetui.errors import UserError

_FORM = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def resolve_device(spec: str = "auto") -> torch.device:
    """`auto` picks CUDA, then MPS, then CPU; an explicit device must exist."""
    if not _FORM.match(spec):
        raise UserError(f"bad device '{spec}': expected auto, cpu, cuda, cuda:N or mps")
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(spec)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"device '{spec}' requested but CUDA is not available here")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UserError(f"device '{spec}' does not exist ({torch.cuda.device_count()} CUDA devices)")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise UserError("device 'mps' requested but MPS is not available here")
    return device
