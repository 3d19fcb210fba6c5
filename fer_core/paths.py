"""Where the project's folders are, whether code runs from the root, notebooks/ or a test."""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if not (ROOT / "pyproject.toml").is_file():  # installed without the checkout: anchor at the cwd
    ROOT = Path.cwd()


def checkout_of(path: str | Path) -> Path | None:
    """The checkout of this project that holds ``path`` (the nearest folder above it with
    ``pyproject.toml`` and ``fer_core/``), or None: a queue run from a worktree writes its records
    into the main checkout's ``results/``, and they belong to that checkout, not to the worktree."""
    for folder in Path(path).resolve().parents:
        if (folder / "pyproject.toml").is_file() and (folder / "fer_core").is_dir():
            return folder
    return None


def project_path(p: str | Path) -> Path:
    """A relative output path (results, checkpoints) anchored at the project root, so runs land
    in the same place from the root, from notebooks/ or from papermill."""
    p = Path(p).expanduser()
    return p if p.is_absolute() else ROOT / p


def params_file(profile: str) -> Path:
    """``params/<profile>.yaml`` of this checkout (a path to a file also works)."""
    p = Path(profile)
    if p.suffix in (".yaml", ".yml") and p.is_file():
        return p
    f = ROOT / "params" / f"{profile}.yaml"
    if not f.is_file():
        known = sorted(x.stem for x in (ROOT / "params").glob("*.yaml"))
        raise FileNotFoundError(f"No profile {profile!r}: {f} does not exist. Profiles: {known}.")
    return f


# -- file names every floor reads ------------------------------------------------------------------
# A run record's files: fer_core.runs.records writes them, the other floors (attention, data,
# the book) find them by these names.
FINISHED = "metrics.json"  # written last but one: a complete run
ATTENTION = "attention.npz"  # the attention record (fer_core.explain.attention)
DUPLICATE_FREE = "duplicate_free.json"  # FER2013's scores without its training twins (fer_core.data.duplicates)
MANIFEST = "manifest.json"  # the SHA-256 of every file and the record's identity, written last

BENCH = "results/bench"  # the measured speeds and the queues' saved statuses


def bench_file(name: str) -> Path:
    """``results/bench/<name>.csv`` of this checkout: ``train_<device>`` (the book loop's measured
    speed), ``models`` (the registry's sizes), ``queue_<name>`` (a queue's saved status)."""
    return project_path(f"{BENCH}/{name}.csv")
