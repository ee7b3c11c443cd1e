"""The lab's CIFAR training augmentation, RandomCrop(32, padding=4) + RandomHorizontalFlip, on a whole
batch at once, on any device.

torchvision runs these per image on PIL images in the DataLoader, which is what a finetune on
CIFAR-size images waits for. Here a batch is zero-padded once and every image takes its own random
window, mirrored for a random half, in one indexing. The CIFAR-10 train loader (sources/data.py) applies
it to each stacked uint8 batch on the host; it runs as well on batches already on a GPU. It is for
images only: 1-D signals (N x C x L) get no augmentation (no data spec applies one to them).
"""

import torch
from torch.nn import functional

PADDING = 4  # the lab's RandomCrop(32, padding=4)


def random_crop_flip(
    images: torch.Tensor, padding: int = PADDING, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Each N x C x H x W image (any dtype, any device): a random H x W window of it zero-padded by
    `padding` pixels, then mirrored left-right with probability 1/2; same shape and dtype. Random numbers
    come from `generator` (one on the images' device), else from torch's global generator. Raises
    ValueError for a batch that is not N x C x H x W (1-D signals are not augmented)."""
    if images.dim() != 4:
        raise ValueError(f"random_crop_flip takes N x C x H x W images, not a {images.dim()}-D batch")
    n, _, h, w = images.shape
    device = images.device
    padded = functional.pad(images, (padding, padding, padding, padding))
    # Every window of the padded images and of their mirrors, as one view (2 x N x C x 9 x 9 x H x W for
    # padding 4): one indexing copies each image's own. The mirror's window at left offset l is the
    # mirror of the image's window at 2 * padding - l, so uniform offsets give the lab's draws.
    windows = torch.stack((padded, padded.flip(-1))).unfold(3, h, 1).unfold(4, w, 1)
    top = torch.randint(0, 2 * padding + 1, (n,), device=device, generator=generator)
    left = torch.randint(0, 2 * padding + 1, (n,), device=device, generator=generator)
    mirrored = (torch.rand(n, device=device, generator=generator) < 0.5).long()
    return windows[mirrored, torch.arange(n, device=device), :, top, left]
