"""One process per run: an exclusive lock on the run, in its results and its checkpoint folders.

The lock is an ``fcntl.flock`` on ``.<run>.lock`` beside the run's folders (not inside them, which
``output.overwrite`` moves aside), holding the owner's process id and host. The kernel releases it
when its process ends, however it ends: the file a killed process leaves behind does not block a
resume. A second process on the same run stops at once, naming the run and the process holding it.
"""
from __future__ import annotations

import fcntl
import os
import socket
from contextlib import ExitStack, contextmanager
from pathlib import Path


class RunLockedError(RuntimeError):
    """Another live process holds the run (``holder``: which, as its lock file names it)."""

    def __init__(self, message: str, holder: str):
        super().__init__(message)
        self.holder = holder


def _holder(handle) -> str:
    handle.seek(0)
    return handle.read().strip() or "another process"


@contextmanager
def _lock(path: Path, run: str):
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(handle)
            raise RunLockedError(f"Run {run} is being trained by {holder} (lock {path}): wait for it to end, or "
                                 f"stop it; two processes on one run would overwrite each other.", holder) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"process {os.getpid()} on {socket.gethostname()}\n")
        handle.flush()
        yield
    finally:
        handle.close()  # closing releases the lock; the file stays (removing it would race a second locker)


@contextmanager
def run_lock(run: str, *folders: Path):
    """Hold the run's lock in each of ``folders`` (its results and checkpoint folders) meanwhile."""
    with ExitStack() as stack:
        for folder in dict.fromkeys(Path(f) for f in folders):
            stack.enter_context(_lock(folder.parent / f".{folder.name}.lock", run))
        yield
