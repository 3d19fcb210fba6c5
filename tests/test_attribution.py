"""Captum attention maps: they must point at the pixels a model actually reads."""
import numpy as np
import torch
from torch import nn

from fer_core.attribution import attention_maps, mask_share
from fer_core.data import load
from fer_core.engine import Setup


class _ReadsRegion(nn.Module):
    """Logit of class c = c-th weight times the mean of a fixed pixel region (a toy model whose
    evidence is known)."""

    def __init__(self, region: torch.Tensor):
        super().__init__()
        self.register_buffer("region", region.float())
        self.w = nn.Parameter(torch.linspace(-1, 1, 7))

    def forward(self, x):
        return (x * self.region).mean((1, 2, 3))[:, None] * self.w[None]


def test_attributions_fall_on_the_pixels_the_model_reads():
    data = load("synthetic", synthetic_size=(7, 7, 8)).select("test")
    region = torch.zeros(48, 48, dtype=torch.bool)
    region[10:22, 8:40] = True  # a band across the eyes
    setup = Setup(torch.device("cpu"), 48, 1, False, False)
    maps, pred = attention_maps(_ReadsRegion(region), setup, data, n_steps=8)
    assert maps.shape == (8, 48, 48) and maps.max() <= 1 + 1e-6 and pred.shape == (8,)
    inside = mask_share(maps, np.broadcast_to(region.numpy(), maps.shape))
    assert (inside > 0.9).all(), inside  # only the band carries evidence
    outside = mask_share(maps, np.broadcast_to(~region.numpy(), maps.shape))
    assert (outside < 0.1).all()
