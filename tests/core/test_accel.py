"""Device options (autocast, channels_last, masks on the device) and the batched CIFAR augmentation."""

import pytest
import torch
from conftest import finetune_recipe
from torch.nn import functional

from prunetui.core.accel import Acceleration, model_memory_format, wants_channels_last
from prunetui.core.augment import random_crop_flip
from prunetui.core.finetune import finetune
from prunetui.core.held_masks import masks_like_params
from prunetui.core.pruning import prune


def crop_of(out: torch.Tensor, padded: torch.Tensor) -> tuple[int, int, bool] | None:
    """The (top, left, flipped) window of `padded` that `out` is, or None."""
    h, w = out.shape[-2:]
    for top in range(padded.shape[-2] - h + 1):
        for left in range(padded.shape[-1] - w + 1):
            window = padded[:, top : top + h, left : left + w]
            for flipped in (False, True):
                if torch.equal(out, window.flip(-1) if flipped else window):
                    return top, left, flipped
    return None


@pytest.mark.parametrize(
    "images",  # no zeros of their own: padding is recognisable
    [torch.rand(64, 3, 32, 32) + 0.1, torch.randint(1, 256, (64, 3, 32, 32), dtype=torch.uint8)],
    ids=["float", "uint8"],
)
def test_random_crop_flip_is_the_labs_transform(images):
    out = random_crop_flip(images, generator=torch.Generator().manual_seed(0))
    assert out.shape == images.shape and out.dtype == images.dtype
    windows = [crop_of(o, functional.pad(i, (4, 4, 4, 4))) for o, i in zip(out, images, strict=True)]
    assert all(w is not None for w in windows)  # each a 32x32 window of its zero-padded image, maybe mirrored
    assert {w[2] for w in windows} == {False, True}
    assert len({(w[0], w[1]) for w in windows}) > 10  # offsets vary from image to image
    assert all(0 <= w[0] <= 8 and 0 <= w[1] <= 8 for w in windows)


def test_channels_last_is_held_only_while_needed(model):
    before = {k: v.clone() for k, v in model.state_dict().items()}
    params = list(model.parameters())
    with model_memory_format(model, True):
        assert model[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert list(model.parameters()) == params and all(p.is_contiguous() for p in params)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert wants_channels_last(Acceleration(), torch.device("cpu"))
    assert not wants_channels_last(Acceleration(channels_last=False), torch.device("cpu"))
    with pytest.raises(ValueError, match="amp"):
        Acceleration(amp="fp8")


def test_masks_like_params_match_layout_and_dtype(model):
    masks = prune(model, {"3.weight": 0.5})
    with model_memory_format(model, True):
        ready = masks_like_params(model, masks)["3.weight"]
    assert ready.dtype == torch.float32 and ready.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(ready.bool(), masks["3.weight"])


def test_finetune_with_bf16_autocast_keeps_the_masks(model, splits):
    masks = prune(model, {"0.weight": 0.5, "3.weight": 0.8})
    result = finetune(model, splits.train, splits.eval, masks, finetune_recipe(epochs=1, amp="bf16"))
    params = dict(model.named_parameters())
    assert result.completed == 1 and all(torch.all(params[n][~m] == 0) for n, m in masks.items())
    assert all(p.is_contiguous() for p in model.parameters())
