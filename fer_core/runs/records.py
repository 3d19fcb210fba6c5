"""Run records: ``results/<experiment>/<run>/`` with metrics, history, predictions, the resolved
config and provenance. Small text files, meant to be committed; checkpoints live elsewhere.

An existing run is never overwritten silently: a finished run is an error unless
``output.overwrite`` is set, and even then the old record is moved aside (to
``results/superseded/replaced/``, out of the published view), not deleted. A finished record is
sealed by its manifest (:func:`seal`, :func:`verify`): the SHA-256 of each file and its identity.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from .. import data as fer_data
from ..config import Config, cross_validated, identity_hash
from ..data import duplicates
from ..paths import ATTENTION, DUPLICATE_FREE, FINISHED, MANIFEST, project_path
from ..train import checkpoints
from ..train.hardware import cpu_info

PACKAGES = ("torch", "torchvision", "numpy", "scikit-learn", "pandas", "pillow", "timm", "pytorchcv", "captum")
# the record's file names (FINISHED, ATTENTION, DUPLICATE_FREE, MANIFEST) are fer_core.paths's: every floor reads them
#: a record's files, in the order they are written: metrics.json marks a complete run, the manifest seals it
FILES = ("config.yaml", "history.csv", "predictions.csv", "roc.json", "provenance.json", ATTENTION, DUPLICATE_FREE,
         FINISHED, MANIFEST)


class RunExistsError(FileExistsError):
    """The run directory already holds a record; the message says how to proceed."""


def run_name(cfg: Config) -> str:
    """The name of a run's folders (``<experiment>/<name>`` under results/ and checkpoints/): ``run``
    when the config sets it, else :meth:`fer_core.config.Config.name_for` the source ``data.source``
    resolves to on this machine (``auto``: FER2013 where a data directory is given or ``FER_DATA_DIR``
    is set, else the synthetic set)."""
    return cfg.run or cfg.name_for(fer_data.resolve(cfg.data.source, cfg.data.dir)[0])


@dataclass(frozen=True)
class RunPaths:
    results: Path     # results/<experiment>/<run>
    checkpoints: Path  # checkpoints/<experiment>/<run>

    @classmethod
    def of(cls, cfg: Config) -> "RunPaths":
        rel = Path(cfg.experiment) / run_name(cfg)
        return cls(project_path(cfg.output.results_dir) / rel, project_path(cfg.output.checkpoint_dir) / rel)

    @property
    def name(self) -> str:
        """The run's name: its folders' name."""
        return self.results.name

    @property
    def finished(self) -> bool:
        return (self.results / FINISHED).is_file()

    @property
    def started(self) -> bool:
        return ((self.checkpoints / checkpoints.LAST).is_file() or self.results.is_dir()
                or bool(checkpoints.leftovers(self.checkpoints)))


def prepare_run(paths: RunPaths, *, resume: bool, overwrite: bool) -> bool:
    """Check the run directory before training; returns True when a checkpoint is resumed."""
    if paths.finished and not overwrite:
        raise RunExistsError(
            f"Run {paths.results} is already finished (the book reads it as it is; python -m fer_core ledger "
            f"rebuild re-files a ledger that lacks it). Choose another run name (run=... or --set run=NAME), "
            f"or set output.overwrite=true to replace it (the old record is moved aside, not deleted).")
    if overwrite and paths.started:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        # the old record goes out of the published view (results/superseded/replaced/<experiment>/), kept
        aside = paths.results.parent.parent / "superseded" / "replaced" / paths.results.parent.name
        for d, to in ((paths.results, aside), (paths.checkpoints, paths.checkpoints.parent)):
            if d.exists():
                to.mkdir(parents=True, exist_ok=True)
                d.rename(to / f"{d.name}.replaced-{stamp}")
        return False
    if paths.started and not paths.finished:
        if resume and (paths.checkpoints / checkpoints.LAST).is_file():
            return True
        found = checkpoints.leftovers(paths.checkpoints)
        if resume and found:  # a kill inside a checkpoint write of older code: never start again silently
            raise RunExistsError(
                f"Run {paths.results} has no {checkpoints.LAST} but {' and '.join(found)} in {paths.checkpoints}, "
                f"left by a checkpoint write that was cut off. To resume from the epoch before, move "
                f"{checkpoints.PREVIOUS} to {checkpoints.LAST}; or set output.overwrite=true to start again (the old "
                f"files are moved aside).")
        if not resume:
            raise RunExistsError(
                f"Run {paths.results} was started but did not finish. Resume it with --resume (resume=True), "
                f"or set output.overwrite=true to start again (the old files are moved aside).")
    return False


#: what a run's code is: the tracked files outside the run records (results/ holds data, not code)
CODE_PATHSPEC = (".", ":(exclude)results")


def git_commit(root: Path | None = None) -> dict:
    """The commit whose code makes a run (the checkout ``fer_core`` is imported from, or ``root``);
    for a tree with uncommitted changes (``dirty``; run records under results/ do not count) also
    the changed files and a hash of their diff, so that the record still names its code."""
    root = root or Path(__file__).resolve().parents[2]  # the checkout: fer_core/runs/records.py

    def git(*args):
        try:
            return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""
    commit = git("rev-parse", "HEAD")
    if not commit:
        return {"commit": None, "dirty": None}
    changed = git("diff", "HEAD", "--name-only", "--", *CODE_PATHSPEC).splitlines()
    # an untracked file that is not ignored (a new plan or module) is a change too: the commit lacks it
    changed += git("ls-files", "--others", "--exclude-standard", "--", *CODE_PATHSPEC).splitlines()
    out = {"commit": commit, "dirty": bool(changed)}
    if changed:
        diff = git("diff", "HEAD", "--", *CODE_PATHSPEC) + "".join(
            f"\n{f}:{file_sha256(root / f) if (root / f).is_file() else ''}" for f in changed)
        out.update(changed_files=changed, diff_sha256=hashlib.sha256(diff.encode()).hexdigest()[:16])
    return out


class DirtyTreeError(RuntimeError):
    """A published profile's run from a tree with uncommitted code changes."""


def require_clean_tree(what: str) -> None:
    """Refuse ``what`` (a run of a published profile) when the code has uncommitted changes: its
    record could not name the code that made it."""
    git = git_commit()
    if git.get("dirty"):
        files = git["changed_files"]
        shown = ", ".join(files[:5]) + (f" and {len(files) - 5} more" if len(files) > 5 else "")
        raise DirtyTreeError(f"{what} would be made from uncommitted changes ({shown}): commit them and run from a "
                             f"clean checkout (git worktree add ../queue HEAD), or pass --allow-dirty (the record "
                             f"then names the changed files and the diff's hash).")


def _driver_version() -> str | None:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20).stdout.strip().splitlines()
        return out[0] if out else None
    except (OSError, subprocess.SubprocessError):
        return None


def device_info(device) -> dict:
    """The machine a run used: CPU threads, name, bf16 matrix units and platform, and on a GPU its name, count, CUDA and
    driver versions."""
    import torch

    info = {"device": str(device), "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
            "platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            **cpu_info()}
    if getattr(device, "type", str(device)) == "cuda":
        info.update(gpu=torch.cuda.get_device_name(device), gpu_count=torch.cuda.device_count(),
                    cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version(), driver=_driver_version())
    return info


def package_versions() -> dict:
    out = {"python": sys.version.split()[0]}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def provenance(cfg: Config, data, device, wall_time_s: float, started: str, precision: dict | None = None) -> dict:
    return {
        "precision": precision,
        **git_commit(),
        "data": {"source": data.source, "location": data.location, "fingerprint": data.fingerprint,
                 "sizes": {s: int((data.split == s).sum()) for s in ("train", "val", "test")}},
        "note": data.note or None,
        "packages": package_versions(),
        **device_info(device),
        "wall_time_s": round(wall_time_s, 2),
        "started": started,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": " ".join(sys.argv),
        "checkpoint": str(RunPaths.of(cfg).checkpoints / checkpoints.BEST),
    }


def _write(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_json(path: Path, obj) -> None:
    _write(path, json.dumps(obj, indent=1, allow_nan=False) + "\n")


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def identity(config: dict, prov: dict) -> dict:
    """What a record is a run of: paper, row (variant), dataset, fold, seed, profile, and the hash of
    its result settings with the data folder's spelling replaced by the data's content
    (:func:`fer_core.config.identity_hash`). Two records of one identity are the same run twice."""
    tags = config.get("tags") or {}
    data = config.get("data") or {}
    source = (prov.get("data") or {}).get("source") or data.get("source")
    return {"paper": tags.get("paper") or config.get("experiment"),
            "variant": tags.get("variant") or (config.get("model") or {}).get("name"),
            "dataset": source, "fold": data.get("fold") if cross_validated(data.get("cv"), source) else None,
            "seed": config.get("seed"), "profile": tags.get("profile") or config.get("experiment"),
            "settings": identity_hash(config, (prov.get("data") or {}).get("fingerprint"))}


def seal(folder: str | Path) -> dict:
    """Write a finished record's manifest (last): the SHA-256 of each of its files and its identity."""
    folder = Path(folder)
    if not (folder / FINISHED).is_file():
        raise FileNotFoundError(f"{folder} is not a finished run (no {FINISHED}): nothing to seal.")
    config = yaml.safe_load((folder / "config.yaml").read_text())
    prov = json.loads((folder / "provenance.json").read_text())
    manifest = {"identity": identity(config, prov),
                "files": {n: file_sha256(folder / n) for n in FILES if n != MANIFEST and (folder / n).is_file()}}
    write_json(folder / MANIFEST, manifest)
    return manifest


def verify(folder: str | Path) -> list[str]:
    """What keeps a record from counting: no manifest, a file that is not what the manifest says
    (changed, missing, or a record file written after sealing), or an identity that is not its
    config's. Each names the file; empty for a sound record."""
    folder = Path(folder)
    if not (folder / MANIFEST).is_file():
        return [f"no {MANIFEST}: the record was never sealed (python -m fer_core ledger seal {folder})"]
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        files, ident = dict(manifest["files"]), manifest["identity"]
    except (ValueError, KeyError, TypeError) as e:
        return [f"{MANIFEST} cannot be read ({e})"]
    out = []
    for name, digest in files.items():
        path = folder / name
        if not path.is_file():
            out.append(f"{name} is missing")
        elif file_sha256(path) != digest:
            out.append(f"{name} changed since the record was sealed")
    out += [f"{n} was written after the record was sealed" for n in FILES
            if n != MANIFEST and n not in files and (folder / n).is_file()]
    if not out:
        try:
            actual = identity(yaml.safe_load((folder / "config.yaml").read_text()),
                              json.loads((folder / "provenance.json").read_text()))
        except (ValueError, yaml.YAMLError) as e:
            return [f"config.yaml or provenance.json cannot be read ({e})"]
        if actual != ident:
            out.append(f"{MANIFEST}'s identity is not its config's ({ident} against {actual})")
    return out


def write(paths: RunPaths, cfg: Config | dict, history: list[dict], metrics: dict, roc: dict,
          predictions: pd.DataFrame, prov: dict, extra: dict[str, dict | None] | None = None) -> None:
    """Write a run's record into its folder; ``metrics.json`` goes last but for the manifest, so its
    presence means a complete run, and the manifest (:func:`seal`) makes it one the book counts.
    ``cfg``: the resolved config (or its dict); ``extra``: further JSON files of the
    record by name (None: not written); a record's other files (``attention.npz``) are written
    into the folder before this call."""
    paths.results.mkdir(parents=True, exist_ok=True)
    for name, content in (extra or {}).items():
        if content is not None:
            write_json(paths.results / name, content)
    config = cfg if isinstance(cfg, dict) else cfg.to_dict()
    _write(paths.results / "config.yaml", yaml.safe_dump(config, sort_keys=False))
    pd.DataFrame(history).to_csv(paths.results / "history.csv", index=False)
    predictions.to_csv(paths.results / "predictions.csv", index=False, float_format="%.5f")
    write_json(paths.results / "roc.json", roc)
    write_json(paths.results / "provenance.json", prov)
    write_json(paths.results / FINISHED, metrics)
    seal(paths.results)


def write_files(paths: RunPaths, files: dict[str, bytes]) -> None:
    """Write a record's files as they came (from a Ray worker), each atomically, in :data:`FILES`
    order (metrics.json last); files of other names are not written."""
    paths.results.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        if name in files:
            tmp = paths.results / f"{name}.tmp"
            tmp.write_bytes(files[name])
            tmp.replace(paths.results / name)


def read_files(paths: RunPaths) -> dict[str, bytes]:
    """A finished record's files as bytes (what a Ray worker sends back)."""
    return {n: (paths.results / n).read_bytes() for n in FILES if (paths.results / n).is_file()}


@dataclass(frozen=True)
class RunRecord:
    """A finished run read back from disk."""

    path: Path
    metrics: dict
    history: pd.DataFrame
    predictions: pd.DataFrame
    roc: dict
    provenance: dict
    config: dict

    @classmethod
    def read(cls, path: str | Path) -> "RunRecord":
        path = Path(path)
        if not (path / FINISHED).is_file():
            raise FileNotFoundError(f"{path} is not a finished run (no {FINISHED}); runs live in "
                                    f"results/<experiment>/<run>/.")
        return cls(path, json.loads((path / FINISHED).read_text()), pd.read_csv(path / "history.csv"),
                   pd.read_csv(path / "predictions.csv"), json.loads((path / "roc.json").read_text()),
                   json.loads((path / "provenance.json").read_text()),
                   yaml.safe_load((path / "config.yaml").read_text()))

    def value(self, metric: str) -> float:
        """One number of this record by name: ``last:<history column>`` / ``first:...`` (the last
        or first epoch), ``selected:...`` (at the epoch selected on validation, whose weights were
        tested), ``metrics:<dotted key>`` (``metrics.json``) or ``duplicate_free:<key>`` (FER2013
        without the test faces that are training faces); NaN where the record lacks it."""
        kind, _, what = metric.partition(":")
        if kind in ("last", "first"):
            return float(self.history[what].iloc[-1 if kind == "last" else 0])
        if kind == "selected":
            epoch = self.metrics.get("selected_epoch")
            at = self.history[self.history["epoch"] == epoch] if epoch is not None else self.history.iloc[:0]
            return float(at[what].iloc[0]) if len(at) else float("nan")
        if kind == "metrics":
            value = self.metrics
            for key in what.split("."):
                value = value[key]
            return float(value)
        if kind == "duplicate_free":
            dup = duplicates.read(self.path)
            return float(dup["duplicate_free"].get(what, float("nan"))) if dup else float("nan")
        raise KeyError(f"metric {metric!r}: unknown kind {kind!r} (last:, first:, selected:, metrics:, "
                       f"duplicate_free:)")

    @property
    def precision(self) -> str:
        """The numerical precision the run trained and was tested in: its provenance's autocast
        dtype, ``float32`` without autocast."""
        return (self.provenance.get("precision") or {}).get("autocast") or "float32"

    @property
    def probs(self) -> np.ndarray:
        return self.predictions.filter(like="prob_").to_numpy()

    def problems(self) -> list[str]:
        """What does not recompute: the accuracy in metrics.json (plain and each TTA mode whose
        predictions are kept) against its own predictions.csv, to within one face. Empty for a
        sound record."""
        p, m = self.predictions, self.metrics
        if not {"target", "pred"} <= set(p.columns) or len(p) != m.get("n", len(p)):
            return [f"predictions.csv does not name the {m.get('n')} test faces metrics.json counts"]
        checks = [("accuracy", m.get("accuracy"), float((p["pred"] == p["target"]).mean()))]
        for mode, t in m.get("tta", {}).items():
            if f"pred_tta_{mode}" in p:
                checks.append((f"accuracy with TTA {mode}", t.get("accuracy"),
                               float((p[f"pred_tta_{mode}"] == p["target"]).mean())))
        one_face = 1.0 / max(1, len(p))
        return [f"{name} {float(stated or 0):.4f} in metrics.json, {actual:.4f} from predictions.csv"
                for name, stated, actual in checks if stated is None or abs(float(stated) - actual) > one_face]
