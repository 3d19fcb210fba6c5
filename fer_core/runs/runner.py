"""Running an experiment: what it means around the training loop, top to bottom.

:func:`train` locks the run (one process per run), checks the folders, the disk and the ledger
before anything is trained (preflight), prepares the run folder (a finished run is never
overwritten; a started one resumes only under the settings it began with), fits the model
(:func:`fer_core.train.engine.fit`, resumed from ``last.pt`` when asked), tests the selected epoch
once, explains it (``attention.npz``), writes the record and files it in the ledger
(:func:`file_record`, the ledger's one writer, which the Ray driver calls too). :func:`run` reads
back a finished run made with the same settings on the same data instead of training it again.
Reopening a finished run lives here as well: :func:`run_data`, :func:`restore`,
:func:`evaluate_run` and :func:`recompute_attention`.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import torch
from torch import nn

from .. import data as fer_data
from ..config import RESULT_NEUTRAL, Config, ConfigError, diff_settings, identity_hash, load_config
from ..data import duplicates
from ..explain import attention
from ..models import count_parameters
from ..train import checkpoints
from ..train.build import Setup, load_data
from ..train.engine import TimeLimitReached, Training, fit
from ..train.evaluate import TTA, Scores, evaluation, predict, score
from ..train.hardware import cpu_info
from . import ledger, preflight, records
from .locks import run_lock
from .records import RunExistsError, RunPaths, RunRecord, prepare_run, provenance


def train(cfg: Config | str | Path, *, data: fer_data.FERData | None = None, resume: bool = False,
          stop_after: int | None = None, deadline: float | None = None) -> RunRecord | None:
    """Train, select on validation, test, and write the run record; returns it.

    The run is locked for the whole call (one process per run: ``fer_core.runs.locks``). ``deadline``
    (a ``time.monotonic()`` value) and ``train.time_limit`` (seconds from this call) end the call
    after the epoch that reaches them, with :class:`fer_core.train.engine.TimeLimitReached`; the run is
    checkpointed and resumes exactly. ``stop_after=k`` stops after epoch k as if the run were
    killed there (returns None; used to test exact resume).
    """
    if not isinstance(cfg, Config):
        cfg = load_config(cfg)
    if cfg.train.time_limit:
        own = time.monotonic() + cfg.train.time_limit
        deadline = own if deadline is None else min(deadline, own)
    paths = RunPaths.of(cfg)
    preflight.writable(paths.results.parent, "results")  # before anything is locked, loaded or trained
    preflight.writable(paths.checkpoints.parent, "checkpoint")
    with run_lock(paths.name, paths.results, paths.checkpoints):
        resuming = prepare_run(paths, resume=resume, overwrite=cfg.output.overwrite)
        started, t0 = time.strftime("%Y-%m-%dT%H:%M:%S%z"), time.perf_counter()
        data = data if data is not None else load_data(cfg)
        t = _start_or_resume(cfg, paths, data, resuming, started)
        spent_before = t.state["elapsed"]  # by the epochs before a resumed checkpoint
        trained_before = (t.state["epoch"], t.state.get("partial"))
        if fit(t, data, checkpoint_dir=paths.checkpoints, stop_after=stop_after, deadline=deadline,
               started_at=t0) is None:
            return None  # stopped as if killed (stop_after)
        # the test and the attention maps must end inside the limit too; a call that found the run
        # trained already finishes it whatever its limit (stopping again would not shorten the wait)
        if deadline is not None and (t.state["epoch"], t.state.get("partial")) != trained_before:
            need = finishing_seconds(cfg, t.state, len(data.select("test")), t.setup.device)
            if time.monotonic() + need > deadline:
                raise TimeLimitReached(paths.name, t.state["epoch"], finishing=need)
        wall_time_s = time.perf_counter() - t0 + spent_before
        t_test = time.perf_counter()
        scored = _test(t, paths, data)
        t.state["test_s"] = time.perf_counter() - t_test
        return _record(t, paths, data, scored, t.state.get("started") or started, wall_time_s)


ATTENTION_UNMEASURED_S = 180.0  # no record of the model on this kind of device yet: the CPU queue's slowest was 165 s
#: ... nor as many seconds as this many test faces take at the run's validation speed: the record's
#: forward and backward passes, measured (bench attention, 32 faces) against each model's evaluation
#: speed: ResMaskingNet at 224 983 s at 9.8 img/s (~9,600 faces), ResNet-18 at 48 12 s (~11,000)
ATTENTION_AS_TEST_IMAGES = 12_000
FINISHING_SAFETY = 1.25


def finishing_seconds(cfg: Config, state: dict, n_test: int, device: str) -> float:
    """What a trained run still needs: the test (plain and every TTA view, at the speed its last
    validation ran) and the attention record (the slowest of this model's records on this kind of
    device under the results folder, else ATTENTION_AS_TEST_IMAGES faces at the validation's speed,
    at least ATTENTION_UNMEASURED_S), with a 25% margin. A time limit stops a run before its test
    when these would not end inside it."""
    views = sum(10 if mode == "tencrop" else cfg.eval.tta_views for mode in cfg.eval.tta)
    s_per_image = state.get("val_s_per_image", 0.0)
    test_s = s_per_image * n_test * (1 + views)
    attention_s = _attention_seconds(cfg, device, s_per_image) if cfg.eval.attention else 0.0
    return FINISHING_SAFETY * (test_s + attention_s)


def _attention_seconds(cfg: Config, device: str, s_per_image: float) -> float:
    kind = str(device).split(":")[0]
    unmeasured = max(ATTENTION_UNMEASURED_S, ATTENTION_AS_TEST_IMAGES * s_per_image)
    try:
        rows = ledger.read_ledger(cfg.output.results_dir)
    except ValueError:  # a damaged ledger is the preflight's to name
        return unmeasured
    rows = rows[(rows["model"] == cfg.model.name) & (rows["device"].astype(str).str.split(":").str[0] == kind)]
    measured = []
    for path in rows["record"]:  # the ledger as an index: an estimate, not a published number
        provenance = ledger.record_dir(path, cfg.output.results_dir) / "provenance.json"
        try:
            measured.append(float(json.loads(provenance.read_text())["attention_s"]))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return max(measured, default=unmeasured)


def _start_or_resume(cfg: Config, paths: RunPaths, data: fer_data.FERData, resuming: bool, started: str) -> Training:
    """A fresh Training, or the started run's from ``last.pt`` under the precision it began with;
    preflight checks before either trains."""
    ckpt = _resume_checkpoint(cfg, paths) if resuming else None
    t = Training.start(cfg, data.num_classes, Setup.recorded(cfg, ckpt.get("precision")) if ckpt else None)
    t.run = paths.name
    _preflight(cfg, paths, data, t)
    if ckpt is None:
        t.state["started"], t.state["started_on"] = started, _machine()
        return t
    t.load(ckpt)  # the record says it was resumed, from where, on what, and keeps the first start
    t.state.setdefault("started", None)  # a checkpoint of older code: its first start is not known
    t.state.setdefault("resumes", []).append({"at": started, "from_epoch": t.state["epoch"],
                                              "elapsed_s": round(t.state["elapsed"], 2), **_machine()})
    return t


def _machine() -> dict:
    """Where a part of a run trains: a run resumed in another session may go on on another CPU,
    or with fewer threads (``queue --workers``); the provenance's own fields name the last part's."""
    return {"torch_threads": torch.get_num_threads(), **cpu_info()}


def _preflight(cfg: Config, paths: RunPaths, data: fer_data.FERData, t: Training) -> None:
    """Before the first batch: the ledger is whole, the data cache is writable, the disk has room for
    the checkpoints (the results and checkpoint folders are checked before the run is locked)."""
    ledger.check(cfg.output.results_dir)  # a damaged ledger is named now, not after hours of training
    if data.source not in fer_data.BUNDLED:
        preflight.writable(fer_data.cache_dir(), "data cache (FER_CACHE_DIR)")
    slots = {"sgd": 1 if cfg.train.optimizer.momentum else 0}.get(cfg.train.optimizer.name, 2)
    preflight.disk_space(paths.checkpoints.parent, preflight.checkpoint_bytes(count_parameters(t.model), slots))


def _resume_checkpoint(cfg: Config, paths: RunPaths) -> dict:
    """``last.pt`` of a started run, after checking that it was made under the same settings (those
    that cannot change the result may differ: they are recorded in its state)."""
    ckpt = checkpoints.load(paths.checkpoints / checkpoints.LAST, "cpu", resume=True)
    if ckpt.get("config") is not None:
        differences = diff_settings(ckpt["config"], cfg.to_dict())
        # the data folder's spelling may change: a plan's run name carries the data's fingerprint, so a
        # checkpoint under this name was made on this data; the change is recorded like the neutral settings'
        refused = {k: v for k, v in differences.items() if k not in RESULT_NEUTRAL and k != "data.dir"}
        if refused:
            lines = "\n".join(f"  {k}: {old!r} in the checkpoint, {new!r} now" for k, (old, new) in refused.items())
            raise ConfigError(f"Run {paths.name} was started with other settings, and a resume must continue the "
                              f"same run:\n{lines}\nResume without these changes, or start a new run (another run "
                              f"name, or output.overwrite=true, which keeps the old files aside).")
        ckpt["state"].setdefault("changes", {}).update({k: list(v) for k, v in differences.items()})
    return ckpt


def _test(t: Training, paths: RunPaths, data: fer_data.FERData) -> Scores:
    """The selected epoch (best.pt) scored once on the test split, plainly and with each TTA mode."""
    t.model.load_state_dict(checkpoints.load(paths.checkpoints / checkpoints.BEST, t.setup.device)["model"])
    return score(t.model, data.select("test"), t.setup, t.cfg)


def _record(t: Training, paths: RunPaths, data: fer_data.FERData, scored: Scores, started: str,
            wall_time_s: float) -> RunRecord:
    """Explain the selected model (attention.npz), write the record with its provenance, and file
    it in the ledger."""
    cfg, state, setup = t.cfg, t.state, t.setup
    t_attention = time.perf_counter()
    explained = attention.compute(t.model, cfg.model.name, setup, data.select("test"), n=cfg.eval.attention,
                                  ig_steps=cfg.eval.attention_steps, sanity=cfg.eval.attention_sanity,
                                  seed=cfg.data.seed, probs=scored.probs) if cfg.eval.attention else None
    prov = provenance(cfg, data, setup.device, wall_time_s, started, setup.precision)
    prov["attention_s"] = round(time.perf_counter() - t_attention, 2)  # its share of the run: bench attention
    if state.get("test_s") is not None:
        prov["test_s"] = round(state["test_s"], 2)  # with attention_s: what a time limit reserves (finishing_seconds)
    if state.get("changes"):
        prov["resumed_with_changes"] = state["changes"]
    if state.get("resumes"):  # the work after each resumed checkpoint's epoch and before the kill is lost,
        prov["resumes"] = state["resumes"]  # its time not in wall_time_s (under a budget: at most one epoch)
        prov["started_on"] = state.get("started_on")  # None: a checkpoint of older code
    if explained is not None:
        paths.results.mkdir(parents=True, exist_ok=True)
        attention.write(paths.results / attention.FILE, explained)
    metrics = {"split": "test", "selected_epoch": state["best_epoch"], "best_val_acc": state["best_acc"],
               "epochs_run": state["epoch"], "parameters": count_parameters(t.model), "note": data.note or None,
               **scored.metrics}
    records.write(paths, cfg, state["history"], metrics, scored.roc, scored.predictions, prov,
                  extra={duplicates.FILE: duplicates.for_run(data, scored.predictions)})
    return file_record(cfg)


def file_record(cfg: Config) -> RunRecord:
    """Read a run's finished record back and enter it in its results folder's ledger (once: a
    record already there is not added again). The ledger's one writer: a trained run, a finished
    run read back, and the Ray driver's returned records all go through it."""
    record = RunRecord.read(RunPaths.of(cfg).results)
    ledger.append(cfg.output.results_dir, ledger.row_of(record, **cfg.ledger_tags()))
    return record


def run(cfg: Config, *, reuse: bool = True, data: fer_data.FERData | None = None, resume: bool = False,
        deadline: float | None = None) -> RunRecord:
    """Train ``cfg`` (resuming a started run with ``resume``), or, with ``reuse``, read back its
    finished record when that run used the same resolved config (settings that cannot change the
    result aside) on the same data (checked by fingerprint), and file it in the ledger. A finished
    run with another config is an error, never overwritten."""
    paths = RunPaths.of(cfg)
    if reuse and paths.finished:
        record = RunRecord.read(paths.results)
        data = data if data is not None else load_data(cfg)
        # the same settings, however the data folder is spelled (the fingerprint checks the data itself)
        same_cfg = identity_hash(record.config, None) == identity_hash(cfg.to_dict(), None)
        same_data = record.provenance["data"]["fingerprint"] == data.fingerprint
        if same_cfg and same_data:
            return file_record(cfg)
        what = "config" if not same_cfg else "data"
        raise RunExistsError(f"Run {paths.results} exists with a different {what}. Give this run another "
                             f"name (run=...), or set output.overwrite=true to replace it (the old record "
                             f"is moved aside).")
    return train(cfg, data=data, resume=resume, deadline=deadline)


# -- reopening a finished run -----------------------------------------------------------------
def run_data(record: RunRecord, data: fer_data.FERData | None = None) -> fer_data.FERData:
    """The data a finished run was trained and tested on (checked by fingerprint)."""
    data = data if data is not None else load_data(load_config(record.config))
    if data.fingerprint != record.provenance["data"]["fingerprint"]:
        raise ValueError(f"The data now at {data.location} (fingerprint {data.fingerprint}) is not the data "
                         f"run {record.path} was trained on ({record.provenance['data']['fingerprint']}).")
    return data


def restore(run_dir: str | Path | RunRecord, data: fer_data.FERData | None = None
            ) -> tuple[nn.Module, Setup, fer_data.FERData, Config]:
    """A finished run's selected model (best validation epoch), in eval mode, with its setup and data."""
    record = run_dir if isinstance(run_dir, RunRecord) else RunRecord.read(run_dir)
    cfg = load_config(record.config)
    ckpt = Path(record.provenance["checkpoint"])
    if not ckpt.is_file():
        raise FileNotFoundError(f"Checkpoint {ckpt} of run {record.path} is missing (checkpoints are not "
                                f"committed; re-train the run to evaluate it again).")
    data = run_data(record, data)
    setup = Setup.recorded(cfg, record.provenance.get("precision")).apply()  # the precision it was tested in
    model = setup.model(cfg, data.num_classes)  # the memory format and kernels it was tested with
    model.load_state_dict(checkpoints.load(ckpt, setup.device)["model"])
    return model.eval(), setup, data, cfg


def evaluate_run(run_dir: str | Path, *, tta: str | None = None, split: str = "test",
                 data: fer_data.FERData | None = None) -> dict:
    """Re-evaluate a finished run from its record and best checkpoint, plainly or with one
    test-time augmentation mode (``tencrop``, ``random_views``); nothing is written."""
    model, setup, data, cfg = restore(run_dir, data)
    part = data.select(split)
    probs = predict(model, part, setup, cfg.train.eval_batch_size, tta=TTA.of(cfg, tta) if tta else None)
    metrics, _ = evaluation(part, probs)
    return {"run": str(run_dir), "split": split, "tta": tta, "note": data.note or None, **metrics}


def recompute_attention(run_dir: str | Path, *, n: int | None = None) -> Path:
    """Rewrite a finished run's ``attention.npz`` from its selected checkpoint (an existing file is
    kept beside it as ``attention.<time>.npz``)."""
    record = RunRecord.read(run_dir)
    model, setup, data, cfg = restore(record)
    arrays = attention.compute(model, cfg.model.name, setup, data.select("test"), n=n or cfg.eval.attention or 32,
                               ig_steps=cfg.eval.attention_steps, sanity=cfg.eval.attention_sanity,
                               seed=cfg.data.seed, probs=record.probs)
    target = Path(run_dir) / attention.FILE
    if target.is_file():
        target.rename(target.with_name(f"attention.{time.strftime('%Y%m%d-%H%M%S')}.npz"))
    written = attention.write(target, arrays)
    records.seal(run_dir)  # the record changed by the user's own command: sealed anew
    return written
