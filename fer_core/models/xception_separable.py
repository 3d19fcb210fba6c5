"""Xception-style network of residual depthwise-separable blocks with ReLU6 (Yu)."""
from __future__ import annotations

import torch
from torch import nn

from . import register


class SeparableConv(nn.Sequential):
    """Keras' SeparableConv2D, which Yu names (Sec. 2): depthwise 3x3 conv then pointwise 1x1 conv,
    no activation between them, batch-norm after. (Sec. 2's prose puts the 1x1 first; the layer
    it names, followed here, does not.)"""

    def __init__(self, c_in: int, c_out: int):
        super().__init__(nn.Conv2d(c_in, c_in, 3, padding=1, groups=c_in, bias=False),
                         nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out))


def _shortcut(c_in: int, c_out: int, stride: int) -> nn.Module:
    if c_in == c_out and stride == 1:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))


class Residual1(nn.Module):
    """Yu's Residual-1 (Xception's entry-flow block): SepConv, ReLU6, SepConv, then a 3x3 max-pool
    with the block's stride; the shortcut is a strided 1x1 conv with batch-norm. No activation
    before the sum."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(SeparableConv(c_in, c_out), nn.ReLU6(inplace=True), SeparableConv(c_out, c_out),
                                  nn.MaxPool2d(3, stride, padding=1) if stride > 1 else nn.Identity())
        self.shortcut = _shortcut(c_in, c_out, stride)

    def forward(self, x):
        return self.body(x) + self.shortcut(x)


class Residual2(nn.Module):
    """Yu's Residual-2 (Xception's middle-flow block): three ReLU6 + SepConv units; an identity
    shortcut where the channels match, else a 1x1 conv with batch-norm."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        assert stride == 1, "Residual-2 keeps the resolution"
        self.body = nn.Sequential(nn.ReLU6(), SeparableConv(c_in, c_out), nn.ReLU6(inplace=True),
                                  SeparableConv(c_out, c_out), nn.ReLU6(inplace=True), SeparableConv(c_out, c_out))
        self.shortcut = _shortcut(c_in, c_out, 1)

    def forward(self, x):
        return self.body(x) + self.shortcut(x)


# Yu, Table / Fig. 2: block type, output channels, stride, in order
LAYOUT = (("R1", 128, 2), ("R2", 256, 1), ("R1", 728, 2), ("R2", 728, 1), ("R2", 728, 1), ("R1", 728, 2),
          ("SeparableConv", 728, 1))


class XceptionSeparable(nn.Module):
    """Yu, Sec. 3 (Fig. 2): two 3x3 convs (32, 64 channels, stride 1, batch-norm, ReLU6); then
    Residual-1 / Residual-2 blocks and a final separable conv with channels 128, 256, 728, 728,
    728, 728, 728 and strides 2, 1, 2, 1, 1, 2, 1; global average pooling and a 1x1 conv to the
    classes. Depthwise-separable convs are each followed by batch-norm; ReLU6 is the activation
    everywhere one is used. Interpretation: the final separable conv is followed by ReLU6, and
    Residual-1's stride is taken by the max-pool, as in Xception.
    """

    def __init__(self, num_classes: int = 7, in_channels: int = 1):
        super().__init__()
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU6(inplace=True),
            nn.Conv2d(32, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU6(inplace=True)]
        c = 64
        for kind, c_out, stride in LAYOUT:
            if kind == "R1":
                layers.append(Residual1(c, c_out, stride))
            elif kind == "R2":
                layers.append(Residual2(c, c_out, stride))
            else:
                layers += [SeparableConv(c, c_out), nn.ReLU6(inplace=True)]
            c = c_out
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Conv2d(c, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.classifier(self.pool(self.features(x))), 1)


@register("xception_separable", input_size=48, in_channels=1, paper="Yu", cam_layer=lambda m: m.features[-1])
def xception_separable(num_classes: int = 7) -> nn.Module:
    """Residual depthwise-separable Xception variant with ReLU6, on grey 48x48 faces (Yu)."""
    return XceptionSeparable(num_classes, in_channels=1)
