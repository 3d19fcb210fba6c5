"""Before the first batch: every folder a run writes to is writable, and the disk has room."""
from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from pathlib import Path


class PreflightError(RuntimeError):
    """A run would fail later for a reason that is known now; the message names the folder."""


def writable(folder: Path, what: str) -> None:
    """Create ``folder`` if needed and really write (and remove) a file in it."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".preflight-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise PreflightError(f"The {what} folder {folder} is not writable ({e.strerror or e}): fix its permissions or "
                             f"choose another one before training (nothing was trained).") from None


def checkpoint_bytes(n_parameters: int, optimizer_slots: int) -> int:
    """What the checkpoints of a run take at their fullest: last.pt (weights and optimizer state),
    last.prev.pt, and last.tmp (the new last.pt being written beside them), plus best.pt (weights),
    in float32."""
    return 4 * n_parameters * (3 * (1 + optimizer_slots) + 1)


def disk_space(folder: Path, needed: int) -> None:
    """Warn, with the figures, when ``folder``'s disk has less room than ``needed`` bytes."""
    free = shutil.disk_usage(folder).free
    if free < needed:
        warnings.warn(f"{folder}: {free / 2**30:.1f} GB free, the run's checkpoints take about {needed / 2**30:.1f} GB "
                      f"(last.pt with the optimizer state, last.prev.pt, the last.tmp of a write and best.pt): "
                      f"free some space or move output.checkpoint_dir.", stacklevel=3)
