"""The training objective: cross-entropy plus any weighted extra terms a model exposes.

A model returns logits, or a dict ``{"logits": ..., <other outputs>}``. An extra term is a
function ``term(output, target, inputs) -> scalar`` registered here under a name; a params
file switches it on with ``loss.weights: {name: weight}``. The criterion returns every term
separately (``ce``, each extra term, and the weighted total ``loss``), so the engine logs
each per epoch and a notebook can plot them apart.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from .config import ConfigError, LossConfig

LOSS_TERMS: dict[str, Callable[[dict, torch.Tensor, torch.Tensor], torch.Tensor]] = {}


def register_term(name: str):
    def deco(fn):
        LOSS_TERMS[name] = fn
        return fn
    return deco


def logits_of(output) -> torch.Tensor:
    return output["logits"] if isinstance(output, dict) else output


class Criterion:
    def __init__(self, cfg: LossConfig):
        unknown = sorted(set(cfg.weights) - set(LOSS_TERMS))
        if unknown:
            raise ConfigError(f"loss.weights: unknown term(s) {unknown}; known terms: {sorted(LOSS_TERMS)}.")
        self.cfg = cfg

    @property
    def names(self) -> list[str]:
        return ["loss", "ce", *self.cfg.weights]

    def __call__(self, output, target: torch.Tensor, inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        logits = logits_of(output).float()
        terms = {"ce": F.cross_entropy(logits, target, label_smoothing=self.cfg.label_smoothing)}
        total = terms["ce"]
        for name, weight in self.cfg.weights.items():
            if not isinstance(output, dict):
                raise ConfigError(f"loss.weights.{name}: the model returns only logits, not the outputs "
                                  f"this term needs.")
            terms[name] = LOSS_TERMS[name](output, target, inputs).float()
            total = total + weight * terms[name]
        return {"loss": total, **terms}
