"""Atomic file writes: temp files in the target's folder, fsync, then renames over the targets.

A failing disk (full, read-only, gone) surfaces as the OSError itself, naming the target, even when the
writer hides it: torch.save's zip writer reports a failed `write` as `RuntimeError("[enforce fail at
inline_container.cc] ... unexpected pos")` with the OSError only as its `__context__` (seen with torch
2.14 on a full tmpfs). `storage_error` turns such an OSError into the one-line UserError front ends show.
"""

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from prunetui.errors import UserError

Writer = Callable[[object], None]
# a folder that cannot be written at all (as opposed to a full or failing disk)
NOT_WRITABLE = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR}


def write_atomic(path: str | os.PathLike, write: Writer, binary: bool = False) -> Path:
    """Call `write(file)` on a temp file beside `path`, then rename it into place.

    A crash or a full disk leaves the old file (if any) untouched and no temp file behind. Raises
    OSError (filename: `path`) when the disk fails, whatever exception the writer raised for it.
    """
    return write_all([(path, write, binary)])[0]


def write_all(files: Sequence[tuple[str | os.PathLike, Writer, bool]]) -> list[Path]:
    """`write_atomic` for several files that belong together (a checkpoint and its side file): every
    temp file is written and synced before the first rename, so a full disk while writing leaves every
    target as it was. Each item: (path, write, binary). Raises as `write_atomic`."""
    staged: list[tuple[Path, Path]] = []
    target = Path(files[0][0]) if files else Path()
    try:
        for path, write, binary in files:
            target = Path(path)
            staged.append((_stage(target, write, binary), target))
        for tmp, target in staged:
            os.replace(tmp, target)
        for folder in {target.parent for _, target in staged}:
            _sync_folder(folder)
    except BaseException as error:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        _raise_disk_error(error, target)
        raise
    return [target for _, target in staged]


def _stage(target: Path, write: Writer, binary: bool) -> Path:
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    tmp = Path(name)
    try:
        os.fchmod(fd, _file_mode(target))  # mkstemp makes it private (0600); a saved file is not
        with open(fd, "wb" if binary else "w", encoding=None if binary else "utf-8") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
    except BaseException as error:
        tmp.unlink(missing_ok=True)
        _raise_disk_error(error, target)
        raise
    return tmp


@contextlib.contextmanager
def temp_folder(target: str | os.PathLike) -> Iterator[Path]:
    """A private folder beside `target` for a writer that writes files itself (the ONNX exporter and its
    external data); move what it wrote into place with `os.replace` before leaving. Removed on exit with
    whatever is left in it. Disk failures raise as `write_atomic`'s, naming `target`."""
    target = Path(target)
    try:
        folder = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    except OSError as error:
        _raise_disk_error(error, target)
        raise
    try:
        yield folder
    except BaseException as error:
        _raise_disk_error(error, target)
        raise
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def disk_error(error: BaseException) -> OSError | None:
    """The OSError behind `error`: itself, or one in its chain of causes and contexts (not past a
    `raise ... from None`); None if none."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, OSError):
            return current
        seen.add(id(current))
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    return None


def _raise_disk_error(error: BaseException, target: Path) -> None:
    """Raise the OSError behind `error` anew, naming `target`; return when there is none (or it does)."""
    found = disk_error(error)
    if found is not None and found.errno is not None and found.filename != str(target):
        raise OSError(found.errno, found.strerror or os.strerror(found.errno), str(target)) from error


def storage_error(error: OSError, hint: str = "") -> UserError:
    """The one line a front end shows for a failed write: `cannot write <path>: <reason>`, then `hint`
    (what is intact, what to do) when given. The path is the error's filename (write_all sets it)."""
    reason = error.strerror or str(error)
    where = f" {error.filename}" if error.filename else ""
    return UserError(f"cannot write{where}: {reason}" + (f"; {hint}" if hint else ""))


def _sync_folder(folder: Path) -> None:
    """fsync the folder, so the renames themselves survive a power cut (best effort: not on every OS)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _file_mode(target: Path) -> int:
    """The mode the file keeps (when it exists), else what `open` would give: 0666 less the umask."""
    try:
        return target.stat().st_mode & 0o777
    except FileNotFoundError:
        return 0o666 & ~_umask()


def _umask() -> int:
    """The process umask, read without changing it (os.umask sets it: not safe beside other threads)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    return 0o022
