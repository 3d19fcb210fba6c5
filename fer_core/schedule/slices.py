"""Running a slice of a paper's plan: some rows, seeds and folds, without notebooks.

    python -m fer_core run --paper pham --profile paper [--rows resmaskingnet,resnet34] [--seeds 0,1,2]
                           [--folds 0-9] [--data-dir D] [--results-dir R] [--time-limit 9m] [--list]

A :class:`Slice` names the runs; :func:`runs_of` resolves each to its config (the plan's, through
``plans.config_for``), in the plan's row order with every row's ``sr_from`` dependency
first; :func:`execute` runs them through the run layer (:func:`fer_core.runs.runner.run`: finished runs
are read back, started ones resume; each is filed in its results folder's ledger); :func:`listing` says what each run
costs and whether it is finished. A time limit (``--time-limit``, ``train.time_limit``) ends the
call after the epoch in which it is reached, with every run checkpointed: calling the same command
again continues exactly where it stopped.
"""
from __future__ import annotations

import json
import re
import time
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import pandas as pd

from ..config import Config
from ..models import create_model, forward_gmacs, get_spec
from ..paths import BENCH, project_path
from ..runs import ledger
from ..runs.locks import RunLockedError
from ..runs.records import RunPaths, RunRecord, require_clean_tree
from ..runs.runner import run
from ..train import checkpoints
from ..train.build import Setup, input_shape, load_data, resolve_device
from ..train.engine import TimeLimitReached
from . import speed
from .plans import Plan, checkpoint_of, config_for, read_plan

EXIT_RESUME = 75  # EX_TEMPFAIL: "resume me"
#: ``execute(..., share=True)``: the runs it left to other processes, in its table's ``attrs``
LEFT_TO_OTHERS = "left_to_others"


@dataclass(frozen=True)
class RunSpec:
    """One run of a slice: a row of the plan, a seed, a fold (None for fixed splits) and its config."""

    paper: str
    variant: str
    seed: int
    fold: int | None
    profile: str
    cfg: Config = field(compare=False)  # a run is named by the rest (the config follows from them)

    @property
    def status(self) -> str:
        paths = RunPaths.of(self.cfg)
        return "finished" if paths.finished else ("started" if paths.started else "not started")

    def superseded(self) -> list[str]:
        """Started, unfinished runs of the same row, seed and fold whose settings were another
        recipe (the same name but for the settings' hash): left behind when the plan file changed."""
        paths = RunPaths.of(self.cfg)
        stem = self.cfg.run_name.rsplit("-", 1)[0]
        return sorted(d.name for d in paths.checkpoints.parent.glob(f"{stem}-*")
                      if d.name != self.cfg.run_name and re.fullmatch(re.escape(stem) + r"-[0-9a-f]{8}", d.name)
                      and ((d / checkpoints.LAST).is_file() or checkpoints.leftovers(d))
                      and not RunPaths(paths.results.parent / d.name, d).finished)


class PlanChangedWarning(UserWarning):
    """A run starts from epoch 1 beside a started run of the same row made under the plan's old
    settings (kept, never resumed under the new ones)."""


@dataclass(frozen=True)
class Slice:
    paper: str
    profile: str = "paper"
    rows: list[str] | None = None
    seeds: list[int] = field(default_factory=lambda: [0])
    folds: list[int] | None = None
    data_dir: str | None = None
    overrides: list[str] = field(default_factory=list)
    allow_dirty: bool = False  # a published profile's run from uncommitted code (named in its record)


#: profiles whose records are published: their runs refuse a tree with uncommitted code changes
PUBLISHED_PROFILES = ("paper",)


def parse_range(text: str | None) -> list[int] | None:
    """``0,1,2``, ``0-9`` or ``0-2,5`` as a list of integers (None stays None)."""
    if text is None or text == "":
        return None
    out: list[int] = []
    for part in str(text).split(","):
        m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if not m:
            raise ValueError(f"{text!r} is not a list of numbers such as 0,1,2 or 0-9")
        a, b = int(m.group(1)), int(m.group(2) or m.group(1))
        if a > b:
            raise ValueError(f"{text!r}: {a}-{b} is an empty range; write the lower number first ({b}-{a})")
        out += list(range(a, b + 1))
    return out


def runs_of(sl: Slice) -> list[RunSpec]:
    """Every run of the slice, in the plan's row order, each row after the row it takes its SR
    net from (``sr_from``), which joins the slice when it is not already there."""
    plan = read_plan(sl.paper)
    rows = plan.selected(sl.profile, sl.rows)
    ordered: list[str] = []
    for variant in rows:
        dep = plan.row(variant).get("sr_from")
        for v in ([dep] if dep else []) + [variant]:
            if v not in ordered:
                ordered.append(v)
    return [RunSpec(sl.paper, v, seed, fold, sl.profile, _config(plan, v, sl, seed, fold))
            for v in ordered for seed in sl.seeds for fold in plan.folds(v, sl.profile, sl.folds)]


def _config(plan: Plan, variant: str, sl: Slice, seed: int, fold: int | None) -> Config:
    return config_for(plan, variant, sl.profile, seed=seed, data_dir=sl.data_dir, overrides=sl.overrides, fold=fold)


def execute(sl: Slice, *, time_limit: float | None = None, reuse: bool = True, data=None,
            share: bool = False, started_only: bool = False) -> pd.DataFrame:
    """Run (or read back, or resume) every run of the slice; each lands in its results folder's
    ledger. Raises :class:`TimeLimitReached` when ``time_limit`` (seconds, for this call) ends it.

    ``share``: several processes work through the same runs (``queue --workers``). A run another
    process holds (its lock), or whose SR net another run has not finished, is left to that
    process and named in the returned table's ``attrs[LEFT_TO_OTHERS]`` (``(run name, why)`` pairs,
    :func:`left_summary` words them); this one goes on with the next run. ``started_only``: only
    the runs already started (resumed from their checkpoints), the others left as they are."""
    deadline = time.monotonic() + time_limit if time_limit else None
    rows, progressed, left_to_others = [], False, []
    specs = runs_of(sl)
    row_precisions: dict = {}
    for spec in specs:
        status = spec.status
        if started_only and status != "started":
            continue
        unfinished = status != "finished"
        if unfinished and share and (waits_on := _unfinished_sr_net(spec, specs)):
            left_to_others.append((spec.cfg.run_name, f"waits for {waits_on}"))
            continue
        if status == "not started" and sl.profile in PUBLISHED_PROFILES and \
                (clash := precision_clash(spec, row_precisions)):
            left_to_others.append((spec.cfg.run_name, clash))
            continue
        if unfinished and sl.profile in PUBLISHED_PROFILES and not sl.allow_dirty:
            require_clean_tree(f"Run {spec.cfg.run_name} of the {sl.profile!r} profile")
        if unfinished and progressed and deadline is not None and time.monotonic() >= deadline:
            raise TimeLimitReached(spec.cfg.run_name, None)  # every call makes progress: at least an epoch
        if status == "not started":
            for old in spec.superseded():
                warnings.warn(PlanChangedWarning(
                    f"Row {spec.variant} of plan {spec.paper} changed since run {old} was started: that run is "
                    f"kept as it is (its checkpoints in {RunPaths.of(spec.cfg).checkpoints.parent / old}) and "
                    f"{spec.cfg.run_name} starts from epoch 1 under the new settings. To continue {old} instead, "
                    f"restore the row as it was (git diff params/papers/{spec.paper}.yaml)."), stacklevel=2)
        try:
            rows.append(execute_one(spec, reuse=reuse, deadline=deadline, data=data))
        except RunLockedError as e:
            if not share:
                raise
            left_to_others.append((spec.cfg.run_name, f"held: {e.holder}"))
            continue
        progressed = progressed or unfinished
    table = pd.DataFrame(rows, columns=ledger.COLUMNS)
    table.attrs[LEFT_TO_OTHERS] = left_to_others
    return table


def left_summary(left: list[tuple[str, str]], *, names: int = 3) -> list[str]:
    """One line per reason for the runs a shared call left to other processes (or machines): how
    many, why, and the first ``names`` of them (a queue on a CPU without bf16 units leaves ~100)."""
    by_reason: dict[str, list[str]] = {}
    for name, why in left:
        by_reason.setdefault(why, []).append(name)
    return [f"{len(runs)} run(s) {why}: {', '.join(runs[:names])}"
            + (f" and {len(runs) - names} more" if len(runs) > names else "") for why, runs in by_reason.items()]


def precision_clash(spec: RunSpec, cache: dict) -> str:
    """Why this machine must not start ``spec``: its row's published runs were made in another
    numerical precision than this machine's default for the model would give (bf16 autocast where
    the CPU has bf16 units, float32 elsewhere), and a row of mixed precisions gets no verdict. ''
    when they agree or the row has no published run. A CPU without bf16 units starts no run of a row
    that has none published either, unless ``train.amp`` is set: it would begin the row in float32.
    ``cache``: the rows' precisions, per results folder."""
    folder = str(spec.cfg.output.results_dir)
    if folder not in cache:
        found: dict[tuple, set] = {}
        for r in ledger.scan(folder)[0].to_dict("records"):
            found.setdefault((r["paper"], r["variant"], r["dataset"]), set()).add(
                ledger.record_at(r["record"], folder).precision)
        cache[folder] = found
    published = cache[folder].get((spec.paper, spec.variant, spec.cfg.data.source), set())
    setup = Setup.of(spec.cfg)
    here = setup.precision["autocast"] or "float32"
    if not published and setup.device.type == "cpu" and spec.cfg.train.amp is None and not setup.amp \
            and get_spec(spec.cfg.model.name).bf16:
        return ("left for a CPU with bf16 units (AMX-BF16 or AVX512-BF16): the book's CPU runs train in bf16 "
                "autocast, and a run started here in float32 would stay float32 wherever it resumed, 2-3 times "
                "slower; set train.amp=false to make it in float32 here anyway")
    if not published or published == {here}:
        return ""
    return (f"left for a machine that trains in {' and '.join(sorted(published))}, as the row's published runs "
            f"were: this machine's default is {here}, and a row of mixed precisions gets no verdict")


def _unfinished_sr_net(spec: RunSpec, specs: list[RunSpec]) -> str | None:
    """The run of the slice whose trained SR net ``spec`` loads, where that run is not finished."""
    weights = spec.cfg.model.kwargs.get("sr_weights")
    return next((other.cfg.run_name for other in specs if weights and other is not spec
                 and checkpoint_of(other.cfg) == weights and other.status != "finished"), None)


def execute_one(spec: RunSpec, *, reuse: bool = True, deadline: float | None = None, data=None) -> dict:
    """One run of a slice through the run layer (which files it in the ledger), resumed if it was
    started; its ledger row."""
    cfg = spec.cfg
    if not reuse:
        cfg = cfg.model_copy(update={"output": cfg.output.model_copy(update={"overwrite": True})})
    record = run(cfg, reuse=reuse, data=data if data is not None else load_data(cfg), resume=True, deadline=deadline)
    return ledger.row_of(record, paper=spec.paper, variant=spec.variant, profile=spec.profile)


@lru_cache(maxsize=64)
def gmacs_per_image(model: str, input_size: int, in_channels: int, kwargs: str) -> float:
    """Forward multiply-accumulates of one image, counted by torch's FLOP counter (a MAC = 2 FLOPs)."""
    return forward_gmacs(create_model(model, input_size=input_size, **json.loads(kwargs)), input_size, in_channels)


def listing(sl: Slice) -> pd.DataFrame:
    """The slice's runs with their estimated cost and status: GMAC per image x training images x
    epochs (at most; early stopping may end sooner), x3 for the backward pass, and the hours left
    on this machine at the measured speed of the book's loop at the run's batch size
    (:mod:`fer_core.schedule.speed`): a started run's hours count only the epochs its checkpoint lacks. A
    finished run names the hours it took (its record's wall time), to hold the estimate against.
    Where a GPU's speed has been measured (``bench train --device cuda``, wherever it ran), each run
    also has its hours on that GPU (:data:`GPU_HOURS`) and their basis."""
    out, benches, counts = [], {}, {}
    for spec in runs_of(sl):
        cfg = spec.cfg
        size, channels = input_shape(cfg)
        kwargs = speed.bench_kwargs(cfg.model.kwargs)
        gmac = gmacs_per_image(cfg.model.name, size, channels, json.dumps(kwargs, sort_keys=True))
        data_key = cfg.data.model_dump_json()  # the runs of a slice share a few data sets: each read once
        if data_key not in counts:
            split = load_data(cfg).split
            counts[data_key] = int((split == "train").sum()), int((split == "val").sum())
        images, val = counts[data_key]
        device = resolve_device(cfg.train.device).type
        if device not in benches:
            benches[device] = speed.measured(device)
        if "cuda" not in benches:  # a GPU's benchmark, wherever it was measured: its hours beside this machine's
            benches["cuda"] = speed.measured("cuda")
        status, paths = spec.status, RunPaths.of(cfg)
        record = RunRecord.read(paths.results) if status == "finished" else None
        done = (record.metrics.get("epochs_run", cfg.train.epochs) if record
                else checkpoints.epochs_done(paths.checkpoints))
        taken = record.provenance.get("wall_time_s") if record else None
        left = 0 if status == "finished" else max(cfg.train.epochs - done, 0)
        hours, basis = speed.run_hours(benches[device], cfg.model.name, gmac, images, val, left,
                                       cfg.train.batch_size, cfg.loss.weights, kwargs)
        on_gpu = {}
        if device != "cuda" and benches["cuda"] is not None:
            gpu_hours, gpu_basis = speed.run_hours(benches["cuda"], cfg.model.name, gmac, images, val, left,
                                                   cfg.train.batch_size, cfg.loss.weights, kwargs)
            on_gpu = {GPU_HOURS: round(gpu_hours, 3), "GPU speed from": gpu_basis}
        out.append({"run": cfg.run_name, "row": spec.variant, "seed": spec.seed,
                    "fold": "-" if spec.fold is None else spec.fold,
                    "dataset": cfg.data.source, "input": f"{channels}x{size}x{size}", "epochs (max)": cfg.train.epochs,
                    "epochs done": done,
                    "batch": cfg.train.batch_size, "train images": images, "GMAC/image": round(gmac, 3),
                    "cost (PMAC, at most)": round(3 * gmac * images * cfg.train.epochs / 1e6, 3),
                    f"hours here ({device}, at most)": None if hours is None else round(hours, 2),
                    "speed from": basis, **on_gpu, "status": status,
                    "standing": checkpoints.standing(paths.checkpoints) if status == "started" else "",
                    "hours taken": None if taken is None else round(taken / 3600, 2)})
    return pd.DataFrame(out)


#: a listing's column (and a queue status's) of a run's hours on a GPU where one has been measured
#: (``results/bench/train_cuda.csv``), beside this CPU's
GPU_HOURS = "hours on a GPU (at most)"
#: a queue status's column naming each started run (``queue <name> --status``)
STARTED = "started runs (epochs done)"
#: between two started runs in the status's STARTED column (each run's own text uses "; ")
RUNS_APART = " | "


def in_progress(paper: str, variants: list[str], folder: str | Path | None = None) -> dict[str, list[str]]:
    """Per plan row of ``paper``, its started runs as the saved queue statuses name them
    (``results/bench/queue_<name>.csv``, written by ``queue <name> --status --save``): where each
    stands when the status was saved. A chapter marks such a row *in progress*: no verdict reads
    an unfinished run."""
    folder = Path(folder) if folder is not None else project_path(BENCH)
    out: dict[str, list[str]] = {}
    for path in sorted(folder.glob("queue_*.csv")):
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
        if STARTED not in table or "slice" not in table:
            continue
        for label, started, when in zip(table["slice"], table[STARTED],
                                        table.get("estimated", pd.Series([""] * len(table)))):
            if not label.startswith(f"{paper}:") or not started:
                continue
            for entry in started.split(RUNS_APART):
                name = entry.split(" ", 1)[0]
                variant = max((v for v in variants if name.startswith(f"{v}-")), key=len, default=None)
                if variant:
                    out.setdefault(variant, []).append(f"{entry}, as of {when} ({path.stem[6:]} queue)")
    return out


def hours_column(table: pd.DataFrame) -> str | None:
    """The listing's hours column (it names the device)."""
    return next((c for c in table.columns if c.startswith("hours here")), None)


def hours_left(table: pd.DataFrame) -> float | None:
    """The estimated hours of a listing's unfinished runs (at most), or None where one is unknown."""
    hours = hours_column(table)
    rest = table.loc[table["status"] != "finished", hours]
    return float(rest.sum()) if rest.notna().all() else None
