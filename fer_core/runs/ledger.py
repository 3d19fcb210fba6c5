"""The results ledger: one row per finished run, readable with pandas, and the published view.

The records are the truth; the ledger is an index of them. :func:`scan` is what the book reads:
every sealed record under ``<results>/<experiment>/<run>/`` that matches its manifest and whose
numbers recompute from its predictions, one per identity (a second record of one run is an error
naming both), never a path outside the folder. ``python -m fer_core ledger rebuild`` writes
``ledger.csv`` from that view; nothing depends on the ledger being right.

``<results_dir>/ledger.csv`` (``results/ledger.csv`` for the paper profile, committed with the
run records). A row names the paper, model, dataset, split or fold, seed and profile, the main
metrics, the run record's path, and its provenance: the hash of the resolved config and the data
fingerprint (a run with the same config on the same data is read back, not retrained: see
``runs.run``). Appends are serialised with a file lock, so notebooks running
in parallel can share one ledger.
"""
from __future__ import annotations

import csv
import fcntl
import json
from pathlib import Path

import pandas as pd

from ..config import TTA_MODES, config_hash, cross_validated
from ..data import duplicates
from ..paths import ROOT, checkout_of, project_path
from .records import FINISHED, MANIFEST, RunRecord, seal, verify

LEDGER = "ledger.csv"
COLUMNS = ["paper", "model", "variant", "dataset", "split", "fold", "seed", "profile", "accuracy",
           *[f"{m}_tta_{mode}" for mode in TTA_MODES for m in ("accuracy", "macro_f1")], "cross_entropy",
           "macro_precision", "macro_f1", "weighted_precision", "weighted_f1", "auc_macro", "auc_min", "best_val_acc",
           "epochs_run", "parameters_m", "wall_time_s", "device", "finished", "commit", "data_fingerprint",
           "config_hash", "record"]


def ledger_path(results_dir: str | Path) -> Path:
    return project_path(results_dir) / LEDGER


REQUIRED = ["paper", "model", "variant", "dataset", "seed", "profile", "accuracy", "record"]


class LedgerError(ValueError):
    """A ledger that cannot be trusted as it is; the message names the file, the line and the fix."""


def check(results_dir: str | Path) -> None:
    """The ledger is whole before anything reads it or appends to it: a ledger's header, every line
    with the header's number of fields, the last one ended. Nothing is repaired silently."""
    path = ledger_path(results_dir)
    if not path.is_file():
        return
    text = path.read_text()
    if not text:
        return
    lines = text.splitlines()
    header = next(csv.reader([lines[0]]))
    missing = [c for c in REQUIRED if c not in header]
    fix = (f"the run records under {path.parent} are not affected: move the file aside and the runs re-enter a new "
           f"ledger as they are read back (python -m fer_core run / queue with the same slice)")
    if missing:
        raise LedgerError(f"Ledger {path} line 1 is not a ledger's header (no {', '.join(missing)}): {fix}.")
    if not text.endswith("\n"):
        raise LedgerError(f"Ledger {path} line {len(lines)} is cut off (no end of line: a write was interrupted): "
                          f"delete that line, or {fix}.")
    for n, fields in enumerate(csv.reader(lines[1:]), 2):
        if fields and len(fields) != len(header):
            raise LedgerError(f"Ledger {path} line {n} has {len(fields)} fields where its header has {len(header)}: "
                              f"fix or delete that line, or {fix}.")


def read_ledger(results_dir: str | Path) -> pd.DataFrame:
    path = ledger_path(results_dir)
    if not path.is_file() or path.stat().st_size == 0:  # none, or an empty file (a full disk's leftover)
        return pd.DataFrame(columns=COLUMNS)
    check(results_dir)
    try:
        return pd.read_csv(path, dtype={"fold": "Int64", "commit": str, "config_hash": str})
    except (pd.errors.ParserError, ValueError) as e:
        raise ValueError(f"Ledger {path} cannot be read ({e}). Fix or move the file aside; it is an index "
                         f"of the run records under {path.parent}, which are not affected.") from None


def portable(path: str | Path) -> str:
    """A record's path as the ledger keeps it: relative to the checkout that holds it (so a clone
    anywhere finds ``results/<plan>/<run>``), absolute outside any checkout (a temporary folder)."""
    path = Path(path).resolve()
    home = checkout_of(path)
    return str(path.relative_to(home)) if home is not None else str(path)


def row_of(record: RunRecord, *, paper: str, variant: str, profile: str) -> dict:
    cfg, m, p = record.config, record.metrics, record.provenance
    fold = cfg["data"]["fold"] if cross_validated(cfg["data"].get("cv"), p["data"]["source"]) else None
    rel = portable(record.path)
    tta = m.get("tta", {})
    aucs = [v for v in m["auc"].values() if v is not None]
    return {
        "paper": paper, "model": cfg["model"]["name"], "variant": variant, "dataset": p["data"]["source"],
        "split": m["split"], "fold": fold,
        "seed": cfg["seed"], "profile": profile, "accuracy": m["accuracy"],
        **{f"accuracy_tta_{mode}": tta[mode]["accuracy"] if mode in tta else None for mode in TTA_MODES},
        **{f"macro_f1_tta_{mode}": tta[mode]["macro"]["f1"] if mode in tta else None for mode in TTA_MODES},
        "cross_entropy": m["cross_entropy"],
        "macro_precision": m["macro"]["precision"], "macro_f1": m["macro"]["f1"],
        "weighted_precision": m["weighted"]["precision"], "weighted_f1": m["weighted"]["f1"],
        "auc_macro": m["auc_macro"], "auc_min": min(aucs) if aucs else None, "best_val_acc": m["best_val_acc"],
        "epochs_run": m["epochs_run"],
        "parameters_m": m["parameters"] / 1e6 if m.get("parameters") is not None else None,
        "wall_time_s": p["wall_time_s"], "device": p.get("gpu", p["device"]), "finished": p.get("finished"),
        "commit": p["commit"],
        "data_fingerprint": p["data"]["fingerprint"], "config_hash": config_hash(cfg), "record": rel,
    }


def append(results_dir: str | Path, row: dict) -> None:
    """Add a row unless the same record is already in the ledger. A ledger written with an older
    set of columns is first rewritten with the current ones (its rows kept, new columns empty)."""
    path = ledger_path(results_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        existing = read_ledger(results_dir)
        this = record_dir(row["record"], results_dir).resolve()
        same = [i for i, p in zip(existing.index, existing["record"])
                if record_dir(p, results_dir).resolve() == this]
        def when(v) -> str:
            return "" if v is None or (not isinstance(v, str) and pd.isna(v)) else str(v)
        if same and all(when(existing.at[i, "finished"]) == when(row.get("finished")) for i in same):
            return  # a finished run read back (or recorded by another writer): one row per record
        if same:  # the record at this path was replaced (output.overwrite): its old row goes
            existing = existing.drop(index=same)
            tmp = path.with_suffix(".tmp")
            existing.to_csv(tmp, index=False)
            tmp.replace(path)
        if path.is_file() and list(existing.columns) != COLUMNS:
            unknown = [c for c in existing.columns if c not in COLUMNS]
            tmp = path.with_suffix(".tmp")
            existing.reindex(columns=COLUMNS + unknown).to_csv(tmp, index=False)
            tmp.replace(path)
            header = COLUMNS + unknown
        else:
            header = COLUMNS
        empty = not path.is_file() or path.stat().st_size == 0
        pd.DataFrame([row], columns=header).to_csv(path, mode="a", header=empty, index=False)


def problems(row) -> list[str]:
    """What is wrong with a ledger row's numbers: its record's own problems
    (:meth:`RunRecord.problems`), and a ledger accuracy that is not its record's."""
    rec = record_at(row["record"])
    out = rec.problems()
    stated = row.get("accuracy") if hasattr(row, "get") else None
    if stated is not None and not pd.isna(stated) and abs(float(stated) - float(rec.metrics["accuracy"])) > 1e-6:
        out.append(f"accuracy {float(stated):.4f} in the ledger, {float(rec.metrics['accuracy']):.4f} in the record")
    return out


def record_dir(path: str | Path, results_dir: str | Path | None = None) -> Path:
    """The folder a ledger row's ``record`` names. A relative path is relative to the checkout that
    holds the ledger's results folder ``results_dir`` (:func:`portable`): a queue running from a
    worktree reads the main checkout's records, not the worktree's copies (none for a run it has just
    made); without ``results_dir``, to this project's root."""
    path = Path(path)
    if path.is_absolute():
        return path
    return ((checkout_of(project_path(results_dir)) if results_dir is not None else None) or ROOT) / path


def record_at(path: str | Path, results_dir: str | Path | None = None) -> RunRecord:
    """Read the run record a ledger row's ``record`` names (``results_dir``: :func:`record_dir`)."""
    return RunRecord.read(record_dir(path, results_dir))


REFUSED_COLUMNS = ["record", "problems"]


def scan(results_dir: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The published view of a results folder: ``(runs, refused)``. ``runs``: one ledger row per
    valid record under ``<results_dir>/<experiment>/<run>/`` (sealed, every file as its manifest
    says, its numbers recomputing from its predictions), ordered by when it finished, with an empty
    ``problems`` column; ``refused``: every other finished record with what is wrong, naming the
    file. Two valid records of one identity raise :class:`LedgerError` naming both."""
    root = project_path(results_dir)
    rows, refused, seen = [], [], {}
    for done in sorted(root.glob(f"*/*/{FINISHED}")):
        folder = done.parent
        problems = verify(folder)
        if not problems:
            try:
                record = RunRecord.read(folder)
                problems = record.problems()
            except (ValueError, KeyError, OSError) as e:
                problems = [f"a file cannot be read ({type(e).__name__}: {e})"]
        if problems:
            refused.append({"record": portable(folder), "problems": "; ".join(problems)})
            continue
        ident = json.loads((folder / MANIFEST).read_text())["identity"]
        key = json.dumps(ident, sort_keys=True)
        if key in seen:
            raise LedgerError(f"Two records of one run ({ident['paper']} {ident['variant']} {ident['dataset']} fold "
                              f"{ident['fold']} seed {ident['seed']}, {ident['profile']} profile): {seen[key]} and "
                              f"{folder}. A run is published once: move one of them out of {root} (e.g. to "
                              f"{root / 'superseded'}/...).")
        seen[key] = folder
        rows.append({**row_of(record, paper=ident["paper"], variant=ident["variant"], profile=ident["profile"]),
                     "problems": ""})
    runs = pd.DataFrame(rows, columns=[*COLUMNS, "problems"])
    if len(runs):
        runs = runs.sort_values("finished", kind="stable").reset_index(drop=True)
        runs["fold"] = runs["fold"].astype("Int64")
    return runs, pd.DataFrame(refused, columns=REFUSED_COLUMNS)


def rebuild(results_dir: str | Path) -> tuple[Path, pd.DataFrame]:
    """Write ``ledger.csv`` afresh from the valid records (:func:`scan`); returns its path and the
    refused records (not in it)."""
    runs, refused = scan(results_dir)
    path = ledger_path(results_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        tmp = path.with_suffix(".tmp")
        runs[COLUMNS].to_csv(tmp, index=False)
        tmp.replace(path)
    return path, refused


def add_duplicate_free(results_dir: str | Path, data, twins: duplicates.Twins) -> list[str]:
    """``duplicate_free.json`` for every FER2013 record of the ledger in ``results_dir`` that has
    none (its scores without the test faces that have a training twin, from its predictions), on
    the same data only (the fingerprint); a sealed record is sealed anew. One line per record: what
    was written, kept or skipped."""
    runs, lines = read_ledger(results_dir), []
    for path in runs.loc[runs["dataset"] == "fer2013", "record"]:
        record = record_at(path, results_dir)
        target = record.path / duplicates.FILE
        made_on = record.provenance["data"].get("fingerprint")
        if target.is_file():
            lines.append(f"kept {target} (already there)")
        elif made_on != data.fingerprint:
            lines.append(f"skipped {record.path}: made on other data (fingerprint {made_on}, these are "
                         f"{data.fingerprint})")
        else:
            dup = {**duplicates.scores(record.predictions, twins.files("test")), "data_fingerprint": data.fingerprint}
            target.write_text(json.dumps(dup, indent=1))
            if (record.path / MANIFEST).is_file():
                seal(record.path)  # a file added to a sealed record: seal it anew
            lines.append(f"wrote {target}: accuracy {dup['full']['accuracy']:.4f} -> "
                         f"{dup['duplicate_free']['accuracy']:.4f} without {dup['dropped']} twins")
    return lines
