"""What a data spec's data IS, as one short string: caches are keyed by it, never by the spec's name.

One rule per kind of spec, each covering both splits (the taylor method scores weights on training
batches, every scan evaluates on the eval split):
- data files (`tensor:FILE`, the CIFAR-10 batches, the MNIST idx files): a sha256 of their bytes, in a
  fixed order. Measured at about 2 GB/s on one core, so a 50 MB file costs ~25 ms, no more than loading it
  (which has just put the file in the page cache). A copy at another path has the same fingerprint; a file
  rewritten in place (same size, even the same mtime) does not.
- image folders: every image actually used (after the scanner's rules in sources/imagefolder.py), by its
  path relative to DIR, label, size and mtime_ns, plus the class list. Reading every image would cost
  as much as the data itself on a large folder; a stat is a few microseconds. A copy that keeps mtimes
  (`cp -a`, rsync -a, shutil.copytree) has the same fingerprint; replacing, adding or removing an image
  changes it, and so does reading the images another way (one channel or three, sources/pixels.py).
- in-memory tensors (`digits`: scikit-learn's copy after the fixed split): a sha256 of their bytes.
- `random:N:CxHxW`: the spec itself, since it is generated from a fixed seed.
"""

import hashlib
import os
from collections.abc import Iterable, Sequence

import torch


def of_files(kind: str, paths: Iterable[str]) -> str:
    """`kind` and a sha256 of the files' bytes, in the order given (their names and folders do not count)."""
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as file:
            digest.update(hashlib.file_digest(file, "sha256").digest())
    return _text(kind, digest)


def of_image_folder(
    root: str, splits: Sequence[tuple[str, list[str], list[tuple[str, int]]]], reading: str = ""
) -> str:
    """`imagefolder` and a sha256 of each split's name, classes and (path under root, label, size,
    mtime_ns) of every image it uses, and `reading` (sources/pixels.py `reading_key`: how the images
    are read; "" for RGB images read as RGB, whose fingerprint is the one they had before)."""
    digest = hashlib.sha256()
    if reading:
        digest.update(f"reading:{reading}\n".encode())
    for name, classes, samples in splits:
        digest.update(f"{name}:{len(classes)}:{'/'.join(classes)}\n".encode())
        for path, label in samples:
            stat = os.stat(path)
            line = f"{os.path.relpath(path, root)}:{label}:{stat.st_size}:{stat.st_mtime_ns}\n"
            digest.update(line.encode())
    return _text("imagefolder", digest)


def of_tensors(kind: str, tensors: Iterable[torch.Tensor]) -> str:
    """`kind` and a sha256 of the tensors' dtypes, shapes and bytes, in the order given."""
    digest = hashlib.sha256()
    for tensor in tensors:
        flat = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{flat.dtype}:{tuple(tensor.shape)}\n".encode())
        digest.update(flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b"")
    return _text(kind, digest)


def _text(kind: str, digest) -> str:
    return f"{kind}:{digest.hexdigest()[:32]}"
