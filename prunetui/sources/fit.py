"""Check, before any job, that the model takes the data: one image through, logits for every class."""

import torch
from torch import nn

from prunetui.errors import UserError


@torch.inference_mode()
def check_model_fits_data(model: nn.Module, data, device: torch.device) -> None:
    """Raise one clear UserError instead of a deep PyTorch error in the middle of a job."""
    images, labels = next(iter(data.eval))
    shape = "x".join(map(str, images.shape[1:]))
    model.eval()
    try:
        logits = model(images[:2].to(device))
    except (RuntimeError, ValueError, IndexError, TypeError) as e:
        reason = str(e).strip().splitlines()[0][:160]
        raise UserError(f"the model cannot take {shape} images from {data.spec}: {reason}") from None
    if logits.dim() != 2:
        raise UserError(f"the model gives outputs of shape {tuple(logits.shape)}, not (batch, classes)")
    if logits.shape[1] < data.num_classes:
        raise UserError(
            f"the model has {logits.shape[1]} outputs but {data.spec} has {data.num_classes} classes "
            "(for torchvision models give the class count: torchvision:NAME:CLASSES)"
        )
