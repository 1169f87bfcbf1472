"""Atomic file writes: a reader never sees a partial file, a crash never leaves a corrupt one."""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import BinaryIO, Iterator

from mqe.errors import MQEError


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[BinaryIO]:
    """Yields a binary file in ``path``'s directory; on success it is fsynced and renamed to ``path``.

    On any exception the temporary file is removed and ``path`` is left as it was. The temporary name
    ends in ``suffix`` (e.g. ``.tmp.npz``, so numpy never appends an extension of its own).
    """
    dst = os.path.abspath(os.fspath(path))
    directory = os.path.dirname(dst)
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(dst) + ".", suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        # mkstemp creates 0600 files; keep an existing file's mode, else 0644.
        os.chmod(tmp, os.stat(dst).st_mode & 0o7777 if os.path.exists(dst) else 0o644)
        os.replace(tmp, dst)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(directory)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_writer(path) as fh:
        fh.write(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def _fsync_dir(directory: str) -> None:
    # Persist the rename itself; not supported on every platform/filesystem.
    try:
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


class RunDirBusy(MQEError, RuntimeError):
    """Another process is writing the run directory (the message names it and that process)."""


class RunDirLock:
    """Holds ``<run_dir>/.lock`` (an OS file lock) while a process writes the run directory.

    Two writers of one run directory would interleave logs and checkpoints; the second gets a
    ``RunDirBusy`` naming the first. The OS drops the lock when its process dies, however it dies, so
    a killed run never leaves a stale lock behind."""

    def __init__(self, run_dir: str | os.PathLike):
        self.run_dir = os.fspath(run_dir)
        self.path = os.path.join(self.run_dir, ".lock")
        self._fd: int | None = None

    def __enter__(self) -> "RunDirLock":
        import fcntl

        os.makedirs(self.run_dir, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(fd, 200).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise RunDirBusy(f"{self.run_dir} is in use by another process ({holder}); two processes never "
                             "write one run directory: wait for it to finish, or choose another run directory"
                             ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {os.uname().nodename}".encode())
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing releases the lock
            self._fd = None
