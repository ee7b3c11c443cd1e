"""A pretrained checkpoint for another class count (an ImageNet checkpoint opened as `timm:NAME:10` or
`torchvision:resnet18:10`): every weight is loaded but the classifier's, which keeps the model's own
initialisation and needs finetuning.

The classifier is timm's convention where the model has one, `pretrained_cfg['classifier']` (a module
name, or several: DeiT's `head` and `head_dist`); otherwise the model's last nn.Linear in `modules()` order
(torchvision's `fc`, `classifier.6`, `heads.head`, ...), or its last convolution when it has no Linear
(SqueezeNet's `classifier.1`).

Accepted only when every key that does not fit is a classifier's: a shape mismatch in the class count
alone (dim 0, the same two counts as the classifier's; auxiliary heads such as GoogLeNet's `aux1.fc2`
count as classifiers then), or a classifier key the checkpoint lacks (a features-only checkpoint). Any
other mismatch, and any key the model does not have, stays the loader's error (sources/checkpoints.py).
A zoo spec without a class count (`torchvision:resnet18`, the zoo's 1000) is refused instead, naming the
checkpoint's count (sources/models.py): a forgotten `:10` should not discard a trained classifier.
"""

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class NewHead:
    """The classifier keys left as the model initialised them, and the class counts."""

    keys: list[str]  # model state_dict names, in model order
    checkpoint_classes: int | None  # None: the checkpoint holds no classifier
    model_classes: int

    def note(self, path: str) -> str:
        """One line for the user: what was re-initialised, and that it needs finetuning."""
        modules = ", ".join(dict.fromkeys(key.rpartition(".")[0] for key in self.keys))
        held = (
            f"holds no classifier ({modules})"
            if self.checkpoint_classes is None
            else f"is for {self.checkpoint_classes} classes, the model for {self.model_classes}"
        )
        return (
            f"checkpoint {path} {held}: every other weight loaded, {modules} re-initialised: finetune "
            "before trusting its accuracy"
        )


def classifier_modules(model: nn.Module) -> list[str]:
    """The names of the model's classifier modules (the module doc's rule); [] when it has none."""
    modules = dict(model.named_modules())
    configured = (getattr(model, "pretrained_cfg", None) or {}).get("classifier")
    if configured:
        names = [configured] if isinstance(configured, str) else list(configured)
        return [name for name in names if name in modules]
    for kinds in ((nn.Linear,), (nn.modules.conv._ConvNd,)):
        last = [name for name, module in modules.items() if isinstance(module, kinds)]
        if last:
            return last[-1:]
    return []


def new_head(
    model: nn.Module, state: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Tensor]
) -> NewHead | None:
    """The NewHead when `state` (checkpoint names mapped to the model's) fits `expected` (the model's
    state_dict) but for its classifier; None otherwise."""
    classifier = classifier_modules(model)
    weights = [f"{name}.weight" for name in classifier if f"{name}.weight" in expected]
    if not weights or any(key not in expected for key in state):
        return None
    counts = {_counts(state, expected, key) for key in weights}
    if len(counts) != 1:
        return None
    (checkpoint_classes, model_classes) = counts.pop()
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    mismatched = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    if not missing + mismatched or not all(_under(key, classifier) for key in missing):
        return None
    if checkpoint_classes is None and mismatched:
        return None
    for key in mismatched:
        if _counts(state, expected, key) != (checkpoint_classes, model_classes) or not _same_rest(
            state[key], expected[key]
        ):
            return None
    keys = [k for k in expected if k in missing or k in mismatched]
    return NewHead(keys, checkpoint_classes, model_classes)


def _counts(
    state: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Tensor], key: str
) -> tuple[int | None, int]:
    checkpoint = state[key].shape[0] if key in state and state[key].dim() > 0 else None
    return checkpoint, expected[key].shape[0]


def _same_rest(checkpoint: torch.Tensor, model: torch.Tensor) -> bool:
    return checkpoint.dim() == model.dim() > 0 and checkpoint.shape[1:] == model.shape[1:]


def _under(key: str, modules: list[str]) -> bool:
    return any(key.startswith(f"{name}.") for name in modules)
