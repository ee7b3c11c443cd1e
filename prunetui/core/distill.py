"""Knowledge distillation from the dense model while finetuning a pruned one (Hinton et al. 2015).

loss = alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T)) + (1 - alpha) * CE(student, labels)

The T^2 keeps the soft term's gradients at the scale of the hard term's as T grows (Hinton et al.,
section 2). The teacher runs in eval mode without gradients on the same batch.
"""

import copy
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from prunetui.core.outputs import logits_of


@dataclass(frozen=True)
class Distillation:
    temperature: float = 4.0
    alpha: float = 0.9  # weight of the soft (teacher) term

    def __post_init__(self):
        if not self.temperature > 0:
            raise ValueError(f"the distillation temperature must be above 0, got {self.temperature}")
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"the distillation weight alpha must be in [0, 1], got {self.alpha}")


def distillation_loss(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor, settings: Distillation
) -> torch.Tensor:
    """The combined loss of one batch (logits N x classes, labels N), a scalar."""
    t = settings.temperature
    soft = F.kl_div(
        F.log_softmax(student_logits / t, dim=1), F.log_softmax(teacher_logits / t, dim=1),
        reduction="batchmean", log_target=True,
    )  # fmt: skip
    hard = F.cross_entropy(student_logits, labels)
    return settings.alpha * t * t * soft + (1.0 - settings.alpha) * hard


class Teacher:
    """A frozen copy of a model (the dense one) that gives logits for a batch."""

    def __init__(self, model: nn.Module, state: dict[str, torch.Tensor] | None = None):
        self.model = copy.deepcopy(model)
        if state is not None:
            self.model.load_state_dict(state)
        self.model.eval().requires_grad_(False)

    @torch.no_grad()
    def logits(self, images: torch.Tensor) -> torch.Tensor:
        return logits_of(self.model(images))
