"""Spatial transformer + EDSR super-resolution + classifier (Qin)."""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..paths import project_path
from . import create_model, get_spec, register


class SpatialTransformer(nn.Module):
    """Qin, Sec. 2.1 (Fig. 3; after Jaderberg et al.): a localisation net regresses a 2x3 affine theta,
    initialised to the identity, and a grid sampler warps the input with it.

    Interpretation: the localisation net is the classic one of the STN paper (two conv + max-pool
    + ReLU stages, 8 and 10 channels), with adaptive pooling to 3x3 so that any input size works.
    """

    def __init__(self, in_channels: int = 1):
        super().__init__()
        self.localisation = nn.Sequential(
            nn.Conv2d(in_channels, 8, 7), nn.MaxPool2d(2), nn.ReLU(True),
            nn.Conv2d(8, 10, 5), nn.MaxPool2d(2), nn.ReLU(True), nn.AdaptiveAvgPool2d(3), nn.Flatten(),
            nn.Linear(90, 32), nn.ReLU(True), nn.Linear(32, 6))
        nn.init.zeros_(self.localisation[-1].weight)
        with torch.no_grad():
            self.localisation[-1].bias.copy_(torch.tensor([1.0, 0, 0, 0, 1.0, 0]))

    def theta(self, x: torch.Tensor) -> torch.Tensor:
        return self.localisation(x).view(-1, 2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        grid = F.affine_grid(self.theta(x), list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


class ResBlock(nn.Module):
    """EDSR residual block: conv, ReLU, conv, no batch-norm, output scaled before the sum."""

    def __init__(self, f: int, res_scale: float):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(f, f, 3, padding=1), nn.ReLU(True), nn.Conv2d(f, f, 3, padding=1))
        self.res_scale = res_scale

    def forward(self, x):
        return x + self.body(x) * self.res_scale


class EDSR(nn.Module):
    """Qin, Sec. 2.2 (after Lim et al.'s EDSR): head conv, B residual blocks without batch-norm
    (residual scaling ``res_scale``), a conv and a global skip, then x2 up-sampling by
    pixel-shuffle and a tail conv. Defaults B = 16, F = 128 as in the paper (qin_2021_stn_sr.txt:57).

    Interpretation: the paper gives no residual scaling; EDSR's code uses 1.0 by default and 0.1
    only for its 32-block, 256-feature model, so 1.0 here."""

    def __init__(self, channels: int = 1, n_blocks: int = 16, n_feats: int = 128, res_scale: float = 1.0):
        super().__init__()
        self.head = nn.Conv2d(channels, n_feats, 3, padding=1)
        self.body = nn.Sequential(*(ResBlock(n_feats, res_scale) for _ in range(n_blocks)),
                                  nn.Conv2d(n_feats, n_feats, 3, padding=1))
        self.upsample = nn.Sequential(nn.Conv2d(n_feats, 4 * n_feats, 3, padding=1), nn.PixelShuffle(2))
        self.tail = nn.Conv2d(n_feats, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.head(x)
        return self.tail(self.upsample(h + self.body(h)))


SR_MODES = ("none", "edsr", "bicubic")


class STNSRClassifier(nn.Module):
    """Qin, Sec. 2.3 (Fig. 4): input -> [spatial transformer] -> [x2 up-sampling] -> classifier.

    ``stn`` and ``sr`` switch the stages, so the ablation rows of Table 2 (Base, +STN, +SR,
    +STN+SR) differ by one parameter each. ``sr``: ``"edsr"`` super-resolves with EDSR,
    ``"bicubic"`` up-samples x2 by bicubic interpolation (this book's control: does SR help, or
    only the larger input?), ``"none"`` keeps the 48x48 face. The paper uses EDSR as a
    pre-processor trained with an L1 loss: ``sr_weights`` loads such an SR net (a checkpoint of
    the ``edsr_x2`` model, the plan's ``sr_from`` row) and keeps it fixed while the classifier (and
    the STN, through it) trains; ``sr_frozen`` says otherwise (False: fine-tune it; True: fix even an
    untrained EDSR, what the speed benchmark measures for a run whose trained SR net it lacks). The
    classifier is any registered model (``classifier``, default ResNet-18); grey input is repeated
    to its channels. Outputs ``logits`` and the intermediate images (``aligned``,
    ``super_resolved``).
    """

    def __init__(self, num_classes: int = 7, stn: bool = True, sr: str = "edsr", classifier: str = "resnet18",
                 sr_blocks: int = 16, sr_feats: int = 128, sr_weights: str | None = None,
                 sr_frozen: bool | None = None):
        super().__init__()
        if sr not in SR_MODES:
            raise ValueError(f"sr must be one of {SR_MODES}, not {sr!r}")
        if sr_weights and sr != "edsr":
            raise ValueError("sr_weights needs sr='edsr'")
        self.stn = SpatialTransformer(1) if stn else None
        self.sr_mode = sr
        self.sr = EDSR(1, sr_blocks, sr_feats) if sr == "edsr" else None
        if sr_weights:
            self.sr.load_state_dict(_edsr_state(sr_weights))
        self.sr_frozen = sr == "edsr" and (bool(sr_weights) if sr_frozen is None else sr_frozen)
        if self.sr_frozen:
            self.sr.requires_grad_(False)
        self.classifier = create_model(classifier, num_classes=num_classes)
        self.classifier_name = classifier
        self.classifier_channels = get_spec(classifier).in_channels

    def cam_layer(self) -> nn.Module:
        """Grad-CAM's layer: the classifier's own."""
        return get_spec(self.classifier_name).cam_module(self.classifier)

    def train(self, mode: bool = True):
        super().train(mode)
        if self.sr_frozen:
            self.sr.eval()  # a fixed pre-processor (no batch-norm in EDSR, but no dropout either)
        return self

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        out = {}
        if self.stn is not None:
            x = out["aligned"] = self.stn(x)
        if self.sr is not None:
            x = out["super_resolved"] = self.sr(x)
        elif self.sr_mode == "bicubic":
            x = out["super_resolved"] = F.interpolate(x, scale_factor=2, mode="bicubic", align_corners=False)
        if self.classifier_channels != x.shape[1]:
            x = x.expand(-1, self.classifier_channels, -1, -1)
        out["logits"] = self.classifier(x)
        return out


def _edsr_state(path: str) -> dict:
    """The EDSR weights of a trained ``edsr_x2`` run (its checkpoint, or a bare EDSR state dict)."""
    file = project_path(path)
    if not Path(file).is_file():
        raise FileNotFoundError(f"SR weights {file} (model.kwargs.sr_weights) do not exist: train the SR row it "
                                f"comes from first (the plan's sr_from), or give an EDSR state dict.")
    state = torch.load(file, map_location="cpu", weights_only=True)
    state = state.get("model", state)
    return {k[3:]: v for k, v in state.items() if k.startswith("sr.")} or state


class SRPretrain(nn.Module):
    """The SR net trained on its own (Qin's L1-vs-L2 comparison): the engine's input is the
    high-resolution target ``hr``; it is downscaled x2 (bilinear, antialiased) to the
    low-resolution input, and EDSR's output ``sr`` is compared with ``hr`` by the ``sr_l1`` or
    ``sr_l2`` loss term. A linear probe on the detached SR image gives the engine its logits, so
    that classification metrics exist, without any gradient from the labels reaching the SR net.
    """

    def __init__(self, num_classes: int = 7, sr_blocks: int = 16, sr_feats: int = 128):
        super().__init__()
        self.sr = EDSR(1, sr_blocks, sr_feats)
        self.probe = nn.Sequential(nn.AdaptiveAvgPool2d(8), nn.Flatten(), nn.Linear(64, num_classes))

    def forward(self, hr: torch.Tensor) -> dict[str, torch.Tensor]:
        lr = F.interpolate(hr, scale_factor=0.5, mode="bilinear", align_corners=False, antialias=True)
        sr = self.sr(lr)
        return {"logits": self.probe(sr.detach()), "sr": sr, "hr": hr, "lr": lr}


@register("stn_sr", input_size=48, in_channels=1, paper="Qin", cam_layer=lambda m: m.cam_layer())
def stn_sr(num_classes: int = 7, stn: bool = True, sr: str = "edsr", classifier: str = "resnet18", sr_blocks: int = 16,
           sr_feats: int = 128, sr_weights: str | None = None, sr_frozen: bool | None = None) -> nn.Module:
    """Spatial transformer + EDSR x2 super-resolution + a classifier, each stage switchable (Qin)."""
    return STNSRClassifier(num_classes, stn, sr, classifier, sr_blocks, sr_feats, sr_weights, sr_frozen)


@register("edsr_x2", input_size=96, in_channels=1, paper="Qin")
def edsr_x2(num_classes: int = 7, sr_blocks: int = 16, sr_feats: int = 128) -> nn.Module:
    """EDSR x2 trained alone on downscaled faces with an L1 or L2 loss (Qin's SR comparison)."""
    return SRPretrain(num_classes, sr_blocks, sr_feats)
