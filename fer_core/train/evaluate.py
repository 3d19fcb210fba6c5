"""Evaluation of a model on a split: one forward pass (optionally over the views of a test-time
augmentation), the class probabilities, the auxiliary loss terms, and the metrics of
:mod:`fer_core.train.metrics`. The one evaluation path of the book: validation during training, the
test of a run, re-evaluation of a finished run, and the benchmarks all go through
:func:`forward`."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from .. import data as fer_data
from ..config import AugmentConfig, Config
from .augment import random_view_params, tencrop_views, to_input, warp
from .build import Setup, images_tensor
from .losses import LOSS_TERMS, logits_of
from .metrics import classification_metrics, roc_curves


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
def forward(model: nn.Module, data: fer_data.FERData, setup: Setup, batch_size: int = 256,
            tta: TTA | None = None, with_terms: bool = False) -> tuple[np.ndarray, dict[str, float]]:
    """One pass over ``data``: class probabilities (the softmax averaged over the views of ``tta``)
    and, with ``with_terms`` (single view), the mean of every registered loss term the model's
    outputs allow."""
    model.eval()
    images = images_tensor(data, setup.device)
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
    return forward(model, data, setup, batch_size, tta)[0]


def loss_terms(model: nn.Module, data: fer_data.FERData, setup: Setup, batch_size: int = 256) -> dict[str, float]:
    """Mean of every registered loss term the model's outputs allow (``rec``, ``margin``,
    ``sr_l1``, ``sr_l2``, ...), on ``data`` without augmentation: a model's auxiliary objectives
    measured on the test split, whichever of them it was trained with. Empty for a model that
    returns logits only."""
    return forward(model, data, setup, batch_size, with_terms=True)[1]


def evaluation(data: fer_data.FERData, probs: np.ndarray) -> tuple[dict, dict]:
    """(metrics, ROC curves) of ``probs`` against ``data``'s targets."""
    y = data.targets
    return classification_metrics(y, probs, data.class_names), roc_curves(y, probs, data.class_names)


@dataclass(frozen=True)
class Scores:
    """A model scored on a split: the probabilities, the metrics (with the loss terms the model's
    outputs allow and every ``eval.tta`` mode's metrics), the ROC curves, and one row per face."""

    probs: np.ndarray
    metrics: dict
    roc: dict
    predictions: pd.DataFrame


def score(model: nn.Module, part: fer_data.FERData, setup: Setup, cfg: Config) -> Scores:
    """Score ``model`` on a split (the test split of a run): plainly, then with every test-time
    augmentation mode of ``eval.tta``; ``predictions`` has the file, target and prediction of each
    face (and of each TTA mode) and the plain class probabilities."""
    probs, terms = forward(model, part, setup, cfg.train.eval_batch_size, with_terms=True)
    metrics, roc = evaluation(part, probs)
    if terms:
        metrics["loss_terms"] = terms
    columns = {"file": part.files if part.files is not None else np.arange(len(part)),
               "target": part.targets, "pred": probs.argmax(1)}
    if cfg.eval.tta:
        metrics["tta"], roc = {}, {"plain": roc}
        for mode in cfg.eval.tta:
            tta_probs = predict(model, part, setup, cfg.train.eval_batch_size, tta=TTA.of(cfg, mode))
            metrics["tta"][mode], roc[f"tta_{mode}"] = evaluation(part, tta_probs)
            columns[f"pred_tta_{mode}"] = tta_probs.argmax(1)
    predictions = pd.DataFrame({**columns, **{f"prob_{c}": probs[:, i] for i, c in enumerate(part.class_names)}})
    return Scores(probs, metrics, roc, predictions)


def validate(model: nn.Module, val_set: fer_data.FERData, setup: Setup, batch_size: int = 256) -> dict:
    """The validation loss and accuracy an epoch of training is selected on."""
    probs = predict(model, val_set, setup, batch_size)
    y = val_set.targets
    return {"val_loss": float(-np.log(np.clip(probs[np.arange(len(y)), y], 1e-12, 1)).mean()),
            "val_acc": float((probs.argmax(1) == y).mean())}


@torch.no_grad()
def outputs(model: nn.Module, setup: Setup, data: fer_data.FERData) -> dict[str, np.ndarray]:
    """Every output of the model (logits and, for a model that returns a dict, its intermediate
    images such as ``aligned`` or ``super_resolved``) for the images of ``data``, as arrays."""
    x = to_input(images_tensor(data, setup.device), setup.size, setup.in_channels)
    out = model(setup.prepare(x))
    out = out if isinstance(out, dict) else {"logits": out}
    return {k: v.float().cpu().numpy() for k, v in out.items() if torch.is_tensor(v)}
