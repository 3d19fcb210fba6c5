"""The one evaluation path: loss terms of the test split (fer_core.train.evaluate)."""

import pytest
import torch

from fer_core.train.build import Setup
from fer_core.train.metrics import psnr


def test_test_split_loss_terms_and_psnr():
    from fer_core.data import load
    from fer_core.models import create_model
    from fer_core.train.evaluate import loss_terms

    data = load("synthetic", synthetic_size=(7, 7, 14)).select("test")
    setup = Setup(torch.device("cpu"), 48, 1, False, False)
    torch.manual_seed(0)
    edsr = create_model("edsr_x2", sr_blocks=1, sr_feats=8)
    terms = loss_terms(edsr, data, setup)
    assert set(terms) >= {"sr_l1", "sr_l2", "bicubic_l2"} and "rec" not in terms
    assert 0 < terms["bicubic_l2"] < terms["sr_l2"]  # an untrained SR net is worse than bicubic
    assert loss_terms(create_model("simple_cnn"), data, setup) == {}  # logits only: no terms
    from fer_core.train.augment import STD
    assert psnr(0.01 / STD ** 2) == pytest.approx(20.0)  # pixel MSE 0.01 -> 20 dB
