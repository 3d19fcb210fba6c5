"""The training loop every model of the book goes through, and nothing else.

:meth:`Training.start` builds a model, its optimiser, schedule and loss from a config
(:mod:`fer_core.train.build`); :func:`fit` trains it epoch by epoch (:func:`train_one_epoch`), selects
on the *validation* split (never the test split), steps the schedule, stops early or when a
wall-clock budget is spent, and checkpoints (:class:`Checkpointer`) when given a folder. Every
epoch's shuffle, augmentation and dropout are seeded from ``(cfg.seed, epoch)``, so a run resumed
from its checkpoint (:meth:`Training.load`) ends exactly as one run straight through. What running
an experiment means around the loop (locks, run folders, the test, records, the ledger) is
:mod:`fer_core.runs.runner`.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .. import data as fer_data
from ..config import Config
from . import checkpoints
from .augment import augment
from .build import Setup, build_optimizer, build_scheduler, images_tensor
from .evaluate import validate
from .losses import Criterion, logits_of


class TimeLimitReached(RuntimeError):
    """A run stopped at its time limit, checkpointed: calling it again (resume) continues exactly."""

    def __init__(self, run: str, epoch: int | None, step: int | None = None, finishing: float | None = None):
        self.run, self.epoch, self.step = run, epoch, step
        where = (f"after epoch {epoch} of run {run}" if step is None else
                 f"at step {step} of epoch {epoch + 1} of run {run}") if epoch is not None else f"before run {run}"
        if finishing is not None:  # trained, but the test and attention would not end before the limit
            where = f"before the test and attention maps of run {run} (about {finishing:.0f} s, trained to the end)"
        super().__init__(f"time limit reached {where}; everything is checkpointed: run the same command again "
                         f"to resume")


class DivergedError(RuntimeError):
    """Training reached a non-finite loss; the message names the epoch, the step, the loss term
    and the likely cause."""


def _epoch_seed(seed: int, epoch: int) -> int:
    return seed * 100_003 + epoch


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


def fresh_state() -> dict:
    """The loop's state before the first epoch (what a checkpoint carries besides the weights)."""
    return {"epoch": 0, "history": [], "best_acc": -1.0, "best_epoch": -1, "bad_epochs": 0, "elapsed": 0.0,
            "stopped_early": False}


@dataclass
class Training:
    """A model under training: its config, setup, model, optimiser, schedule, loss and the loop's
    state (epoch, history, best validation epoch, time spent)."""

    cfg: Config
    setup: Setup
    model: nn.Module
    opt: torch.optim.Optimizer
    sched: object
    criterion: Criterion
    state: dict
    run: str = ""  # the name the run layer gave the run (its folders'); unset: the config's run_name

    @property
    def name(self) -> str:
        """The run's name in messages and progress bars."""
        return self.run or self.cfg.run_name

    @classmethod
    def start(cls, cfg: Config, num_classes: int, setup: Setup | None = None) -> "Training":
        """A fresh model (seeded by ``cfg.seed``) with its optimiser and schedule, under ``setup``
        (default: :meth:`Setup.of` the config on this machine)."""
        setup = (setup or Setup.of(cfg)).apply()
        model = setup.model(cfg, num_classes)
        opt = build_optimizer(cfg, model, fused=setup.fused)
        return cls(cfg, setup, model, opt, build_scheduler(cfg, opt), Criterion(cfg.loss), fresh_state())

    def load(self, ckpt: dict) -> "Training":
        """Continue from a ``last.pt`` checkpoint: weights, optimiser, schedule and state."""
        self.model.load_state_dict(ckpt["model"])
        self.opt.load_state_dict(ckpt["optimizer"])
        if self.sched is not None:
            self.sched.load_state_dict(ckpt["scheduler"])
        self.state = ckpt["state"]
        return self

    def checkpoint(self) -> dict:
        """What ``last.pt`` holds: everything :meth:`load` needs, the config and the precision."""
        return {"model": self.model.state_dict(), "optimizer": self.opt.state_dict(),
                "scheduler": self.sched.state_dict() if self.sched is not None else None, "state": self.state,
                "config": self.cfg.to_dict(), "precision": self.setup.precision}


def _check_finite(t: Training, epoch: int, first_bad: int, steps: int, sums: dict) -> None:
    """Stop a diverged run at the end of the epoch it diverged in, before anything of it is saved:
    a non-finite loss (its first step and term), or weights and statistics that are no longer finite."""
    where = None
    if first_bad >= 0:
        terms = [k for k, v in sums.items() if k != "loss" and not torch.isfinite(v)] or ["loss"]
        where = f"the loss ({', '.join(terms)}) became non-finite at epoch {epoch + 1}, step {first_bad} of {steps}"
    else:
        broken = [n for n, x in [*t.model.named_parameters(), *t.model.named_buffers()]
                  if x.is_floating_point() and not torch.isfinite(x).all()]
        if broken:
            where = (f"the weights became non-finite in epoch {epoch + 1} ({', '.join(broken[:3])}"
                     f"{' ...' if len(broken) > 3 else ''}) while its loss stayed finite")
    if where:
        raise DivergedError(
            f"Run {t.name} diverged: {where}, learning rate {t.opt.param_groups[0]['lr']:g}. Likely cause: a "
            f"learning rate too high for this model (train.optimizer.lr), or non-finite weights or inputs. Nothing "
            f"of this epoch was saved: the last checkpoint is the last finite one; lower the learning rate and start "
            f"again with output.overwrite=true.")


def _partial_epoch(t: Training, epoch: int, done: int, g: torch.Generator, sums: dict, correct: torch.Tensor,
                   first_bad: torch.Tensor) -> dict:
    """Where an epoch stands after ``done`` steps: what a checkpoint within the epoch carries so that
    a resumed run continues it exactly (the step, both random states and the running sums)."""
    return {"epoch": epoch, "done": done, "generator": g.get_state(), "torch_rng": torch.get_rng_state(),
            "sums": {k: v.detach().cpu().clone() for k, v in sums.items()}, "correct": int(correct),
            "first_bad": int(first_bad)}


def train_one_epoch(t: Training, images: torch.Tensor, targets: torch.Tensor, epoch: int, *, model=None,
                    clock=None, timed=None, saver: "Checkpointer | None" = None, deadline: float | None = None) -> dict:
    """One pass over the training images; returns the epoch's mean loss terms and accuracy. The
    shuffle, the augmentation and dropout are seeded by (seed, epoch), so a resumed run repeats
    exactly what an uninterrupted one does. ``model``: the one to step (the compiled one under
    ``train.compile``; default ``t.model``). With a budget (``clock``: seconds spent, ``timed``: a
    :class:`TimeOneCycle`), the learning rate follows the clock and the epoch ends early at the
    step that spends the budget. With a ``saver``, a long epoch is checkpointed within itself every
    ``train.checkpoint_within_epoch`` seconds (and stops there, checkpointed, once ``deadline`` has
    passed); a checkpoint taken within this epoch (``state["partial"]``) is continued from its step."""
    cfg, setup, opt = t.cfg, t.setup, t.opt
    model = model if model is not None else t.model
    model.train()
    g = torch.Generator().manual_seed(_epoch_seed(cfg.seed, epoch))
    torch.manual_seed(_epoch_seed(cfg.seed, epoch))  # dropout and any other global randomness
    perm = torch.randperm(len(images), generator=g)
    sums = {k: torch.zeros((), device=setup.device) for k in t.criterion.names}  # on-device: no sync per step
    correct = torch.zeros((), device=setup.device, dtype=torch.long)
    steps = list(perm.split(cfg.train.batch_size))
    if len(steps) > 1 and len(steps[-1]) == 1:
        steps.pop()  # BatchNorm cannot train on a batch of one image
    done = 0
    first_bad = torch.full((), -1, device=setup.device, dtype=torch.long)  # first step with a non-finite loss
    partial = t.state.pop("partial", None)
    if partial is not None and partial["epoch"] == epoch:  # resumed within this epoch: continue from its step
        done = int(partial["done"])
        g.set_state(partial["generator"])
        torch.set_rng_state(partial["torch_rng"])
        sums = {k: v.to(setup.device) for k, v in partial["sums"].items()}
        correct = torch.tensor(partial["correct"], device=setup.device, dtype=torch.long)
        first_bad = torch.tensor(partial["first_bad"], device=setup.device, dtype=torch.long)
    for idx in _progress(steps[done:], cfg.train.progress, leave=False, desc=f"epoch {epoch + 1}", unit="batch",
                         initial=done, total=len(steps)):
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
            terms = t.criterion(out, y, x)
        opt.zero_grad(set_to_none=True)
        terms["loss"].backward()
        opt.step()
        for k, v in terms.items():
            sums[k] += v.detach() * len(idx)
        first_bad = torch.where((first_bad < 0) & ~torch.isfinite(terms["loss"].detach()), done, first_bad)
        correct += (logits_of(out).argmax(1) == y).sum()
        if saver is not None and done < len(steps) and saver.due_within_epoch():
            t.state["partial"] = _partial_epoch(t, epoch, done, g, sums, correct, first_bad)
            t.state["elapsed"] = clock_now(t)
            saver.save()
            t.state.pop("partial")
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeLimitReached(t.name, epoch, step=done)
    _check_finite(t, epoch, int(first_bad), len(steps), sums)  # one sync per epoch
    seen = max(1, sum(len(i) for i in steps[:done]))
    return {"epoch": epoch + 1, "lr": opt.param_groups[0]["lr"], "epoch_share": round(done / len(steps), 4),
            **{f"train_{k}": float(v) / seen for k, v in sums.items()}, "train_acc": int(correct) / seen}


def clock_now(t: Training) -> float:
    """Seconds the run has spent so far (its clock across resumes), within an epoch."""
    t0 = t.state.get("clock_t0")
    return time.perf_counter() - t0 if t0 is not None else t.state["elapsed"]


def end_epoch(t: Training, row: dict, elapsed: float) -> None:
    """Selection on validation accuracy (the best weights are kept in memory until the next
    checkpoint), the schedule's step and early stopping."""
    state, cfg = t.state, t.cfg
    if t.sched is not None:
        plateau = isinstance(t.sched, torch.optim.lr_scheduler.ReduceLROnPlateau)
        t.sched.step(row["val_acc"]) if plateau else t.sched.step()
    state["history"].append(row)
    if row["val_acc"] > state["best_acc"]:
        state.update(best_acc=row["val_acc"], best_epoch=row["epoch"], bad_epochs=0)
        state["best_weights"] = {k: v.detach().clone() for k, v in t.model.state_dict().items()}
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

    def __init__(self, t: Training, folder: Path):
        self.t, self.folder = t, folder
        self.every = 0.0 if t.cfg.train.budget else t.cfg.train.checkpoint_every
        #: within an epoch (a long one: ResMaskingNet at 224x224 on a CPU runs an hour an epoch); never
        #: under a budget, whose clock-driven schedule cannot be replayed
        self.within = 0.0 if t.cfg.train.budget else t.cfg.train.checkpoint_within_epoch
        self.written_at: float | None = None
        self.created_at = time.perf_counter()

    def due(self) -> bool:
        return self.written_at is None or time.perf_counter() - self.written_at >= self.every

    def due_within_epoch(self) -> bool:
        since = self.written_at if self.written_at is not None else self.created_at
        return self.within > 0 and time.perf_counter() - since >= self.within

    def save(self) -> None:
        best = self.t.state.pop("best_weights", None)
        if best is not None:  # written before last.pt: a last.pt never names a best epoch not on disk
            checkpoints.save({"model": best, "epoch": self.t.state["best_epoch"]}, self.folder / checkpoints.BEST)
        checkpoints.save(self.t.checkpoint(), self.folder / checkpoints.LAST, keep_previous=True)
        self.written_at = time.perf_counter()


def fit(t: Training, data: fer_data.FERData, *, checkpoint_dir: Path | None = None, stop_after: int | None = None,
        deadline: float | None = None, started_at: float | None = None) -> dict | None:
    """Train ``t`` on ``data``'s training split from its state to its last epoch, early stopping
    or the end of its budget, selecting on the validation split; returns the state (None when
    ``stop_after`` stopped it). With ``checkpoint_dir``, checkpoints go there (best.pt, last.pt);
    without, the best epoch's weights stay in ``state["best_weights"]``. ``deadline`` (a
    ``time.monotonic()`` value) ends the call after the epoch that reaches it, checkpointed, with
    :class:`TimeLimitReached`; ``stop_after=k`` stops after epoch k as if killed there. The clock
    of a budget starts at ``started_at`` (a ``time.perf_counter()`` value; default now) less the
    time the state has already spent."""
    cfg, state = t.cfg, t.state
    t0 = (started_at if started_at is not None else time.perf_counter()) - state["elapsed"]
    train_set, val_set = data.select("train"), data.select("val")
    images = images_tensor(train_set, t.setup.device)
    targets = torch.from_numpy(train_set.targets).to(t.setup.device)
    step_model = torch.compile(t.model) if t.setup.compile else t.model  # shares its parameters with the model
    clock = (lambda: time.perf_counter() - t0) if cfg.train.budget else None
    s = cfg.train.scheduler
    timed = TimeOneCycle(t.opt, cfg.train.optimizer.lr, cfg.train.budget, s.warmup, s.min_lr) \
        if s.name == "time_one_cycle" else _NoSchedule()
    saver = Checkpointer(t, checkpoint_dir) if checkpoint_dir is not None else None
    epochs = _progress(range(state["epoch"], cfg.train.epochs), cfg.train.progress, desc=t.name,
                       unit="epoch", initial=state["epoch"], total=cfg.train.epochs)
    for epoch in epochs:
        if state["stopped_early"]:  # a run killed after early stopping resumes straight to the test
            break
        if clock is not None and clock() >= cfg.train.budget:  # spent by the last checkpoint write: no empty epoch
            state.update(budget_spent=True, stopped_early=True)
            break
        t.state["clock_t0"] = t0  # what a checkpoint within the epoch records as time spent
        row = train_one_epoch(t, images, targets, epoch, model=step_model, clock=clock, timed=timed, saver=saver,
                              deadline=deadline)
        t.state.pop("clock_t0", None)
        t_val = time.perf_counter()
        row.update(validate(t.model, val_set, t.setup, cfg.train.eval_batch_size))
        state["val_s_per_image"] = (time.perf_counter() - t_val) / max(len(val_set), 1)  # sizes the test's time
        end_epoch(t, row, time.perf_counter() - t0)
        if hasattr(epochs, "set_postfix"):
            epochs.set_postfix(train_loss=f"{row['train_loss']:.3f}", val_acc=f"{row['val_acc']:.3f}")
        killed = stop_after is not None and epoch + 1 >= stop_after
        limit = deadline is not None and time.monotonic() >= deadline
        if saver is not None and (state["stopped_early"] or epoch + 1 == cfg.train.epochs or killed or limit
                                  or saver.due()):
            saver.save()
        if killed:
            return None  # as if killed right after this epoch's checkpoint
        if limit:
            raise TimeLimitReached(t.name, epoch + 1)
        if state["stopped_early"]:
            break
    return state
