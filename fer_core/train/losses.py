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

from ..config import ConfigError, LossConfig

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


@register_term("rec")
def reconstruction_l1(output: dict, target: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    """Shen & Li, eq. 3: L_rec = ||p - p'||_1, the input image p against the reconstruction p'
    (mean absolute error per pixel, on the normalised model input)."""
    return F.l1_loss(output["reconstruction"].float(), inputs.float())


@register_term("margin")
def margin_bce(output: dict, target: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    """Shen & Li, eq. 4: L_margin, a binary cross-entropy between targets p_i and mapping
    weights e_i.

    Interpretation (the paper defines neither symbol beyond the equation): p_i is the one-hot
    label of class i and e_i = sigma(z_i) is the sigmoid of the class-i logit, the weight with
    which the features map to emotion i. Unlike the softmax cross-entropy, each class is pushed
    towards 1 (target) or 0 (every other class) on its own, which widens the margin between the
    target logit and each of the others. Mean over classes and images.
    """
    logits = output["logits"].float()
    p = F.one_hot(target, logits.shape[1]).float()
    return F.binary_cross_entropy_with_logits(logits, p)


@register_term("sr_l1")
def sr_l1(output: dict, target: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    """Qin's SR comparison: L1 between the super-resolved image and the high-resolution one."""
    return F.l1_loss(output["sr"].float(), output["hr"].float())


@register_term("sr_l2")
def sr_l2(output: dict, target: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    """Qin's SR comparison: L2 (mean squared error) between the super-resolved and high-resolution image."""
    return F.mse_loss(output["sr"].float(), output["hr"].float())


@register_term("bicubic_l2")
def bicubic_l2(output: dict, target: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    """Reference for the SR comparison, not a training objective (it has no parameters): L2 between
    the bicubic x2 up-sampling of the low-resolution input and the high-resolution image."""
    up = F.interpolate(output["lr"].float(), size=output["hr"].shape[-2:], mode="bicubic", align_corners=False)
    return F.mse_loss(up, output["hr"].float())
