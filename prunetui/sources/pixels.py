"""How an image file's pixels become a C x H x W float tensor for a model with C input channels.

The model's input channel count decides what every image is read as (sources/fit.py `input_channels`:
its first convolution's): 1 -> one channel (PIL mode L), 3 -> three (RGB); unknown (no convolution) ->
one channel when every image of the folder is single-band, else three; any other count -> RGB (the
start-up fit check then names the mismatch). Each image is converted on its own, by its mode:

- 8-bit (L, RGB, and what PIL converts to them: 1-bit `1`, palette `P`/`PA`, `RGBA`, `LA`, CMYK, YCbCr):
  PIL's `convert` to L or RGB, then value / 255 (torchvision's ToTensor). A palette image becomes its
  palette's RGB colours; an alpha channel is dropped (the colour values as stored, as torchvision's
  ImageFolder reads RGBA), not composited; RGB becomes one channel as PIL's luma,
  L = R * 299/1000 + G * 587/1000 + B * 114/1000 (ITU-R 601-2).
- 16-bit grayscale (`I;16`, `I;16B`, `I;16L`, `I;16N`, and 32-bit `I`, which must hold 0..65535):
  value / 65535, the full range (PIL's own convert clamps at 255, so every pixel would read 1.0:
  pytorch/vision#2218, python-pillow/Pillow#2574), the channel repeated for a 3-channel model.
- 32-bit float grayscale (`F`): the values as stored, repeated for a 3-channel model.
- 16-bit RGB(A) and LA PNGs: PIL decodes them to 8 bits per channel (the top byte): full range, steps of
  1/255; then as RGB/RGBA above.

`reading_note` says, once per folder, what was converted and how.
"""

from collections import Counter
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N", "I")
SINGLE_BAND = ("1", "L", "F", *SIXTEEN_BIT)
GRAY, COLOUR = "L", "RGB"
_RANGE = 65535
_KIND_TEXT = {
    "1": "1-bit (0 or 1)",
    "L": "8-bit grayscale",
    "F": "32-bit float grayscale (values as stored)",
    "LA": "grayscale + alpha (alpha dropped)",
    "P": "palette (its RGB colours; transparency ignored)",
    "PA": "palette + alpha (its RGB colours, alpha dropped)",
    "RGB": "RGB",
    "RGBA": "RGBA (alpha dropped, as torchvision's ImageFolder; not composited)",
    "RGB;16": "16-bit RGB (PIL keeps the top 8 bits: full range)",
    "RGBA;16": "16-bit RGBA (PIL keeps the top 8 bits; alpha dropped)",
    "LA;16": "16-bit grayscale + alpha (PIL keeps the top 8 bits; alpha dropped)",
}
_SIXTEEN_TEXT = "16-bit grayscale {mode} (value / 65535: the full range)"


def image_kind(image: Any) -> str:
    """The PIL image's mode, with `;16` added for a 16-bit colour PNG PIL decodes to 8 bits (its
    rawmode says so, e.g. `RGB;16B`). Read from the header: nothing is decoded."""
    tile = getattr(image, "tile", None) or []
    rawmode = tile[0][3] if tile and len(tile[0]) > 3 else None
    rawmode = rawmode[0] if isinstance(rawmode, tuple) and rawmode else rawmode
    if image.mode not in SIXTEEN_BIT and isinstance(rawmode, str) and ";16" in rawmode:
        return f"{rawmode.split(';')[0]};16"
    return image.mode


def check_range(image: Any) -> None:
    """A decoded 32-bit integer (`I`) image must hold 16-bit values (read as value / 65535).
    Raises ValueError naming the values found."""
    if image.mode == "I":
        low, high = image.getextrema()
        if low < 0 or high > _RANGE:
            raise ValueError(f"32-bit values {low}..{high}, outside the 16-bit range 0..65535 read here")


def target_mode(channels: int | None, kinds: Mapping[str, int]) -> str:
    """GRAY (one channel) or COLOUR (three) for a model of `channels` inputs (None: unknown) and the
    folder's image kinds (image_kind -> count): the module doc's rule."""
    if channels == 1 or (channels is None and all(kind in SINGLE_BAND for kind in kinds)):
        return GRAY
    return COLOUR


def pixels(image: Any, target: str) -> torch.Tensor:
    """The decoded PIL `image` as a C x H x W float tensor (C = 1 for GRAY, 3 for COLOUR), values as
    the module doc says (in [0, 1] except `F` images)."""
    if image.mode in SIXTEEN_BIT:
        gray = torch.from_numpy(np.asarray(image, dtype=np.float32) / np.float32(_RANGE))
    elif image.mode == "F":
        gray = torch.from_numpy(np.array(image, dtype=np.float32))
    else:
        from torchvision.transforms.functional import to_tensor

        if image.mode == "P" and "transparency" in image.info:
            image = image.convert("RGBA")  # PIL warns on stderr converting these to RGB or L directly
        return to_tensor(image.convert(target))
    gray = gray.unsqueeze(0)
    return gray if target == GRAY else gray.expand(3, -1, -1).clone()


def reading_key(kinds: Mapping[str, int], target: str) -> str:
    """How a folder of these image kinds is read, for its data fingerprint: "" when every image is RGB and
    read as RGB (the one reading there was before), else the target and the kinds."""
    return "" if target == COLOUR and set(kinds) <= {COLOUR} else f"{target}:{','.join(sorted(kinds))}"


def reading_note(kinds: Counter, target: str, channels: int | None) -> str | None:
    """One line saying how the images were read, or None when every image was already of the target
    (RGB for three channels, L for one)."""
    if set(kinds) <= {target}:
        return None
    why = (
        f"for the model's {channels} input channel{'s' if channels != 1 else ''}"
        if channels is not None
        else "(the model's input channels unknown: "
        + ("every image is single-band)" if target == GRAY else "not every image is single-band)")
    )
    parts = [f"{count} {_kind_text(kind, target)}" for kind, count in sorted(kinds.items())]
    return f"read as {'1 channel (L)' if target == GRAY else '3 channels (RGB)'} {why}: {', '.join(parts)}"


def _kind_text(kind: str, target: str) -> str:
    text = _SIXTEEN_TEXT.format(mode=kind) if kind in SIXTEEN_BIT else _KIND_TEXT.get(kind, f"{kind} (PIL)")
    if target == COLOUR and kind in SINGLE_BAND:
        return f"{text}, the channel repeated"
    if target == GRAY and kind not in SINGLE_BAND and kind not in ("LA", "LA;16"):
        return f"{text}, as luma 0.299 R + 0.587 G + 0.114 B"
    return text
