"""One rule for what a model's forward returns: the logits, whatever the container.

- a tensor: the logits;
- a mapping (`{"logits": ...}`, torchvision segmentation's `{"out": ..., "aux": ...}`): the
  `logits` key, else `out`;
- a tuple or list, namedtuples included (`(logits, features)`, GoogLeNet's and Inception's
  `(logits, aux_logits...)` in train mode): the first element.
Auxiliary outputs are ignored (not added to the loss). Anything else raises UserError.
"""

from collections.abc import Mapping

import torch

from prunetui.errors import UserError

LOGIT_KEYS = ("logits", "out")


def logits_of(output: object) -> torch.Tensor:
    """The logits tensor (N x classes) in a forward's `output`; UserError when there is none."""
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, Mapping):
        for key in LOGIT_KEYS:
            if isinstance(output.get(key), torch.Tensor):
                return output[key]
        raise UserError(
            f"the model returns a dict with keys {sorted(map(str, output))[:6]}: "
            f"expected a '{LOGIT_KEYS[0]}' or '{LOGIT_KEYS[1]}' tensor"
        )
    if isinstance(output, tuple | list) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    raise UserError(
        f"the model returns {type(output).__name__}: expected a logits tensor, a tuple whose first "
        f"element is the logits, or a dict with a '{LOGIT_KEYS[0]}' key"
    )
