"""Knowledge distillation while finetuning a pruned model (Hinton et al. 2015).

loss = alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T)) + (1 - alpha) * CE(student, labels)

The T^2 keeps the soft term's gradients at the scale of the hard term's as T grows (Hinton et al.,
section 2). The teacher (the model as it was opened) runs in eval mode without gradients on the same
batch; its temperature and alpha come from the recipe (core.recipe.Recovery), which checks them.
"""

import torch
from torch.nn import functional as F


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor,
    temperature: float,
    alpha: float,
) -> torch.Tensor:
    """The combined loss of one batch (logits N x classes, labels N), a scalar."""
    t = temperature
    soft = F.kl_div(
        F.log_softmax(student_logits / t, dim=1), F.log_softmax(teacher_logits / t, dim=1),
        reduction="batchmean", log_target=True,
    )  # fmt: skip
    hard = F.cross_entropy(student_logits, labels)
    return alpha * t * t * soft + (1.0 - alpha) * hard
