"""Checkpoints: written so that one bad write loses one epoch at most, read with errors that name
the file, what is wrong with it and the fix, never a traceback from inside torch.

``last.pt`` (model, optimizer, schedule, training state and the config it was made under) is
written every epoch; the one before it is kept as ``last.prev.pt``. ``best.pt`` holds the weights
of the best validation epoch.
"""
from __future__ import annotations

import os
import pickle
import shutil
import zipfile
from pathlib import Path

import torch

LAST, PREVIOUS, BEST = "last.pt", "last.prev.pt", "best.pt"
RESUME_KEYS = ("model", "optimizer", "state")


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used; the message names the file and the fix."""


def save(obj: dict, path: Path, *, keep_previous: bool = False) -> None:
    """Write ``obj`` to ``path`` through a temporary file; with ``keep_previous`` the file it
    replaces stays as ``last.prev.pt``. ``path`` exists at every moment of the write, old or new:
    the previous file gets its second name by a hard link before the new one replaces it in one
    atomic rename, so a run killed at any point resumes from a complete checkpoint."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    try:
        torch.save(obj, tmp)
    except (RuntimeError, OSError) as e:  # a full disk: torch's "enforce fail at inline_container.cc"
        tmp.unlink(missing_ok=True)  # never leave a partial file filling the disk
        free = shutil.disk_usage(path.parent).free
        why = (str(e).strip().splitlines() or [type(e).__name__])[0][:100]
        raise CheckpointError(f"Checkpoint {path} could not be written ({why}): {free / 2**20:.0f} MB free in "
                              f"{path.parent}; the partial file was removed and the checkpoints before it are "
                              f"intact. Free some space (or move output.checkpoint_dir) and resume.") from None
    if keep_previous and path.is_file():
        prev = path.with_name(PREVIOUS)
        prev.unlink(missing_ok=True)
        try:
            os.link(path, prev)
        except OSError:  # a file system without hard links: a copy, still before the rename
            shutil.copyfile(path, prev)
    os.replace(tmp, path)


def leftovers(folder: Path) -> list[str]:
    """What a checkpoint folder holds besides ``last.pt`` from a write that was cut off."""
    return [p.name for p in (folder / PREVIOUS, folder / "last.tmp") if p.is_file()]


def epochs_done(folder: Path) -> int:
    """The epochs a started run's ``last.pt`` holds (0 where it has none, or one that cannot be
    read: resuming says what is wrong with it), read through a memory map, not the weights."""
    path = Path(folder) / LAST
    if not path.is_file():
        return 0
    try:
        return int(torch.load(path, map_location="cpu", weights_only=True, mmap=True)["state"]["epoch"])
    except (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError, zipfile.BadZipFile,
            KeyError, TypeError):
        return 0


def standing(folder: Path) -> str:
    """Where a started run stands, from its ``last.pt`` (memory-mapped): the validation curve so far
    (every epoch's accuracy in %, the best marked), and the step reached within an epoch when the
    last checkpoint was taken inside one; '' without a readable checkpoint."""
    path = Path(folder) / LAST
    if not path.is_file():
        return ""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)["state"]
    except (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError, zipfile.BadZipFile, KeyError,
            TypeError):
        return "checkpoint unreadable"
    curve = [float(h["val_acc"]) * 100 for h in state.get("history", [])]
    best = state.get("best_epoch", -1)
    text = "validation " + (" ".join(f"{v:.1f}{'*' if i + 1 == best else ''}" for i, v in enumerate(curve))
                            if curve else "not yet measured")
    partial = state.get("partial")
    if partial:
        text += f"; within epoch {int(partial['epoch']) + 1} at step {int(partial['done'])}"
    return text


def _fix(path: Path, resume: bool) -> str:
    if not resume:
        return ("the selected weights are lost with it: train the run again (set output.overwrite=true; the old "
                "record is kept aside)")
    prev = path.with_name(PREVIOUS)
    hint = (f"; the previous epoch's checkpoint is kept beside it: move {prev.name} to {path.name} to resume from "
            f"it" if prev.is_file() and prev != path else "")
    return f"remove it to start the run again{hint}"


def load(path: Path, device, *, resume: bool = False) -> dict:
    """A checkpoint, checked: ``resume`` wants the full state of ``last.pt``, else the weights."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"Checkpoint {path} does not exist.")
    if path.stat().st_size == 0:
        raise CheckpointError(f"Checkpoint {path} is empty (0 bytes): its write was cut off; {_fix(path, resume)}.")
    try:
        obj = torch.load(path, map_location=device, weights_only=True)
    except (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError, zipfile.BadZipFile,
            UnicodeDecodeError, AttributeError, KeyError, IndexError, TypeError) as e:
        reason = str(e).strip().splitlines()[0][:120] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"Checkpoint {path} cannot be read ({reason}): it is damaged or not a PyTorch "
                              f"checkpoint; {_fix(path, resume)}.") from None
    if not isinstance(obj, dict) or "model" not in obj:
        raise CheckpointError(f"Checkpoint {path} holds no model weights; {_fix(path, resume)}.")
    if resume and any(k not in obj for k in RESUME_KEYS):
        raise CheckpointError(f"Checkpoint {path} holds only a model's weights (like {BEST}), not the optimizer and "
                              f"training state a resume needs; {_fix(path, resume)}.")
    return obj
