"""Residual Masking Network (Pham et al.) and its masking block."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.resnet import BasicBlock, ResNet, conv1x1

from . import register


def _block(c_in: int, c_out: int) -> BasicBlock:
    return BasicBlock(c_in, c_out, downsample=nn.Sequential(conv1x1(c_in, c_out), nn.BatchNorm2d(c_out)))


def _up(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.ConvTranspose2d(c_in, c_out, 2, stride=2), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class MaskingBlock(nn.Module):
    """Pham et al., Sec. III-B, Fig. 3: a U-Net of residual blocks whose output P_S is a mask.

    Encoder: ``depth`` residual blocks doubling the channels (c -> 2c -> ... -> 2^depth c) with a
    2x2 max-pool between them; decoder: transposed-conv up-sampling, concatenation with the
    encoder feature of the same size, and a residual block halving the channels; a last block
    back to c channels. ``activation``: ``"sigmoid"`` gives the paper's mask in [0, 1] per element;
    ``"softmax"`` (over channels) is what the authors' public code does. Interpretation: where a
    feature map has an odd size, the up-sampled map is resized to its skip connection's size.
    """

    def __init__(self, channels: int, depth: int, activation: str = "softmax"):
        super().__init__()
        if activation not in ("sigmoid", "softmax"):
            raise ValueError(f"mask activation must be 'sigmoid' or 'softmax', not {activation!r}")
        c = channels
        self.activation = activation
        self.encoder = nn.ModuleList(_block(c * 2 ** i, c * 2 ** (i + 1)) for i in range(depth))
        self.pool = nn.MaxPool2d(2)
        self.up = nn.ModuleList(_up(c * 2 ** (k + 1), c * 2 ** k) for k in range(depth - 1, 0, -1))
        self.decoder = nn.ModuleList(_block(c * 2 ** (k + 1), c * 2 ** k) for k in range(depth - 1, 0, -1))
        self.out = _block(2 * c, c)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, BasicBlock):
                nn.init.zeros_(m.bn2.weight)  # each residual branch starts as the identity

    def forward(self, p_r: torch.Tensor) -> torch.Tensor:
        skips, h = [], p_r
        for i, block in enumerate(self.encoder):
            h = block(self.pool(h) if i else h)
            skips.append(h)
        skips.pop()
        for up, block in zip(self.up, self.decoder):
            skip = skips.pop()
            u = up(h)
            if u.shape[-2:] != skip.shape[-2:]:
                u = F.interpolate(u, size=skip.shape[-2:], mode="nearest")
            h = block(torch.cat([u, skip], 1))
        h = self.out(h)
        return torch.softmax(h, 1) if self.activation == "softmax" else torch.sigmoid(h)


class ResMaskingNet(ResNet):
    """Pham et al., Sec. III, Fig. 2: a ResNet whose four stages are each followed by a masking
    block; the refined feature map is P_F = P_R + P_R (x) P_S (eq. 1), i.e. ``P_R * (1 + P_S)``.

    Masking depths 4, 3, 2, 1 after stages of 56, 28, 14, 7 pixels (224 input); head: global
    average pooling, dropout 0.4, linear (as the authors' ``resmasking_dropout1``). Keys of the
    ResNet part match torchvision's, so a local ImageNet ResNet file loads with
    ``model.weights_partial: true``. ``forward_masked`` also returns every P_S and P_F.
    """

    def __init__(self, layers=(3, 4, 6, 3), num_classes: int = 7, mask_activation: str = "softmax",
                 dropout: float = 0.4, depths=(4, 3, 2, 1)):
        super().__init__(BasicBlock, list(layers), num_classes=1000)
        self.masks = nn.ModuleList(MaskingBlock(c, d, mask_activation) for c, d in zip((64, 128, 256, 512), depths))
        self.fc = nn.Sequential(nn.Dropout(dropout), nn.Linear(512, num_classes))

    def forward_masked(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
        """Features after the last stage, with the mask P_S and refined map P_F of every stage."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        p_s_all, p_f_all = [], []
        for stage, mask in zip((self.layer1, self.layer2, self.layer3, self.layer4), self.masks):
            p_r = stage(x)
            p_s = mask(p_r)
            x = p_r * (1 + p_s)
            p_s_all.append(p_s)
            p_f_all.append(x)
        return x, p_s_all, p_f_all

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, _, _ = self.forward_masked(x)
        return self.fc(torch.flatten(self.avgpool(x), 1))


@register("resmaskingnet", input_size=224, in_channels=3, paper="Pham et al.", cam_layer="layer4")
def resmaskingnet(num_classes: int = 7, mask_activation: str = "softmax", dropout: float = 0.4) -> nn.Module:
    """ResMaskingNet: ResNet-34 with a U-Net masking block after each stage (Pham et al.)."""
    return ResMaskingNet((3, 4, 6, 3), num_classes, mask_activation, dropout)
