"""A queue of plan slices, run in order for hours beside other work (``params/queues/<name>.yaml``).

    python -m fer_core queue cpu --status                   # done / in progress / left, with hours
    python -m fer_core queue cpu --time-limit 2h40m         # run the next unfinished runs

A queue file lists items, each a slice of one paper's plan (rows, seeds, folds) under one profile;
the queue first resumes the runs already started, whatever their item, each exactly from its
checkpoint (a run is finished before another starts: a reordered file or a second worker never
leaves one half-made), then runs the items in order through
:func:`fer_core.schedule.slices.execute`, so a finished run is read back (a run whose checkpoint is
gone starts over), and every record lands in its results folder with a ledger row. A time limit ends the call
after the epoch that reaches it (everything checkpointed, exit status 75); the same command
continues. The queue's runs are the plans' recipes unchanged: the file chooses what runs and in
which order, never how.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from ..paths import bench_file, project_path
from ..runs.records import git_commit
from ..train.engine import TimeLimitReached
from . import slices, speed
from .plans import read_plan

QUEUE_KEYS = {"paper", "rows", "seeds", "folds", "note"}
STARTED, RUNS_APART = slices.STARTED, slices.RUNS_APART  # the status table's column naming each started run


class QueueError(ValueError):
    """A queue file that cannot be read, naming the file, the item and the field."""


@dataclass(frozen=True)
class Item:
    """One slice of the queue, with the line that says why it is there."""

    slice: slices.Slice
    note: str = ""

    @property
    def label(self) -> str:
        s = self.slice
        folds = f" folds {_ranges(s.folds)}" if s.folds else ""
        return f"{s.paper}: {','.join(s.rows or ['(profile rows)'])} seeds {_ranges(s.seeds)}{folds}"


def _ranges(values: list[int]) -> str:
    return f"{values[0]}-{values[-1]}" if len(values) > 2 and values == list(range(values[0], values[-1] + 1)) \
        else ",".join(map(str, values))


def queue_path(name: str) -> Path:
    return project_path(f"params/queues/{name}.yaml") if "/" not in name and not name.endswith(".yaml") \
        else Path(name)


def read_queue(name: str, *, data_dir: str | None = None, overrides: list[str] | None = None,
               allow_dirty: bool = False) -> list[Item]:
    """The queue's items in order; errors name the file, the item and the field."""
    path = queue_path(name)
    if not path.is_file():
        known = sorted(p.stem for p in project_path("params/queues").glob("*.yaml"))
        raise QueueError(f"Queue {path} does not exist; known queues: {', '.join(known) or 'none'}.")
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise QueueError(f"Queue {path} is not valid YAML ({str(e).splitlines()[0]}).") from None
    if not isinstance(doc, dict):
        raise QueueError(f"Queue {path} must be a mapping with 'profile' and 'items'.")
    unknown = set(doc) - {"profile", "items"}
    if unknown:  # a misspelt 'profile' must not run the paper profile silently
        raise QueueError(f"Queue {path}: unknown top-level key(s) {sorted(unknown)}; known: ['items', 'profile'].")
    profile = doc.get("profile", "paper")
    items = doc.get("items")
    if not isinstance(items, list) or not items:
        raise QueueError(f"Queue {path}: 'items' must be a list of slices ({{paper, rows, seeds, folds}}).")
    out = []
    for i, item in enumerate(items, 1):
        where = f"Queue {path}, item {i}"
        if not isinstance(item, dict) or "paper" not in item:
            raise QueueError(f"{where}: each item is a mapping with at least 'paper'.")
        unknown = set(item) - QUEUE_KEYS
        if unknown:
            raise QueueError(f"{where}: unknown field(s) {sorted(unknown)}; known: {sorted(QUEUE_KEYS)}.")
        try:
            seeds = slices.parse_range(_text(item.get("seeds", 0))) or [0]
            folds = slices.parse_range(_text(item.get("folds")))
        except ValueError as e:
            raise QueueError(f"{where}: {e}.") from None
        rows = item.get("rows")
        rows = [rows] if isinstance(rows, str) else rows
        if rows is not None and (not isinstance(rows, list) or not all(isinstance(r, str) for r in rows)):
            raise QueueError(f"{where}: rows must be a list of the plan's row names, not {rows!r}.")
        sl = slices.Slice(item["paper"], profile, rows, seeds, folds, data_dir, list(overrides or []), allow_dirty)
        try:
            specs = slices.runs_of(sl)  # the plan exists and has these rows
        except (KeyError, ValueError, FileNotFoundError) as e:
            raise QueueError(f"{where}: {str(e).strip(chr(39))}") from None
        sr_nets = {s.variant for s in specs} - set(read_plan(sl.paper).selected(sl.profile, sl.rows))
        fixed = sorted({s.variant for s in specs if s.fold is None} - sr_nets)  # an SR net a row takes is trained once
        if folds is not None and fixed:  # folds on a fixed-split row would be dropped without a word
            raise QueueError(f"{where}: folds apply to cross-validated (CK+) rows; {', '.join(fixed)} use fixed "
                             f"splits: put them in an item without folds.")
        out.append(Item(sl, str(item.get("note", ""))))
    return out


def _text(v) -> str | None:
    if v is None:
        return None
    return ",".join(map(str, v)) if isinstance(v, list) else str(v)


def status(items: list[Item]) -> pd.DataFrame:
    """One line per item: runs finished / started / not started, the hours left here (at most:
    a started run counts the epochs its checkpoint lacks), the hours its finished runs took (their
    records' wall time, wherever they ran), where each started run stands (its epoch, its
    validation curve so far, a step within an epoch, its hours left) and what the hours left are
    estimated from (the benchmark's case per model, and the machine that measured it where that
    is not this one). A run several items hold (an SR net every +SR item trains first) is made, and
    counted, once: in the first of them; a later item names it in :data:`EARLIER` instead."""
    rows, first_in = [], {}
    for n, item in enumerate(items, 1):
        table = slices.listing(item.slice)
        shared = "; ".join(f"{run} (item {first_in[run]})" for run in table["run"] if run in first_in)
        table = table[~table["run"].isin(first_in)]
        first_in.update(dict.fromkeys(table["run"], n))
        counts, hours = table["status"].value_counts(), slices.hours_left(table)
        started = [f"{r['run']} (epoch {r['epochs done']} of {r['epochs (max)']}; {r['standing']}; "
                   f"{r[slices.hours_column(table)]} h left at most)"
                   for _, r in table[table["status"] == "started"].iterrows()]  # joined by RUNS_APART
        rows.append({"item": n, "slice": item.label, "runs": len(table), "finished": int(counts.get("finished", 0)),
                     "in progress": int(counts.get("started", 0)), "left": int(counts.get("not started", 0)),
                     "hours left (at most)": None if hours is None else round(hours, 1),
                     "hours taken": round(float(table["hours taken"].sum()), 1), STARTED: RUNS_APART.join(started),
                     "speed from": "; ".join(dict.fromkeys(table.loc[table["status"] != "finished", "speed from"])),
                     EARLIER: shared,
                     **({slices.GPU_HOURS: round(float(table.loc[table["status"] != "finished", slices.GPU_HOURS]
                                                       .sum()), 2)} if slices.GPU_HOURS in table else {})})
    return pd.DataFrame(rows)


#: a status's column naming the runs an item holds that an earlier item makes (and counts)
EARLIER = "made by an earlier item"


def status_path(name: str) -> Path:
    """Where ``queue <name> --status --save`` keeps its table: ``results/bench/queue_<name>.csv``."""
    return bench_file(f"queue_{name}")


def save_status(table: pd.DataFrame, name: str, path: str | Path | None = None) -> Path:
    """The status table with when, where and from which code and benchmark it was estimated: the
    front chapter reads it to say in numbers why the GPU queue's claims are not tested."""
    path = Path(path) if path is not None else status_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    out = table.assign(queue=name, estimated=time.strftime("%Y-%m-%d"), commit=git_commit().get("commit"),
                       machine=f"{speed.this_host('cpu')}, {os.cpu_count()} cores",
                       basis="results/bench/train_cpu.csv: the book loop's measured img/s (per item: speed from)")
    out.to_csv(path, index=False)
    return path


def run(items: list[Item], *, time_limit: float | None = None, share: bool = False) -> pd.DataFrame:
    """The runs already started (in any item), then every item in order, until the queue is done or
    ``time_limit`` (seconds) is reached
    (:class:`~fer_core.train.engine.TimeLimitReached`: everything is checkpointed; call again). Like a
    slice, every call makes progress: at least an epoch of the first unfinished run.

    ``share``: one of several processes on the queue (``queue --workers``): each takes the next run
    no other holds (:func:`fer_core.schedule.slices.execute`); the runs left to the others are listed in the
    returned table's ``attrs[slices.LEFT_TO_OTHERS]``."""
    deadline = time.monotonic() + time_limit if time_limit else None
    done, progressed, left_to_others = [], False, []
    for started_only in (True, False):  # the runs already started first, then every item in order
        for item in items:
            statuses = {spec.status for spec in slices.runs_of(item.slice)}
            unfinished = "started" in statuses if started_only else statuses != {"finished"}
            if started_only and not unfinished:
                continue
            left = None if deadline is None else deadline - time.monotonic()
            if unfinished and progressed and left is not None and left <= 0:
                raise TimeLimitReached(item.label, None)
            table = slices.execute(item.slice, time_limit=None if left is None else max(left, 1e-3), share=share,
                                   started_only=started_only)
            if started_only:  # progress only where this process resumed one (not left to another)
                progressed = progressed or len(table) > 0
                continue
            left_to_others += table.attrs.get(slices.LEFT_TO_OTHERS, [])  # the second pass reads every run
            done.append(table)                                             # back: its tables are the queue's
            progressed = progressed or unfinished
    rows = pd.concat(done, ignore_index=True)
    rows.attrs[slices.LEFT_TO_OTHERS] = left_to_others
    return rows


def run_workers(argv: list[str], workers: int, name: str) -> int:
    """Supervise ``workers`` processes of one queue (``argv``: the command of one, with ``--share``),
    each taking the next run that no other holds; a worker killed by a signal (``kill -9``, the OOM
    killer) is replaced, its run resuming from its last checkpoint (at most twice per worker). The
    exit status is the queue's: 75 (:data:`~fer_core.schedule.slices.EXIT_RESUME`) when one stopped
    at the time limit or workers were killed, a failed worker's status, else 0. Two single-thread
    runs trained here 1.5 times the images per second of one run on both cores (small batches use
    two threads poorly). Stopping this process (SIGTERM) stops its workers with it."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    running, codes, replaced = [], [], 0
    try:
        running = [subprocess.Popen(argv) for _ in range(workers)]  # OMP_WAIT_POLICY: see fer_core.__main__
        while running:
            time.sleep(1)
            for w in [w for w in running if w.poll() is not None]:
                running.remove(w)
                if w.returncode < 0 and replaced < 2 * workers:
                    replaced += 1
                    print(f"queue {name}: worker {w.pid} was killed by signal {-w.returncode}; its run resumes "
                          f"from its last checkpoint in a new worker", flush=True)
                    running.append(subprocess.Popen(argv))
                else:
                    codes.append(w.returncode)
    finally:
        for w in running:
            if w.poll() is None:
                w.terminate()
    print(f"queue {name}: workers ended with exit status {', '.join(map(str, codes))}")
    killed = [c for c in codes if c < 0]
    failed = [c for c in codes if c not in (0, slices.EXIT_RESUME) and c >= 0]
    if killed and not failed:
        print(f"queue {name}: {len(killed)} worker(s) were killed; run the same command again: every started "
              f"run resumes from its last checkpoint", flush=True)
        return slices.EXIT_RESUME
    return failed[0] if failed else slices.EXIT_RESUME if slices.EXIT_RESUME in codes else 0
