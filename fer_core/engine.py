"""The one training and evaluation engine every model of the book goes through.

``train(cfg)`` loads the data, builds the registered model, trains with the configured
optimizer and schedule (early stopping and checkpoint selection on the *validation* split,
never the test split), checkpoints every epoch, and writes the run record. A killed run
resumes exactly (``resume=True``): shuffling, augmentation and dropout are seeded per epoch
from ``cfg.seed``, so the resumed run ends with the same metrics as one run straight through.
"""
from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from . import attention, checkpoints, ledger, preflight
from . import data as fer_data
from .data import duplicates
from .augment import augment, random_view_params, tencrop_views, to_input, warp
from .config import RESULT_NEUTRAL, AugmentConfig, Config, ConfigError, diff_settings, load_config, result_settings
from .hardware import cpu_bf16_units
from .losses import LOSS_TERMS, Criterion, logits_of
from .metrics import classification_metrics, roc_curves
from .models import count_parameters, create_model, get_spec
from .locks import run_lock
from .records import RunExistsError, RunPaths, RunRecord, prepare_run, provenance, write_record


# -- set-up ----------------------------------------------------------------------------------
def load_data(cfg: Config) -> fer_data.FERData:
    """The data a config asks for: source, CK+ fold, class set and quick-profile subset."""
    d = cfg.data
    data = fer_data.load(d.source, d.dir, n_folds=d.n_folds, cv=d.cv, with_contempt=d.with_contempt,
                         strict_size=d.strict_size, synthetic_size=tuple(d.synthetic_size),
                         synthetic_seed=d.seed)
    if data.fold is not None:
        data = data.with_fold(d.fold)
    return data.subsample(d.subset, seed=d.seed)


def resolve_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device=cuda, but no CUDA device is visible here: use train.device=auto or cpu.")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def input_shape(cfg: Config) -> tuple[int, int]:
    spec = get_spec(cfg.model.name)
    return cfg.model.input_size or spec.input_size, spec.in_channels


def build_model(cfg: Config, num_classes: int) -> nn.Module:
    torch.manual_seed(cfg.seed)  # same seed -> same initial weights
    return create_model(cfg.model.name, num_classes=num_classes, weights=cfg.model.weights,
                        input_size=input_shape(cfg)[0], weights_partial=cfg.model.weights_partial, **cfg.model.kwargs)


#: optimisers torch offers as one fused kernel over all parameters (CPU and CUDA)
FUSED_OPTIMIZERS = ("sgd", "adam", "adamw")


def build_optimizer(cfg: Config, model: nn.Module, fused: bool = False) -> torch.optim.Optimizer:
    """The configured optimiser; ``fused`` (:attr:`Setup.fused`) takes torch's fused kernel where
    it offers one (:data:`FUSED_OPTIMIZERS`)."""
    o = cfg.train.optimizer
    params = [p for p in model.parameters() if p.requires_grad]
    kernel = {"fused": True} if fused and o.name in FUSED_OPTIMIZERS else {}
    if o.name == "sgd":
        return torch.optim.SGD(params, lr=o.lr, momentum=o.momentum, nesterov=o.nesterov, weight_decay=o.weight_decay,
                               **kernel)
    if o.name == "radam":
        return torch.optim.RAdam(params, lr=o.lr, betas=tuple(o.betas), eps=o.eps, weight_decay=o.weight_decay,
                                 decoupled_weight_decay=o.decoupled_weight_decay)
    cls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[o.name]
    return cls(params, lr=o.lr, betas=tuple(o.betas), eps=o.eps, weight_decay=o.weight_decay, **kernel)


def build_scheduler(cfg: Config, opt: torch.optim.Optimizer):
    s = cfg.train.scheduler
    if s.name == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="max", factor=s.factor,
                                                          patience=s.patience, min_lr=s.min_lr)
    if s.name == "step":
        return torch.optim.lr_scheduler.StepLR(opt, step_size=s.step_size, gamma=s.gamma)
    if s.name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.train.epochs, eta_min=s.min_lr)
    return None


class TimeLimitReached(RuntimeError):
    """A run stopped at its time limit, checkpointed: calling it again (resume) continues exactly."""

    def __init__(self, run: str, epoch: int | None):
        self.run, self.epoch = run, epoch
        where = f"after epoch {epoch} of run {run}" if epoch is not None else f"before run {run}"
        super().__init__(f"time limit reached {where}; everything is checkpointed: run the same command again "
                         f"to resume")


def _epoch_seed(seed: int, epoch: int) -> int:
    return seed * 100_003 + epoch


#: the precision of a checkpoint written before the precision was recorded in it: the engine's
#: defaults then (bf16 autocast and channels-last on CUDA only, optimisers unfused)
LEGACY_PRECISION = {"cpu": {"autocast": None, "channels_last": False, "fused_optimizer": False,
                            "flush_denormal": False},
                    "cuda": {"autocast": "bfloat16", "channels_last": True, "fused_optimizer": False}}


@dataclass
class Setup:
    """What training and evaluation share: device, precision and input shape.

    Defaults (``train.amp`` / ``train.channels_last`` unset): bf16 autocast and channels-last
    tensors on CUDA and on a CPU with bf16 matrix units (AMX-BF16 or AVX512-BF16:
    :func:`fer_core.hardware.cpu_bf16_units`), unless the model's registry entry says it keeps
    float32 (``bf16=False``); float32 elsewhere. Optimisers step fused where torch offers it. On
    the CPU, denormal floats are flushed to zero (``flush_denormal``): measured here, ResNet-50's
    float32 steps on FER2013 slow from 65 to 14 images/s once its values reach the denormal range."""

    device: torch.device
    size: int
    in_channels: int
    amp: bool
    channels_last: bool
    compile: bool = False
    fused: bool = False
    flush_denormal: bool = False

    @classmethod
    def of(cls, cfg: Config, precision: dict | None = None) -> "Setup":
        """The setup of ``cfg`` on this machine; ``precision`` (a checkpoint's :attr:`precision`)
        overrides the defaults, so that a resumed run continues under the precision it started with."""
        device = resolve_device(cfg.train.device)
        size, ch = input_shape(cfg)
        if precision is not None:
            return cls(device, size, ch, precision.get("autocast") == "bfloat16", bool(precision.get("channels_last")),
                       cfg.train.compile, bool(precision.get("fused_optimizer")), bool(precision.get("flush_denormal")))
        fast = get_spec(cfg.model.name).bf16 and (device.type == "cuda" or bool(cpu_bf16_units()))
        amp = cfg.train.amp if cfg.train.amp is not None else fast
        cl = cfg.train.channels_last if cfg.train.channels_last is not None else fast
        return cls(device, size, ch, amp, cl, cfg.train.compile, fused=True, flush_denormal=device.type == "cpu")

    @property
    def precision(self) -> dict:
        """The settings in force, for the provenance and the checkpoint: autocast dtype, memory
        format, fused optimiser, compilation."""
        return {"autocast": "bfloat16" if self.amp else None, "channels_last": self.channels_last,
                "fused_optimizer": self.fused, "flush_denormal": self.flush_denormal, "compile": self.compile,
                "losses_and_metrics": "float32"}

    def apply(self) -> "Setup":
        """Set what is process-wide (the CPU's denormal mode) for a pass under this setup."""
        if self.device.type == "cpu":
            torch.set_flush_denormal(self.flush_denormal)
        return self

    def autocast(self):
        if not self.amp:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x


def _images_tensor(data: fer_data.FERData, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(data.images)).unsqueeze(1).to(device)


# -- evaluation ------------------------------------------------------------------------------
@dataclass(frozen=True)
class TTA:
    """One test-time augmentation mode (``eval.tta``) with the settings it reads."""

    mode: str
    crop: int = 44
    n_views: int = 10
    augment: AugmentConfig | None = None
    seed: int = 0

    @classmethod
    def of(cls, cfg: Config, mode: str) -> "TTA":
        return cls(mode, cfg.eval.tta_crop, cfg.eval.tta_views, cfg.augment, cfg.seed)


def _view_maker(tta: TTA | None, n: int, setup: Setup):
    """``views(x, rows)``: the model inputs of one batch ``x`` (rows ``rows`` of the split), one per view."""
    size, ch = setup.size, setup.in_channels
    if tta is None:
        return lambda x, rows: iter([to_input(x, size, ch)])
    if tta.mode == "tencrop":
        return lambda x, rows: iter(tencrop_views(x, tta.crop, size, ch))
    if tta.mode == "random_views":
        thetas = random_view_params(n, tta.augment or AugmentConfig(), tta.n_views, tta.seed)
        return lambda x, rows: (warp(x, th[rows], size, ch) for th in thetas)
    raise ValueError(f"unknown test-time augmentation {tta.mode!r}")


@torch.no_grad()
def _forward(model: nn.Module, data: fer_data.FERData, setup: Setup, batch_size: int = 256,
             tta: TTA | None = None, with_terms: bool = False) -> tuple[np.ndarray, dict[str, float]]:
    """One pass over ``data``: class probabilities (the softmax averaged over the views of ``tta``)
    and, with ``with_terms`` (single view), the mean of every registered loss term the model's
    outputs allow."""
    model.eval()
    images = _images_tensor(data, setup.device)
    targets = torch.from_numpy(data.targets).to(setup.device) if with_terms else None
    views = _view_maker(tta, len(images), setup)
    probs, sums = [], {}
    for i in range(0, len(images), batch_size):
        x = images[i:i + batch_size]
        total, first = None, None
        for v in views(x, slice(i, i + len(x))):
            with setup.autocast():
                out = model(setup.prepare(v))
            p = torch.softmax(logits_of(out).float(), 1)
            total = p if total is None else total + p
            if first is None:
                first = (out, v)
        probs.append(total.cpu())
        if with_terms and isinstance(first[0], dict):
            for name, term in LOSS_TERMS.items():
                try:
                    value = float(term(first[0], targets[i:i + batch_size], first[1]))
                except KeyError:
                    continue  # the model has no output this term needs
                sums[name] = sums.get(name, 0.0) + value * len(x)
    probs = torch.cat(probs)  # sums of one softmax per view: dividing by the row sum averages them
    return (probs / probs.sum(1, keepdim=True)).numpy(), {k: v / len(images) for k, v in sums.items()}


def predict(model: nn.Module, data: fer_data.FERData, setup: Setup, batch_size: int = 256,
            tta: TTA | None = None) -> np.ndarray:
    """Class probabilities ``N x C`` for every image of ``data``: the softmax of the logits, averaged
    over the views of a test-time augmentation ``tta`` when given."""
    return _forward(model, data, setup, batch_size, tta)[0]


def loss_terms(model: nn.Module, data: fer_data.FERData, setup: Setup, batch_size: int = 256) -> dict[str, float]:
    """Mean of every registered loss term the model's outputs allow (``rec``, ``margin``,
    ``sr_l1``, ``sr_l2``, ...), on ``data`` without augmentation: a model's auxiliary objectives
    measured on the test split, whichever of them it was trained with. Empty for a model that
    returns logits only."""
    return _forward(model, data, setup, batch_size, with_terms=True)[1]


def evaluation(data: fer_data.FERData, probs: np.ndarray) -> tuple[dict, dict]:
    """(metrics, ROC curves) of ``probs`` against ``data``'s targets."""
    y = data.targets
    return classification_metrics(y, probs, data.class_names), roc_curves(y, probs, data.class_names)


# -- training --------------------------------------------------------------------------------
def _progress(iterable, enabled: bool, **kw):
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, **kw)


class TimeOneCycle:
    """The learning rate as a function of the training's wall clock (``train.budget``): a linear
    warm-up from 4% of the peak over the first ``warmup`` share of the budget, then a cosine down to
    ``min_lr``. Set before every step, so that a run ends its schedule exactly when its time is spent."""

    def __init__(self, opt: torch.optim.Optimizer, peak: float, budget: float, warmup: float, min_lr: float):
        self.opt, self.peak, self.budget, self.warmup, self.min_lr = opt, peak, budget, warmup, min_lr

    def lr(self, elapsed: float) -> float:
        t = min(1.0, elapsed / self.budget)
        if t < self.warmup:
            return self.peak * (0.04 + 0.96 * t / self.warmup)
        u = (t - self.warmup) / (1 - self.warmup)
        return self.min_lr + (self.peak - self.min_lr) * 0.5 * (1 + math.cos(math.pi * u))

    def set(self, elapsed: float) -> None:
        for g in self.opt.param_groups:
            g["lr"] = self.lr(elapsed)


class _NoSchedule:
    """A budget without the time schedule: the learning rate is the optimiser's own."""

    def set(self, elapsed: float) -> None:
        pass


def _fresh_state() -> dict:
    return {"epoch": 0, "history": [], "best_acc": -1.0, "best_epoch": -1, "bad_epochs": 0, "elapsed": 0.0,
            "stopped_early": False}


class DivergedError(RuntimeError):
    """Training reached a non-finite loss; the message names the epoch, the step, the loss term
    and the likely cause."""


def _check_finite(cfg: Config, model: nn.Module, opt, epoch: int, first_bad: int, steps: int, sums: dict) -> None:
    """Stop a diverged run at the end of the epoch it diverged in, before anything of it is saved:
    a non-finite loss (its first step and term), or weights and statistics that are no longer finite."""
    where = None
    if first_bad >= 0:
        terms = [k for k, v in sums.items() if k != "loss" and not torch.isfinite(v)] or ["loss"]
        where = f"the loss ({', '.join(terms)}) became non-finite at epoch {epoch + 1}, step {first_bad} of {steps}"
    else:
        broken = [n for n, t in [*model.named_parameters(), *model.named_buffers()]
                  if t.is_floating_point() and not torch.isfinite(t).all()]
        if broken:
            where = (f"the weights became non-finite in epoch {epoch + 1} ({', '.join(broken[:3])}"
                     f"{' ...' if len(broken) > 3 else ''}) while its loss stayed finite")
    if where:
        raise DivergedError(
            f"Run {cfg.run_name} diverged: {where}, learning rate {opt.param_groups[0]['lr']:g}. Likely cause: a "
            f"learning rate too high for this model (train.optimizer.lr), or non-finite weights or inputs. Nothing "
            f"of this epoch was saved: the last checkpoint is the last finite one; lower the learning rate and start "
            f"again with output.overwrite=true.")


def _train_epoch(cfg: Config, setup: Setup, model: nn.Module, opt: torch.optim.Optimizer, criterion: Criterion,
                 images: torch.Tensor, targets: torch.Tensor, epoch: int, clock=None, timed=None) -> dict:
    """One pass over the training split; returns the epoch's mean loss terms and accuracy. The
    shuffle, the augmentation and dropout are seeded by (seed, epoch), so a resumed run repeats
    exactly what an uninterrupted one does. ``model`` may be the compiled one (``train.compile``).
    With a budget (``clock``: seconds spent, ``timed``: a :class:`TimeOneCycle`), the learning rate
    follows the clock and the epoch ends early at the step that spends the budget."""
    model.train()
    g = torch.Generator().manual_seed(_epoch_seed(cfg.seed, epoch))
    torch.manual_seed(_epoch_seed(cfg.seed, epoch))  # dropout and any other global randomness
    perm = torch.randperm(len(images), generator=g)
    sums = {k: torch.zeros((), device=setup.device) for k in criterion.names}  # on-device: no sync per step
    correct = torch.zeros((), device=setup.device, dtype=torch.long)
    steps = list(perm.split(cfg.train.batch_size))
    if len(steps) > 1 and len(steps[-1]) == 1:
        steps.pop()  # BatchNorm cannot train on a batch of one image
    done = 0
    first_bad = torch.full((), -1, device=setup.device, dtype=torch.long)  # first step with a non-finite loss
    for idx in _progress(steps, cfg.train.progress, leave=False, desc=f"epoch {epoch + 1}", unit="batch"):
        if clock is not None:
            spent = clock()
            if spent >= cfg.train.budget:
                break
            timed.set(spent)
        done += 1
        idx = idx.to(setup.device)
        x = augment(images[idx], cfg.augment, setup.size, setup.in_channels, g)
        y = targets[idx]
        with setup.autocast():
            out = model(setup.prepare(x))
            terms = criterion(out, y, x)
        opt.zero_grad(set_to_none=True)
        terms["loss"].backward()
        opt.step()
        for k, v in terms.items():
            sums[k] += v.detach() * len(idx)
        first_bad = torch.where((first_bad < 0) & ~torch.isfinite(terms["loss"].detach()), done, first_bad)
        correct += (logits_of(out).argmax(1) == y).sum()
    _check_finite(cfg, model, opt, epoch, int(first_bad), len(steps), sums)  # one sync per epoch
    seen = max(1, sum(len(i) for i in steps[:done]))
    return {"epoch": epoch + 1, "lr": opt.param_groups[0]["lr"], "epoch_share": round(done / len(steps), 4),
            **{f"train_{k}": float(v) / seen for k, v in sums.items()}, "train_acc": int(correct) / seen}


def _validate(model: nn.Module, val_set: fer_data.FERData, setup: Setup, cfg: Config) -> dict:
    probs = predict(model, val_set, setup, cfg.train.eval_batch_size)
    y = val_set.targets
    return {"val_loss": float(-np.log(np.clip(probs[np.arange(len(y)), y], 1e-12, 1)).mean()),
            "val_acc": float((probs.argmax(1) == y).mean())}


def _end_epoch(state: dict, row: dict, cfg: Config, model: nn.Module, sched, elapsed: float) -> None:
    """Selection on validation accuracy (the best weights are kept in memory until the next
    checkpoint), the schedule's step and early stopping."""
    if sched is not None:
        plateau = isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau)
        sched.step(row["val_acc"]) if plateau else sched.step()
    state["history"].append(row)
    if row["val_acc"] > state["best_acc"]:
        state.update(best_acc=row["val_acc"], best_epoch=row["epoch"], bad_epochs=0)
        state["best_weights"] = {k: v.detach().clone() for k, v in model.state_dict().items()}
    else:
        state["bad_epochs"] += 1
    patience = cfg.train.early_stopping
    row["elapsed_s"] = round(elapsed, 2)
    spent = cfg.train.budget is not None and elapsed >= cfg.train.budget
    state.update(epoch=row["epoch"], elapsed=elapsed, budget_spent=spent,
                 stopped_early=spent or (patience is not None and state["bad_epochs"] >= patience))


class Checkpointer:
    """When to write the checkpoints: after the first epoch, then once ``train.checkpoint_every``
    seconds have passed since the last write (every epoch with 0, or with a wall-clock budget, whose
    schedule cannot be replayed), and whenever the run stops. A run killed between two writes
    resumes from the last one and replays the epochs after it exactly (every epoch is seeded)."""

    def __init__(self, cfg: Config, paths: RunPaths, setup: Setup):
        self.cfg, self.paths, self.setup = cfg, paths, setup
        self.every = 0.0 if cfg.train.budget else cfg.train.checkpoint_every
        self.written_at: float | None = None

    def due(self) -> bool:
        return self.written_at is None or time.perf_counter() - self.written_at >= self.every

    def save(self, state: dict, model: nn.Module, opt: torch.optim.Optimizer, sched) -> None:
        best = state.pop("best_weights", None)
        if best is not None:  # written before last.pt: a last.pt never names a best epoch not on disk
            checkpoints.save({"model": best, "epoch": state["best_epoch"]}, self.paths.checkpoints / checkpoints.BEST)
        checkpoints.save({"model": model.state_dict(), "optimizer": opt.state_dict(),
                          "scheduler": sched.state_dict() if sched is not None else None, "state": state,
                          "config": self.cfg.to_dict(), "precision": self.setup.precision},
                         self.paths.checkpoints / checkpoints.LAST, keep_previous=True)
        self.written_at = time.perf_counter()


def _test_and_record(cfg: Config, paths: RunPaths, model: nn.Module, data: fer_data.FERData, setup: Setup,
                     state: dict, started: str, wall_time_s: float) -> RunRecord:
    """Test once, with the weights of the best validation epoch (plain and with every ``eval.tta``
    mode), and write the run record."""
    test_set = data.select("test")
    model.load_state_dict(checkpoints.load(paths.checkpoints / checkpoints.BEST, setup.device)["model"])
    probs, terms = _forward(model, test_set, setup, cfg.train.eval_batch_size, with_terms=True)
    metrics, roc = evaluation(test_set, probs)
    metrics = {"split": "test", "selected_epoch": state["best_epoch"], "best_val_acc": state["best_acc"],
               "epochs_run": state["epoch"], "parameters": count_parameters(model), "note": data.note or None,
               **metrics}
    if terms:
        metrics["loss_terms"] = terms
    columns = {"file": test_set.files if test_set.files is not None else np.arange(len(test_set)),
               "target": test_set.targets, "pred": probs.argmax(1)}
    if cfg.eval.tta:
        metrics["tta"], roc = {}, {"plain": roc}
        for mode in cfg.eval.tta:
            tta_probs = predict(model, test_set, setup, cfg.train.eval_batch_size, tta=TTA.of(cfg, mode))
            metrics["tta"][mode], roc[f"tta_{mode}"] = evaluation(test_set, tta_probs)
            columns[f"pred_tta_{mode}"] = tta_probs.argmax(1)
    predictions = pd.DataFrame({**columns, **{f"prob_{c}": probs[:, i] for i, c in enumerate(data.class_names)}})
    t_attention = time.perf_counter()
    explained = attention.compute(model, cfg.model.name, setup, test_set, n=cfg.eval.attention,
                                  ig_steps=cfg.eval.attention_steps, sanity=cfg.eval.attention_sanity,
                                  seed=cfg.data.seed, probs=probs) if cfg.eval.attention else None
    prov = provenance(cfg, data, setup.device, wall_time_s, started, setup.precision)
    prov["attention_s"] = round(time.perf_counter() - t_attention, 2)  # its share of the run: bench attention
    if state.get("changes"):
        prov["resumed_with_changes"] = state["changes"]
    if state.get("resumes"):  # the work after each resumed checkpoint's epoch and before the kill is lost,
        prov["resumes"] = state["resumes"]  # its time not in wall_time_s (under a budget: at most one epoch)
    write_record(paths, cfg, state["history"], metrics, roc, predictions, prov, explained,
                 extra={duplicates.FILE: duplicates.for_run(data, predictions)})
    record = RunRecord.read(paths.results)
    ledger.append(cfg.output.results_dir, ledger.row_of(record, **cfg.ledger_tags()))
    return record


def train(cfg: Config | str | Path, *, data: fer_data.FERData | None = None, resume: bool = False,
          stop_after: int | None = None, deadline: float | None = None) -> RunRecord | None:
    """Train, select on validation, test, and write the run record; returns it.

    The run is locked for the whole call (one process per run: ``fer_core.locks``). ``deadline``
    (a ``time.monotonic()`` value) and ``train.time_limit`` (seconds from this call) end the call
    after the epoch that reaches them, with :class:`TimeLimitReached`; the run is checkpointed and
    resumes exactly. ``stop_after=k`` stops after epoch k as if the run were killed there (returns
    None; used to test exact resume).
    """
    if not isinstance(cfg, Config):
        cfg = load_config(cfg)
    if cfg.train.time_limit:
        own = time.monotonic() + cfg.train.time_limit
        deadline = own if deadline is None else min(deadline, own)
    paths = RunPaths.of(cfg)
    preflight.writable(paths.results.parent, "results")  # before anything is locked, loaded or trained
    preflight.writable(paths.checkpoints.parent, "checkpoint")
    with run_lock(cfg.run_name, paths.results, paths.checkpoints):
        resuming = prepare_run(paths, resume=resume, overwrite=cfg.output.overwrite)
        return _train(cfg, paths, data, resuming, stop_after, deadline)


def _train(cfg: Config, paths: RunPaths, data: fer_data.FERData | None, resuming: bool, stop_after: int | None,
           deadline: float | None) -> RunRecord | None:
    started, t0 = time.strftime("%Y-%m-%dT%H:%M:%S%z"), time.perf_counter()
    data = data if data is not None else load_data(cfg)
    train_set, val_set = data.select("train"), data.select("val")
    ckpt = _resume_checkpoint(cfg, paths) if resuming else None
    setup = Setup.of(cfg, _checkpoint_precision(ckpt, cfg) if ckpt is not None else None).apply()
    model = build_model(cfg, data.num_classes).to(setup.device)
    if setup.channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = build_optimizer(cfg, model, fused=setup.fused)
    sched = build_scheduler(cfg, opt)
    criterion = Criterion(cfg.loss)
    _preflight(cfg, paths, data, model, opt)
    state = _restore_state(ckpt, model, opt, sched) if ckpt is not None else {**_fresh_state(), "started": started}
    if ckpt is not None:  # the record says it was resumed, from where, and keeps the first start
        state.setdefault("started", None)  # a checkpoint of older code: its first start is not known
        state.setdefault("resumes", []).append({"at": started, "from_epoch": state["epoch"],
                                                "elapsed_s": round(state["elapsed"], 2)})
    t0 -= state["elapsed"]

    images = _images_tensor(train_set, setup.device)
    targets = torch.from_numpy(train_set.targets).to(setup.device)
    step_model = torch.compile(model) if setup.compile else model  # shares its parameters with model
    clock = (lambda: time.perf_counter() - t0) if cfg.train.budget else None
    s = cfg.train.scheduler
    timed = TimeOneCycle(opt, cfg.train.optimizer.lr, cfg.train.budget, s.warmup, s.min_lr) \
        if s.name == "time_one_cycle" else None
    saver = Checkpointer(cfg, paths, setup)
    epochs = _progress(range(state["epoch"], cfg.train.epochs), cfg.train.progress, desc=cfg.run_name,
                       unit="epoch", initial=state["epoch"], total=cfg.train.epochs)
    for epoch in epochs:
        if state["stopped_early"]:  # a run killed after early stopping resumes straight to the test
            break
        if clock is not None and clock() >= cfg.train.budget:  # spent by the last checkpoint write: no empty epoch
            state.update(budget_spent=True, stopped_early=True)
            break
        row = _train_epoch(cfg, setup, step_model, opt, criterion, images, targets, epoch, clock,
                           timed or _NoSchedule())
        row.update(_validate(model, val_set, setup, cfg))
        _end_epoch(state, row, cfg, model, sched, time.perf_counter() - t0)
        if hasattr(epochs, "set_postfix"):
            epochs.set_postfix(train_loss=f"{row['train_loss']:.3f}", val_acc=f"{row['val_acc']:.3f}")
        killed = stop_after is not None and epoch + 1 >= stop_after
        limit = deadline is not None and time.monotonic() >= deadline
        if state["stopped_early"] or epoch + 1 == cfg.train.epochs or killed or limit or saver.due():
            saver.save(state, model, opt, sched)
        if killed:
            return None  # as if killed right after this epoch's checkpoint
        if limit:
            raise TimeLimitReached(cfg.run_name, epoch + 1)
        if state["stopped_early"]:
            break
    return _test_and_record(cfg, paths, model, data, setup, state, state.get("started") or started,
                            time.perf_counter() - t0)


def _preflight(cfg: Config, paths: RunPaths, data: fer_data.FERData, model: nn.Module,
               opt: torch.optim.Optimizer) -> None:
    """Before the first batch: the data cache is writable, the disk has room for the checkpoints
    (the results and checkpoint folders are checked before the run is locked)."""
    ledger.check(cfg.output.results_dir)  # a damaged ledger is named now, not after hours of training
    if data.source not in fer_data.BUNDLED:
        preflight.writable(fer_data.cache_dir(), "data cache (FER_CACHE_DIR)")
    slots = {"sgd": 1 if cfg.train.optimizer.momentum else 0}.get(cfg.train.optimizer.name, 2)
    preflight.disk_space(paths.checkpoints.parent, preflight.checkpoint_bytes(count_parameters(model), slots))


def _resume_checkpoint(cfg: Config, paths: RunPaths) -> dict:
    """``last.pt`` of a started run, after checking that it was made under the same settings (those
    that cannot change the result may differ: they are recorded in its state)."""
    ckpt = checkpoints.load(paths.checkpoints / checkpoints.LAST, "cpu", resume=True)
    if ckpt.get("config") is not None:
        differences = diff_settings(ckpt["config"], cfg.to_dict())
        refused = {k: v for k, v in differences.items() if k not in RESULT_NEUTRAL}
        if refused:
            lines = "\n".join(f"  {k}: {old!r} in the checkpoint, {new!r} now" for k, (old, new) in refused.items())
            raise ConfigError(f"Run {cfg.run_name} was started with other settings, and a resume must continue the "
                              f"same run:\n{lines}\nResume without these changes, or start a new run (another run "
                              f"name, or output.overwrite=true, which keeps the old files aside).")
        ckpt["state"].setdefault("changes", {}).update({k: list(v) for k, v in differences.items()})
    return ckpt


def _checkpoint_precision(ckpt: dict, cfg: Config) -> dict:
    """The precision a checkpoint was trained under (the engine's old defaults for one that does not
    say): a resumed run keeps it, whatever this engine's defaults are now."""
    return ckpt.get("precision") or LEGACY_PRECISION[resolve_device(cfg.train.device).type]


def _restore_state(ckpt: dict, model: nn.Module, opt: torch.optim.Optimizer, sched) -> dict:
    model.load_state_dict(ckpt["model"])
    opt.load_state_dict(ckpt["optimizer"])
    if sched is not None:
        sched.load_state_dict(ckpt["scheduler"])
    return ckpt["state"]


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
    # the precision it was trained and tested in (the old defaults for a record that does not say)
    setup = Setup.of(cfg, record.provenance.get("precision")
                     or LEGACY_PRECISION[resolve_device(cfg.train.device).type]).apply()
    model = build_model(cfg, data.num_classes).to(setup.device)
    model.load_state_dict(checkpoints.load(ckpt, setup.device)["model"])
    return model.eval(), setup, data, cfg


@torch.no_grad()
def outputs(model: nn.Module, setup: Setup, data: fer_data.FERData) -> dict[str, np.ndarray]:
    """Every output of the model (logits and, for a model that returns a dict, its intermediate
    images such as ``aligned`` or ``super_resolved``) for the images of ``data``, as arrays."""
    x = to_input(_images_tensor(data, setup.device), setup.size, setup.in_channels)
    out = model(setup.prepare(x))
    out = out if isinstance(out, dict) else {"logits": out}
    return {k: v.float().cpu().numpy() for k, v in out.items() if torch.is_tensor(v)}


def evaluate_run(run_dir: str | Path, *, tta: str | None = None, split: str = "test",
                 data: fer_data.FERData | None = None) -> dict:
    """Re-evaluate a finished run from its record and best checkpoint, plainly or with one
    test-time augmentation mode (``tencrop``, ``random_views``); nothing is written."""
    model, setup, data, cfg = restore(run_dir, data)
    part = data.select(split)
    probs = predict(model, part, setup, cfg.train.eval_batch_size, tta=TTA.of(cfg, tta) if tta else None)
    metrics, _ = evaluation(part, probs)
    return {"run": str(run_dir), "split": split, "tta": tta, "note": data.note or None, **metrics}


def run(cfg: Config, *, reuse: bool = True, data: fer_data.FERData | None = None, resume: bool = False,
        deadline: float | None = None) -> RunRecord:
    """Train ``cfg`` (resuming a started run with ``resume``), or, with ``reuse``, read back its
    finished record when that run used the same resolved config (settings that cannot change the
    result aside) on the same data (checked by fingerprint). A finished run with another config is
    an error, never overwritten."""
    paths = RunPaths.of(cfg)
    if reuse and paths.finished:
        record = RunRecord.read(paths.results)
        data = data if data is not None else load_data(cfg)
        same_cfg = result_settings(record.config) == result_settings(cfg.to_dict())
        same_data = record.provenance["data"]["fingerprint"] == data.fingerprint
        if same_cfg and same_data:
            return record
        what = "config" if not same_cfg else "data"
        raise RunExistsError(f"Run {paths.results} exists with a different {what}. Give this run another "
                             f"name (run=...), or set output.overwrite=true to replace it (the old record "
                             f"is moved aside).")
    return train(cfg, data=data, resume=resume, deadline=deadline)
