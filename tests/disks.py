"""Storage faults for tests: a small disk that fills up, and a folder that cannot be written.

`small_disk(tmp_path, kind)` gives a folder on a disk of DISK_BYTES:
- "tmpfs": a real tmpfs mounted there (needs root with CAP_SYS_ADMIN: `mount`; skipped otherwise, saying
  so). Writes past its size fail in the kernel with ENOSPC, whatever library writes.
- "injected": a plain folder where every file opened for writing inside it by `open` (builtins.open and
  io.open, which os.fdopen, torch.save's file writer and the ONNX exporter use) fails with
  OSError(ENOSPC) once the folder would hold more than DISK_BYTES: the OS boundary of these writers,
  for machines where no tmpfs can be mounted. Runs everywhere.
`read_only_folder(tmp_path)` gives a folder nobody can create files in: chmod 0o555 for a normal user;
as root (chmod does not stop root) a read-only bind mount (EROFS), else a folder whose place is taken by
a file (ENOTDIR: nothing can be written under it, by root either).
"""

import builtins
import contextlib
import errno
import io
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

DISK_BYTES = 64 * 1024
KINDS = ["tmpfs", "injected"]


class Disk:
    def __init__(self, path: Path, kind: str):
        self.path, self.kind = path, kind

    def used(self) -> int:
        return sum(p.stat().st_size for p in self.path.rglob("*") if p.is_file())

    def free(self) -> int:
        if self.kind == "tmpfs":
            stat = os.statvfs(self.path)
            return stat.f_bavail * stat.f_frsize
        return DISK_BYTES - self.used()

    def fill(self, leave: int = 0) -> None:
        """A filler file, so that `leave` bytes stay free (a tmpfs counts whole 4 KiB pages)."""
        size = max(self.free() - leave, 0)
        with open(self.path / "filler", "wb") as f:
            f.write(b"\0" * size)

    def names(self) -> list[str]:
        return sorted(p.name for p in self.path.iterdir() if p.name != "filler")


@contextlib.contextmanager
def small_disk(tmp_path: Path, kind: str) -> Iterator[Disk]:
    path = tmp_path / "disk"
    path.mkdir()
    if kind == "tmpfs":
        if not _run("mount", "-t", "tmpfs", "-o", f"size={DISK_BYTES}", "tmpfs", str(path)):
            pytest.skip("mounting a tmpfs needs root with CAP_SYS_ADMIN; the 'injected' disk covers this")
        try:
            yield Disk(path, kind)
        finally:
            _unmount(path)
        return
    with pytest.MonkeyPatch.context() as patch:
        fake = _small_open(builtins.open, path.resolve())
        patch.setattr(builtins, "open", fake)
        patch.setattr(io, "open", fake)
        yield Disk(path, kind)


@contextlib.contextmanager
def read_only_folder(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "read-only"
    path.mkdir()
    (path / "profile.toml").write_text('name = "p"\n[sparsity]\n"backbone.conv3.weight" = 0.5\n')
    if os.geteuid() != 0:
        path.chmod(0o555)
        try:
            yield path
        finally:
            path.chmod(0o755)
        return
    if _run("mount", "--bind", str(path), str(path)):
        try:
            if _run("mount", "-o", "remount,ro,bind", str(path)):
                yield path
                return
        finally:
            _unmount(path)
    # root without mount: a read-only folder cannot be made; a file where `.prunetui` goes stops writes
    # under it as surely (ENOTDIR), and the store names the folder the same way
    (path / ".prunetui").write_text("not a folder")
    yield path


def _unmount(path: Path) -> None:
    """Unmount `path`, first leaving it if the test chdir'ed into it (a busy mount cannot be unmounted)."""
    if Path.cwd().is_relative_to(path):
        os.chdir(path.parent)
    if not _run("umount", str(path)):
        _run("umount", "-l", str(path))


def _run(*command: str) -> bool:
    if shutil.which(command[0]) is None:
        return False
    return subprocess.run(command, capture_output=True, check=False).returncode == 0


class _SmallDiskFile(io.FileIO):
    """A file on the injected disk: a write that would make the folder hold more than DISK_BYTES fails."""

    folder: Path

    def write(self, data) -> int:
        size = memoryview(data).nbytes
        used = sum(p.stat().st_size for p in self.folder.rglob("*") if p.is_file())
        if used + size > DISK_BYTES:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return super().write(data)


def _small_open(real_open, folder: Path):
    def fake_open(
        file, mode="r", buffering=-1, encoding=None, errors=None, newline=None, closefd=True, opener=None
    ):
        if not any(c in mode for c in "wax+") or not _inside(file, folder):
            return real_open(file, mode, buffering, encoding, errors, newline, closefd, opener)
        raw = _SmallDiskFile(file, mode.replace("b", "").replace("t", ""), closefd, opener)
        raw.folder = folder
        buffered = io.BufferedRandom(raw) if "+" in mode else io.BufferedWriter(raw)
        if "b" in mode:
            return buffered
        return io.TextIOWrapper(buffered, encoding or "utf-8", errors, newline)

    return fake_open


def _inside(file, folder: Path) -> bool:
    try:
        name = os.readlink(f"/proc/self/fd/{file}") if isinstance(file, int) else os.path.abspath(file)
    except (OSError, TypeError):
        return False
    return str(name).startswith(f"{folder}{os.sep}")
