"""The one image-folder scanner behind `imagefolder:DIR`: DIR/train and DIR/val, one sub-folder per class.

What is read:
- class folders are the non-hidden sub-folders of train/ and val/, sorted by name (label = position);
  images are found recursively inside each (symlinks followed), sorted by path;
- an image is a file with one of torchvision's IMG_EXTENSIONS (any case);
- ignored, and counted in a note: hidden entries (a name starting with "." at any depth: `.ipynb_checkpoints`,
  `.DS_Store`, macOS `._*` files, `.git`; and macOS's `__MACOSX`) and files with other extensions.

Every image is checked before any job, cheaply: PIL reads its header (a non-image or a zero-byte file
fails here); a PNG is `verify()`-ed (every chunk's CRC up to IEND: truncation and corruption, nothing
decoded); a JPEG must end with its end-of-image marker (within the last KiB), else it is fully decoded,
so files with trailing data still pass; other formats are fully decoded. All images must have one size
(prunetui does not resize). What each image is read as (one channel or three, 16-bit at its full range,
palette and alpha) is sources/pixels.py's rule, decided by the model's input channels; a note says once
what was converted and how.

Errors (UserError, one line naming the paths): a missing split folder, no class folders, class folders
with no image, class folders that differ between train and val, an unreadable image, images of two sizes.
"""

import os
from collections import Counter
from dataclasses import dataclass, field

import torch
from torch.utils.data import Dataset

from prunetui.errors import UserError
from prunetui.sources.pixels import check_range, image_kind, pixels, reading_key, reading_note, target_mode

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
_JPEG_END = b"\xff\xd9"
_TAIL_BYTES = 1024
_SHOWN = 3


@dataclass
class Split:
    """One split's classes, (path, label) samples, and what was left out (relative paths)."""

    folder: str
    classes: list[str]
    samples: list[tuple[str, int]]
    hidden: list[str] = field(default_factory=list)
    not_images: list[str] = field(default_factory=list)


class ImageFiles(Dataset):
    """(C x H x W float tensor, label) for each (path, label), read as `mode` (sources/pixels.py: "L"
    one channel, "RGB" three); an image that cannot be decoded is a UserError naming it."""

    def __init__(self, split: Split, mode: str = "RGB", reading: str = "") -> None:
        self.samples = split.samples
        self.classes = split.classes
        self.targets = [label for _, label in split.samples]
        self.mode = mode
        self.reading = reading  # pixels.reading_key: what the data fingerprint adds

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path, label = self.samples[index]
        return _read(path, self.mode), label


def read_image_folder(
    root: str, spec: str, channels: int | None = None
) -> tuple[ImageFiles, ImageFiles, list[str]]:
    """Scan and check root/train and root/val: (train, val, notes), the images read for a model of
    `channels` input channels (None: unknown; sources/pixels.py's rule). Raises UserError (module doc)."""
    train, val = (scan_split(os.path.join(root, name), spec) for name in ("train", "val"))
    _check_same_classes(train, val, spec)
    kinds = _check_images([*train.samples, *val.samples], spec)
    mode = target_mode(channels, kinds)
    reading = reading_note(kinds, mode, channels)
    notes = _notes(root, [train, val]) + ([f"imagefolder {root}: {reading}"] if reading else [])
    key = reading_key(kinds, mode)
    return ImageFiles(train, mode, key), ImageFiles(val, mode, key), notes


def scan_split(folder: str, spec: str) -> Split:
    """The class folders and images of one split; hidden and non-image entries set aside."""
    if not os.path.isdir(folder):
        raise UserError(f"data spec '{spec}': expected a folder {folder} with one subfolder per class")
    split = Split(folder, [], [])
    with os.scandir(folder) as entries:
        for entry in sorted(entries, key=lambda e: e.name):
            if is_hidden(entry.name):
                split.hidden.append(entry.name)
            elif entry.is_dir():
                split.classes.append(entry.name)
            else:
                split.not_images.append(entry.name)  # a stray file beside the class folders
    if not split.classes:
        raise UserError(f"data spec '{spec}': no class folders in {folder} (one subfolder per class)")
    empty = [name for label, name in enumerate(split.classes) if not _add_class(split, name, label)]
    if empty:
        raise UserError(
            f"data spec '{spec}': class folders with no image in {folder}: {_first(empty)} "
            f"(add images, or remove the folders from train and val; images end in {', '.join(IMG_EXTENSIONS)})"
        )
    return split


def is_hidden(name: str) -> bool:
    """Dot-files and dot-folders (.ipynb_checkpoints, .DS_Store, ._photo.jpg) and macOS's __MACOSX."""
    return name.startswith(".") or name == "__MACOSX"


def is_image(name: str) -> bool:
    return name.lower().endswith(IMG_EXTENSIONS)


def _add_class(split: Split, name: str, label: int) -> int:
    """Add the images under class folder `name`; returns how many."""
    found = 0
    for folder, subfolders, files in os.walk(os.path.join(split.folder, name), followlinks=True):
        relative = os.path.relpath(folder, split.folder)
        split.hidden += [os.path.join(relative, d) for d in subfolders if is_hidden(d)]
        subfolders[:] = sorted(d for d in subfolders if not is_hidden(d))
        for file in sorted(files):
            if is_hidden(file):
                split.hidden.append(os.path.join(relative, file))
            elif is_image(file):
                split.samples.append((os.path.join(folder, file), label))
                found += 1
            else:
                split.not_images.append(os.path.join(relative, file))
    return found


def _check_same_classes(train: Split, val: Split, spec: str) -> None:
    only_train = [c for c in train.classes if c not in val.classes]
    only_val = [c for c in val.classes if c not in train.classes]
    if only_train or only_val:
        parts = [
            f"only in {s.folder}: {_first(names)}"
            for s, names in ((train, only_train), (val, only_val))
            if names
        ]
        raise UserError(
            f"data spec '{spec}': train and val must have the same class folders ({'; '.join(parts)})"
        )


def _check_images(samples: list[tuple[str, int]], spec: str) -> Counter:
    """Check every image (check_image) and one size for all; returns how many of each kind (pixels.py)."""
    sizes: dict[tuple[int, int], str] = {}
    kinds: Counter = Counter()
    for path, _ in samples:
        size, kind = check_image(path, spec)
        kinds[kind] += 1
        sizes.setdefault(size, path)
        if len(sizes) > 1:
            (first_size, first), (other_size, other) = sizes.items()
            raise UserError(
                f"data spec '{spec}': images differ in size ({first} is {_size_text(first_size)}, {other} "
                f"is {_size_text(other_size)}); prunetui does not resize, so give all images one size"
            )
    return kinds


def check_image(path: str, spec: str) -> tuple[tuple[int, int], str]:
    """The image's (width, height) and kind (pixels.image_kind) after the cheap check in the module doc
    (a decoded 32-bit `I` image must hold 16-bit values: pixels.check_range); UserError naming it if bad."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            size, image_format, kind = image.size, image.format, image_kind(image)
            if image_format == "PNG":
                image.verify()
            elif image_format != "JPEG" or not _ends_like_jpeg(path):
                image.load()
                check_range(image)
    except Exception as error:  # PIL raises OSError, SyntaxError, ValueError... for damaged files
        raise UserError(
            f"data spec '{spec}': cannot read image {path} ({_reason(error)}): replace or remove it"
        ) from error
    return size, kind


def _ends_like_jpeg(path: str) -> bool:
    with open(path, "rb") as file:
        file.seek(max(0, os.path.getsize(path) - _TAIL_BYTES))
        return _JPEG_END in file.read()


def _read(path: str, mode: str) -> torch.Tensor:
    from PIL import Image

    try:
        with Image.open(path) as image:
            image.load()
            check_range(image)
            return pixels(image, mode)
    except Exception as error:  # the file changed on disk after the check
        raise UserError(f"cannot read image {path} ({_reason(error)}): replace or remove it") from error


def _notes(root: str, splits: list[Split]) -> list[str]:
    hidden = [name for s in splits for name in s.hidden]
    others = [name for s in splits for name in s.not_images]
    parts = [
        f"{len(names)} {what} ({_first(sorted({os.path.basename(n) for n in names}))})"
        for what, names in (("hidden entries", hidden), ("non-image files", others))
        if names
    ]
    return [f"imagefolder {root}: ignored {' and '.join(parts)}"] if parts else []


def _reason(error: Exception) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return text[:100]


def _size_text(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


def _first(items: list[str]) -> str:
    shown = ", ".join(items[:_SHOWN])
    rest = len(items) - _SHOWN
    return f"{shown} and {rest} more" if rest > 0 else shown
