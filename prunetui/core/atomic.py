"""Atomic file writes: a temp file in the same folder, fsync, then rename over the target."""

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def write_atomic(path: str | os.PathLike, write: Callable[[object], None], binary: bool = False) -> Path:
    """Call `write(file)` on a temp file beside `path`, then rename it into place.

    A crash or a full disk leaves the old file (if any) untouched and no half-written file behind.
    """
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb" if binary else "w", encoding=None if binary else "utf-8") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
