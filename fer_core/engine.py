"""The one training and evaluation engine every model of the book goes through.

``train(cfg)`` loads the data, builds the registered model, trains with the configured
optimizer and schedule (early stopping and checkpoint selection on the *validation* split,
never the test split), checkpoints every epoch, and writes the run record. A killed run
resumes exactly (``resume=True``): shuffling, augmentation and dropout are seeded per epoch
from ``cfg.seed``, so the resumed run ends with the same metrics as one run straight through.
"""
from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from . import data as fer_data
from .augment import augment, tta_views, to_input
from .config import Config, load_config
from .losses import LOSS_TERMS, Criterion, logits_of
from .metrics import classification_metrics, roc_curves
from .models import create_model, get_spec
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
        raise RuntimeError("train.device=cuda but no CUDA device is visible; use train.device=auto or cpu.")
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


def build_optimizer(cfg: Config, model: nn.Module) -> torch.optim.Optimizer:
    o = cfg.train.optimizer
    params = [p for p in model.parameters() if p.requires_grad]
    if o.name == "sgd":
        return torch.optim.SGD(params, lr=o.lr, momentum=o.momentum, nesterov=o.nesterov, weight_decay=o.weight_decay)
    cls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "radam": torch.optim.RAdam}[o.name]
    return cls(params, lr=o.lr, betas=tuple(o.betas), weight_decay=o.weight_decay)


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


def _epoch_seed(seed: int, epoch: int) -> int:
    return seed * 100_003 + epoch


@dataclass
class Setup:
    """What training and evaluation share: device, precision and input shape."""

    device: torch.device
    size: int
    in_channels: int
    amp: bool
    channels_last: bool

    @classmethod
    def of(cls, cfg: Config) -> "Setup":
        device = resolve_device(cfg.train.device)
        cuda = device.type == "cuda"
        size, ch = input_shape(cfg)
        amp = cfg.train.amp if cfg.train.amp is not None else cuda
        cl = cfg.train.channels_last if cfg.train.channels_last is not None else cuda
        return cls(device, size, ch, amp, cl)

    def autocast(self):
        if not self.amp:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x


def _images_tensor(data: fer_data.FERData, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(data.images)).unsqueeze(1).to(device)


# -- evaluation ------------------------------------------------------------------------------
@torch.no_grad()
def _forward(model: nn.Module, data: fer_data.FERData, setup: Setup, batch_size: int = 256, tta: bool = False,
             tta_crop: int = 44, with_terms: bool = False) -> tuple[np.ndarray, dict[str, float]]:
    """One pass over ``data``: class probabilities and, with ``with_terms`` (single view), the
    mean of every registered loss term the model's outputs allow."""
    model.eval()
    images = _images_tensor(data, setup.device)
    targets = torch.from_numpy(data.targets).to(setup.device) if with_terms else None
    probs, sums = [], {}
    for i in range(0, len(images), batch_size):
        x = images[i:i + batch_size]
        views = tta_views(x, tta_crop, setup.size, setup.in_channels) if tta else \
            [to_input(x, setup.size, setup.in_channels)]
        with setup.autocast():
            outs = [model(setup.prepare(v)) for v in views]
            logits = torch.stack([logits_of(o).float() for o in outs]).mean(0)
        probs.append(torch.softmax(logits, 1).cpu())
        if with_terms and isinstance(outs[0], dict):
            for name, term in LOSS_TERMS.items():
                try:
                    value = float(term(outs[0], targets[i:i + batch_size], views[0]))
                except KeyError:
                    continue  # the model has no output this term needs
                sums[name] = sums.get(name, 0.0) + value * len(x)
    return torch.cat(probs).numpy(), {k: v / len(images) for k, v in sums.items()}


def predict(model: nn.Module, data: fer_data.FERData, setup: Setup, batch_size: int = 256,
            tta: bool = False, tta_crop: int = 44) -> np.ndarray:
    """Class probabilities ``N x C`` for every image of ``data`` (softmax of the logits, which
    are averaged over the ten-crop + flip views when ``tta``)."""
    return _forward(model, data, setup, batch_size, tta, tta_crop)[0]


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


def _save(obj, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)  # a run killed while saving keeps the previous checkpoint


def train(cfg: Config | str | Path, *, data: fer_data.FERData | None = None, resume: bool = False,
          stop_after: int | None = None) -> RunRecord | None:
    """Train, select on validation, test, and write the run record; returns it.

    ``stop_after=k`` stops after epoch k as if the run were killed there (returns None; used to
    test exact resume).
    """
    if not isinstance(cfg, Config):
        cfg = load_config(cfg)
    paths = RunPaths.of(cfg)
    resuming = prepare_run(paths, resume=resume, overwrite=cfg.output.overwrite)
    started, t0 = time.strftime("%Y-%m-%dT%H:%M:%S%z"), time.perf_counter()
    data = data if data is not None else load_data(cfg)
    train_set, val_set, test_set = (data.select(s) for s in ("train", "val", "test"))
    setup = Setup.of(cfg)
    model = build_model(cfg, data.num_classes).to(setup.device)
    if setup.channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = build_optimizer(cfg, model)
    sched = build_scheduler(cfg, opt)
    criterion = Criterion(cfg.loss)

    state = {"epoch": 0, "history": [], "best_acc": -1.0, "best_epoch": -1, "bad_epochs": 0, "elapsed": 0.0,
             "stopped_early": False}
    if resuming:
        ckpt = torch.load(paths.checkpoints / "last.pt", map_location=setup.device, weights_only=True)
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        if sched is not None:
            sched.load_state_dict(ckpt["scheduler"])
        state = ckpt["state"]
        t0 -= state["elapsed"]

    images = _images_tensor(train_set, setup.device)
    targets = torch.from_numpy(train_set.targets).to(setup.device)
    n, bs = len(images), cfg.train.batch_size
    show = cfg.train.progress
    epochs = _progress(range(state["epoch"], cfg.train.epochs), show, desc=cfg.run_name, unit="epoch",
                       initial=state["epoch"], total=cfg.train.epochs)
    for epoch in epochs:
        if state["stopped_early"]:  # a run killed after early stopping resumes straight to the test
            break
        model.train()
        g = torch.Generator().manual_seed(_epoch_seed(cfg.seed, epoch))
        torch.manual_seed(_epoch_seed(cfg.seed, epoch))  # dropout and any other global randomness
        perm = torch.randperm(n, generator=g)
        sums = {k: torch.zeros((), device=setup.device) for k in criterion.names}  # on-device: no sync per step
        correct = torch.zeros((), device=setup.device, dtype=torch.long)
        steps = list(perm.split(bs))
        if len(steps) > 1 and len(steps[-1]) == 1:
            steps.pop()  # BatchNorm cannot train on a batch of one image
        for idx in _progress(steps, show, leave=False, desc=f"epoch {epoch + 1}", unit="batch"):
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
            correct += (logits_of(out).argmax(1) == y).sum()
        seen = sum(len(i) for i in steps)
        val_probs = predict(model, val_set, setup, cfg.train.eval_batch_size)
        val_y = val_set.targets
        val_acc = float((val_probs.argmax(1) == val_y).mean())
        val_loss = float(-np.log(np.clip(val_probs[np.arange(len(val_y)), val_y], 1e-12, 1)).mean())
        row = {"epoch": epoch + 1, "lr": opt.param_groups[0]["lr"],
               **{f"train_{k}": float(v) / seen for k, v in sums.items()},
               "train_acc": int(correct) / seen, "val_loss": val_loss, "val_acc": val_acc}
        if sched is not None:
            sched.step(val_acc) if isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau) else sched.step()
        state["history"].append(row)
        if val_acc > state["best_acc"]:
            state.update(best_acc=val_acc, best_epoch=epoch + 1, bad_epochs=0)
            _save({"model": model.state_dict(), "epoch": epoch + 1}, paths.checkpoints / "best.pt")
        else:
            state["bad_epochs"] += 1
        state["epoch"] = epoch + 1
        state["elapsed"] = time.perf_counter() - t0
        patience = cfg.train.early_stopping
        state["stopped_early"] = patience is not None and state["bad_epochs"] >= patience
        _save({"model": model.state_dict(), "optimizer": opt.state_dict(),
               "scheduler": sched.state_dict() if sched is not None else None, "state": state},
              paths.checkpoints / "last.pt")
        if show and hasattr(epochs, "set_postfix"):
            epochs.set_postfix(train_loss=f"{row['train_loss']:.3f}", val_acc=f"{val_acc:.3f}")
        if stop_after is not None and epoch + 1 >= stop_after:
            return None  # as if killed right after this epoch's checkpoint
        if state["stopped_early"]:
            break

    # test once, with the weights of the best validation epoch
    best = torch.load(paths.checkpoints / "best.pt", map_location=setup.device, weights_only=True)
    model.load_state_dict(best["model"])
    probs, terms = _forward(model, test_set, setup, cfg.train.eval_batch_size, with_terms=True)
    metrics, roc = evaluation(test_set, probs)
    metrics = {"split": "test", "selected_epoch": state["best_epoch"], "best_val_acc": state["best_acc"],
               "epochs_run": state["epoch"], "note": data.note or None, **metrics}
    if terms:
        metrics["loss_terms"] = terms
    columns = {"file": test_set.files if test_set.files is not None else np.arange(len(test_set)),
               "target": test_set.targets, "pred": probs.argmax(1)}
    if cfg.eval.tta:
        tta_probs = predict(model, test_set, setup, cfg.train.eval_batch_size, tta=True, tta_crop=cfg.eval.tta_crop)
        metrics["tta"], roc_tta = evaluation(test_set, tta_probs)
        roc = {"plain": roc, "tta": roc_tta}
        columns["pred_tta"] = tta_probs.argmax(1)
    predictions = pd.DataFrame({**columns, **{f"prob_{c}": probs[:, i] for i, c in enumerate(data.class_names)}})
    prov = provenance(cfg, data, setup.device, time.perf_counter() - t0, started)
    write_record(paths, cfg, state["history"], metrics, roc, predictions, prov)
    return RunRecord.read(paths.results)


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
    setup = Setup.of(cfg)
    model = build_model(cfg, data.num_classes).to(setup.device)
    model.load_state_dict(torch.load(ckpt, map_location=setup.device, weights_only=True)["model"])
    return model.eval(), setup, data, cfg


@torch.no_grad()
def outputs(model: nn.Module, setup: Setup, data: fer_data.FERData) -> dict[str, np.ndarray]:
    """Every output of the model (logits and, for a model that returns a dict, its intermediate
    images such as ``aligned`` or ``super_resolved``) for the images of ``data``, as arrays."""
    x = to_input(_images_tensor(data, setup.device), setup.size, setup.in_channels)
    out = model(setup.prepare(x))
    out = out if isinstance(out, dict) else {"logits": out}
    return {k: v.float().cpu().numpy() for k, v in out.items() if torch.is_tensor(v)}


def evaluate_run(run_dir: str | Path, *, tta: bool = False, split: str = "test",
                 data: fer_data.FERData | None = None) -> dict:
    """Re-evaluate a finished run from its record and best checkpoint (nothing is written)."""
    model, setup, data, cfg = restore(run_dir, data)
    part = data.select(split)
    probs = predict(model, part, setup, cfg.train.eval_batch_size, tta=tta, tta_crop=cfg.eval.tta_crop)
    metrics, _ = evaluation(part, probs)
    return {"run": str(run_dir), "split": split, "tta": tta, "note": data.note or None, **metrics}


def run(cfg: Config, *, reuse: bool = True, data: fer_data.FERData | None = None) -> RunRecord:
    """Train ``cfg``, or, with ``reuse``, read back its finished record when that run used the
    same resolved config on the same data (checked by fingerprint). A finished run with another
    config is an error, never overwritten."""
    paths = RunPaths.of(cfg)
    if reuse and paths.finished:
        record = RunRecord.read(paths.results)
        data = data if data is not None else load_data(cfg)
        same_cfg = record.config == cfg.to_dict()
        same_data = record.provenance["data"]["fingerprint"] == data.fingerprint
        if same_cfg and same_data:
            return record
        what = "config" if not same_cfg else "data"
        raise RunExistsError(f"Run {paths.results} exists with a different {what}. Give this run another "
                             f"name (run=...), or set output.overwrite=true to replace it (the old record "
                             f"is moved aside).")
    return train(cfg, data=data)
