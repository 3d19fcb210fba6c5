"""Residual Masking Reconstruction Network (Shen & Li)."""
from __future__ import annotations

import torch
from torch import nn

from . import register
from .resmasking import ResMaskingNet


def _up(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.ConvTranspose2d(c_in, c_out, 2, stride=2, bias=False), nn.BatchNorm2d(c_out),
                         nn.ReLU(inplace=True))


class ResMaskingReconstructionNet(ResMaskingNet):
    """Shen & Li, Sec. 3 (Fig. 2-3): ResMaskingNet (ResNet-18 or -34 backbone) plus a
    reconstruction path that up-samples the masked feature image back to the input, p'.

    Interpretation (the paper gives no layer list for the path): the masked feature image is the
    last stage's refined map P_F (512 channels at 1/32 of the input); five transposed-conv x2
    stages (512 -> 256 -> 128 -> 64 -> 32 -> 16 channels, each with batch-norm and ReLU) and a 3x3
    conv give p' with the input's channels, resized to the input's size when it is not a
    multiple of 32. The forward pass returns ``logits``, ``reconstruction`` (p') and ``masks``
    (every P_S), so that the engine logs L_CE, L_rec (eq. 3) and L_margin (eq. 4) apart
    (see ``fer_core.train.losses``).
    """

    def __init__(self, layers=(3, 4, 6, 3), num_classes: int = 7, in_channels: int = 3,
                 mask_activation: str = "softmax", dropout: float = 0.4):
        super().__init__(layers, num_classes, mask_activation, dropout)
        widths = (512, 256, 128, 64, 32, 16)
        self.reconstruct = nn.Sequential(*(_up(a, b) for a, b in zip(widths, widths[1:])),
                                         nn.Conv2d(16, in_channels, 3, padding=1))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        p_f, masks, _ = self.forward_masked(x)
        p_rec = self.reconstruct(p_f)
        if p_rec.shape[-2:] != x.shape[-2:]:
            p_rec = nn.functional.interpolate(p_rec, size=x.shape[-2:], mode="bilinear", align_corners=False)
        logits = self.fc(torch.flatten(self.avgpool(p_f), 1))
        return {"logits": logits, "reconstruction": p_rec, "masks": masks}


@register("rmrn18", input_size=224, in_channels=3, paper="Shen & Li", cam_layer="layer4")
def rmrn18(num_classes: int = 7, mask_activation: str = "softmax", dropout: float = 0.4) -> nn.Module:
    """Residual masking reconstruction network, ResNet-18 backbone (Shen & Li's Res18 variant)."""
    return ResMaskingReconstructionNet((2, 2, 2, 2), num_classes, 3, mask_activation, dropout)


@register("rmrn34", input_size=224, in_channels=3, paper="Shen & Li", cam_layer="layer4")
def rmrn34(num_classes: int = 7, mask_activation: str = "softmax", dropout: float = 0.4) -> nn.Module:
    """Residual masking reconstruction network, ResNet-34 backbone (Shen & Li's Res34 variant)."""
    return ResMaskingReconstructionNet((3, 4, 6, 3), num_classes, 3, mask_activation, dropout)
