"""Where a trained model looks: Captum attributions of its prediction, per input pixel.

``attention_maps`` explains the predicted class of a few test images with Integrated Gradients
(Sundararajan et al., 2017; baseline: the black image) and returns one map per image at the
stored 48x48 resolution: the absolute attribution summed over input channels, scaled to [0, 1].
On the synthetic set, whose ground truth marks the pixels that carry the expression (eyes with
brows, mouth), ``mask_share`` says how much of a map's mass falls on them: a model that reads
the expression scores well above the regions' share of the image.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .augment import to_input
from .losses import logits_of

METHOD = "Integrated Gradients (Captum), baseline: black image"


class _Logits(nn.Module):
    """Captum needs a forward that returns a tensor; the book's models may return a dict."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x):
        return logits_of(self.model(x)).float()


def attention_maps(model: nn.Module, setup, data, n_steps: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """(maps ``N x 48 x 48`` in [0, 1], predicted class ``N``) for the images of ``data``."""
    import warnings

    with warnings.catch_warnings():  # captum imports tqdm.auto, which warns without ipywidgets
        warnings.simplefilter("ignore")
        from captum.attr import IntegratedGradients

    model.eval()
    images = torch.from_numpy(np.ascontiguousarray(data.images)).unsqueeze(1).to(setup.device)
    x = to_input(images, setup.size, setup.in_channels)
    black = to_input(torch.zeros_like(images), setup.size, setup.in_channels)
    wrapped = _Logits(model)
    with torch.no_grad():
        pred = wrapped(x).argmax(1)
    attr = IntegratedGradients(wrapped).attribute(x, baselines=black, target=pred, n_steps=n_steps,
                                                  internal_batch_size=max(1, len(x)) * 4)
    heat = attr.detach().abs().sum(1, keepdim=True).float()
    heat = F.interpolate(heat, size=images.shape[-2:], mode="bilinear", align_corners=False, antialias=True)
    heat = heat.squeeze(1).cpu().numpy()
    heat = heat / np.maximum(heat.reshape(len(heat), -1).max(1), 1e-12)[:, None, None]
    return heat, pred.cpu().numpy()


def mask_share(maps: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Fraction of each map's attribution mass inside its ground-truth mask (one value per image)."""
    total = maps.reshape(len(maps), -1).sum(1)
    inside = (maps * masks).reshape(len(maps), -1).sum(1)
    return inside / np.maximum(total, 1e-12)


def explain(record, n: int = 6, n_steps: int = 16) -> dict:
    """Attention maps of a finished run's selected model on the first ``n`` test images, with
    their labels, predictions and, where the data has ground-truth masks, ``mask_share`` and the
    masks' share of the image (the score of a map spread evenly)."""
    from .engine import restore

    model, setup, data, _ = restore(record)
    test = data.select("test")
    pick = np.linspace(0, len(test) - 1, min(n, len(test))).astype(int)
    test = test.take(pick)
    maps, pred = attention_maps(model, setup, test, n_steps)
    out = {"images": test.images, "maps": maps, "pred": pred, "target": test.targets,
           "class_names": test.class_names, "note": test.note or None, "method": METHOD}
    if test.mask is not None:
        out["mask_share"] = mask_share(maps, test.mask)
        out["mask_area"] = test.mask.reshape(len(test), -1).mean(1)
    return out
