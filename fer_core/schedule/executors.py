"""Where a slice's runs happen: one after the other in this process (:func:`fer_core.schedule.slices.execute`),
or fanned out over a Ray cluster (:func:`execute_ray`), a Ray task per run.

Ray runs the same code on a laptop and on a cluster: with no ``address`` it starts on this
machine's own CPUs and GPUs; with one (``auto``, ``ray://host:port``) it joins that cluster. Runs
already finished are read back before anything is scheduled. A task trains its run in a temporary
folder of its worker and returns the run record's files (small; never checkpoints, except the SR
net a later run loads, handed over in memory); the driver writes them into the results folder and
files them in the ledger through the run layer's one writer (:func:`fer_core.runs.runner.file_record`).
A task that fails (an error, or a worker that dies) is tried once more, then reported with its
error while the other runs go on. The data reaches each worker once: read from ``data_dir`` (a
path every node sees) or, without one, shipped through Ray's object store from the driver's
decoded arrays.
"""
from __future__ import annotations

import json
import os
import tempfile
import time

import pandas as pd

from ..paths import project_path
from ..runs import ledger, records
from ..runs.records import RunPaths
from ..runs.runner import file_record
from ..train import checkpoints
from ..train.build import load_data
from .plans import checkpoint_of
from .slices import RunSpec, Slice, execute_one, runs_of


def _train_remotely(spec: RunSpec, data, sr_files: dict[str, bytes], threads: int, keep_best: bool) -> dict:
    """In a Ray worker: train one run in a temporary folder; return its record's files (and, for a
    run another one takes its SR net from, its selected weights)."""
    import torch

    torch.set_num_threads(threads)
    for path, blob in sr_files.items():  # the SR net this run loads, where its config expects it
        target = project_path(path)
        if not target.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(blob)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="fer-ray-") as tmp:
        output = spec.cfg.output.model_copy(update={"results_dir": f"{tmp}/results", "checkpoint_dir": f"{tmp}/ckpt"})
        local = RunSpec(spec.paper, spec.variant, spec.seed, spec.fold, spec.profile,
                        spec.cfg.model_copy(update={"output": output}))
        execute_one(local, data=data)
        paths = RunPaths.of(local.cfg)
        files = records.read_files(paths)
        best = (paths.checkpoints / checkpoints.BEST).read_bytes() if keep_best else None
    return {"files": files, "best": best, "seconds": time.perf_counter() - t0, "host": os.uname().nodename}


def keep_returned(spec: RunSpec, files: dict[str, bytes]) -> dict:
    """The driver writes a record returned by a worker into its results folder, files it in the
    ledger (:func:`fer_core.runs.runner.file_record`) and returns its ledger row."""
    records.write_files(RunPaths.of(spec.cfg), files)
    record = file_record(spec.cfg)
    return ledger.row_of(record, paper=spec.paper, variant=spec.variant, profile=spec.profile)


def _one_line(e: Exception) -> str:
    cause = getattr(e, "cause", None) or e
    text = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {text[-1] if text else ''}"[:300]


class _Pool:
    """The driver's side: submits the tasks, retries a failed one once, writes what comes back,
    and keeps the progress bar and the summary."""

    def __init__(self, task, *, shipped: dict, cpus: int, retries: int, dependencies: set, total: int,
                 progress: bool):
        from tqdm.auto import tqdm

        self.task, self.shipped, self.cpus, self.retries, self.dependencies = task, shipped, cpus, retries, dependencies
        self.pending: dict = {}
        self.sr_blobs: dict[str, bytes] = {}
        self.rows: dict[RunSpec, dict] = {}
        self.summary: list[dict] = []
        self.bar = tqdm(total=total, desc="runs", unit="run", disable=not progress)

    def submit(self, spec: RunSpec, attempt: int = 1) -> None:
        path = spec.cfg.model.kwargs.get("sr_weights")
        sr = {path: self.sr_blobs[path]} if path in self.sr_blobs else {}
        data = self.shipped.get(json.dumps(spec.cfg.data.model_dump(mode="json"), sort_keys=True))
        ref = self.task.remote(spec, data, sr, self.cpus, spec in self.dependencies)
        self.pending[ref] = (spec, attempt)

    def drain(self) -> None:
        """Wait for every submitted task (and its retry)."""
        import ray

        while self.pending:
            ready, _ = ray.wait(list(self.pending), num_returns=1)
            spec, attempt = self.pending.pop(ready[0])
            try:
                out = ray.get(ready[0])
            except Exception as e:  # the task's own error, re-raised by Ray
                if attempt <= self.retries:
                    self.submit(spec, attempt + 1)
                    continue
                self._done(spec, "failed", attempt, error=_one_line(e))
                continue
            self.rows[spec] = keep_returned(spec, out["files"])
            if out["best"] is not None:
                self.sr_blobs[checkpoint_of(spec.cfg)] = out["best"]
            self._done(spec, "finished", attempt, round(out["seconds"], 1), out["host"])

    def _done(self, spec, status, attempts, seconds=None, host="", error="") -> None:
        self.summary.append({"run": spec.cfg.run_name, "status": status, "attempts": attempts, "seconds": seconds,
                             "host": host, "error": error})
        self.bar.update(1)
        self.bar.set_postfix(failed=sum(r["status"] == "failed" for r in self.summary), running=len(self.pending))


def execute_ray(sl: Slice | list[Slice], *, address: str | None = None, gpus_per_run: float | None = None,
                cpus_per_run: int = 1, retries: int = 1, num_cpus: int | None = None, progress: bool = True
                ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every unfinished run of the slice (or of several slices: several papers at once) as a Ray
    task, the SR nets that later runs load first. Returns (the ledger rows of the slices' runs with
    a record, a summary: one row per run with its status, attempts, seconds, host and error;
    ``attrs["wall_time_s"]``)."""
    import ray
    import torch

    t0 = time.perf_counter()
    parts = sl if isinstance(sl, list) else [sl]
    specs = [spec for part in parts for spec in runs_of(part)]
    finished = {s: execute_one(s) for s in specs if s.status == "finished"}  # read back, never scheduled
    todo = [s for s in specs if s not in finished]
    before = [{"run": s.cfg.run_name, "status": "finished before", "attempts": 0, "seconds": None, "host": "",
               "error": ""} for s in finished]
    if not todo:
        summary = pd.DataFrame(before)
        summary.attrs["wall_time_s"] = round(time.perf_counter() - t0, 1)
        return pd.DataFrame(list(finished.values()), columns=ledger.COLUMNS), summary
    if not ray.is_initialized():
        ray.init(address=address, num_cpus=num_cpus if address is None else None, include_dashboard=False,
                 log_to_driver=False, logging_level="ERROR")
    gpus = gpus_per_run if gpus_per_run is not None else (1 if torch.cuda.is_available() else 0)
    task = ray.remote(num_cpus=cpus_per_run, num_gpus=gpus, max_retries=0)(_train_remotely)
    keyed = {json.dumps(s.cfg.data.model_dump(mode="json"), sort_keys=True): s for s in todo}
    shipped = {} if all(p.data_dir for p in parts) else {k: ray.put(load_data(s.cfg)) for k, s in keyed.items()}
    loaded = {s.cfg.model.kwargs.get("sr_weights") for s in todo}
    dependencies = {s for s in todo if checkpoint_of(s.cfg) in loaded}
    pool = _Pool(task, shipped=shipped, cpus=cpus_per_run, retries=retries, dependencies=dependencies,
                 total=len(todo), progress=progress)
    for wave in ([s for s in todo if s in dependencies], [s for s in todo if s not in dependencies]):
        for spec in wave:
            pool.submit(spec)
        pool.drain()
    pool.bar.close()
    rows = {**finished, **pool.rows}
    summary = pd.DataFrame(before + pool.summary)
    summary.attrs["wall_time_s"] = round(time.perf_counter() - t0, 1)
    return pd.DataFrame([rows[s] for s in specs if s in rows], columns=ledger.COLUMNS), summary
