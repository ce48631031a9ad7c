"""One process per run folder: an exclusive lock held for as long as a run trains in it.

Two processes in one folder (a second ``--resume`` while the first still runs, or a
resume of a run that was never stopped) both append to ``samples.jsonl``, and the
checkpoint then records the sizes of a file with steps twice in it. The lock is an
``flock`` on ``RUN/.lock``, which the system releases when the process ends, however it
ends, so a killed run's folder is free to resume at once. Where ``fcntl`` does not exist
(Windows) there is no lock.

>>> import tempfile
>>> root = Path(tempfile.mkdtemp())
>>> first = FolderLock.take(root)
>>> FolderLock.take(root)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
trainer.lock.FolderBusy: ...: another process (pid ...) is training in this folder; ...
>>> first.release()
>>> FolderLock.take(root).release()
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["LOCK_FILE", "FolderBusy", "FolderLock", "holds_files"]

LOCK_FILE = ".lock"


def holds_files(folder: Path) -> bool:
    """Whether `folder` exists and holds anything but a lock file (which a run that stopped
    while starting may leave alone there).

    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> FolderLock.take(root).release()
    >>> holds_files(root), holds_files(root / "absent")
    (False, False)
    """
    return folder.is_dir() and any(p.name != LOCK_FILE for p in folder.iterdir())


class FolderBusy(RuntimeError):
    """Another process holds the run folder."""


class FolderLock:
    """The lock on one run folder; `release` (or the process's end) gives it up."""

    def __init__(self, handle: IO[str] | None) -> None:
        self._handle = handle

    @classmethod
    def take(cls, root: Path) -> FolderLock:
        """Lock `root` (which exists) or raise `FolderBusy` naming the holder's pid."""
        if fcntl is None:  # pragma: no cover - Windows
            return cls(None)
        handle = open(root / LOCK_FILE, "a+")  # noqa: SIM115 - held until release
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "?"
            handle.close()
            raise FolderBusy(
                f"{root}: another process (pid {holder}) is training in this folder; wait"
                " for it to end, or stop it, then --resume the folder"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        return cls(handle)

    def release(self) -> None:
        if self._handle is not None:
            self._handle.close()  # closing the file gives the lock up
            self._handle = None
