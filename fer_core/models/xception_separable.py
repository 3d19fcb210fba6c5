"""Xception-style network of residual depthwise-separable blocks with ReLU6 (Yu)."""
from __future__ import annotations

import torch
from torch import nn

from . import register
from .same_padding import MaxPool2dSame

KERAS_EPS = 1e-3  # Keras's BatchNormalization epsilon (torch's default: 1e-5)


class SeparableConv(nn.Sequential):
    """Keras' SeparableConv2D, which Yu names (Sec. 2): depthwise 3x3 conv then pointwise 1x1 conv,
    no activation between them, batch-norm after. (Sec. 2's prose puts the 1x1 first; the layer
    it names, followed here, does not.)"""

    def __init__(self, c_in: int, c_out: int, eps: float = 1e-5):
        super().__init__(nn.Conv2d(c_in, c_in, 3, padding=1, groups=c_in, bias=False),
                         nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out, eps=eps))


def _shortcut(c_in: int, c_out: int, stride: int, eps: float = 1e-5) -> nn.Module:
    if c_in == c_out and stride == 1:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out, eps=eps))


class Residual1(nn.Module):
    """Yu's Residual-1 (Xception's entry-flow block): SepConv, ReLU6, SepConv, then a 3x3 max-pool
    with the block's stride; the shortcut is a strided 1x1 conv with batch-norm. No activation
    before the sum."""

    def __init__(self, c_in: int, c_out: int, stride: int, keras: bool = False):
        super().__init__()
        eps = KERAS_EPS if keras else 1e-5
        pool = (MaxPool2dSame(3, stride) if keras else nn.MaxPool2d(3, stride, padding=1)) if stride > 1 \
            else nn.Identity()
        self.body = nn.Sequential(SeparableConv(c_in, c_out, eps), nn.ReLU6(inplace=True),
                                  SeparableConv(c_out, c_out, eps), pool)
        self.shortcut = _shortcut(c_in, c_out, stride, eps)

    def forward(self, x):
        return self.body(x) + self.shortcut(x)


class Residual2(nn.Module):
    """Yu's Residual-2 (Xception's middle-flow block): three ReLU6 + SepConv units; an identity
    shortcut where the channels match, else a 1x1 conv with batch-norm."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1, keras: bool = False):
        super().__init__()
        assert stride == 1, "Residual-2 keeps the resolution"
        eps = KERAS_EPS if keras else 1e-5
        self.body = nn.Sequential(nn.ReLU6(), SeparableConv(c_in, c_out, eps), nn.ReLU6(inplace=True),
                                  SeparableConv(c_out, c_out, eps), nn.ReLU6(inplace=True),
                                  SeparableConv(c_out, c_out, eps))
        self.shortcut = _shortcut(c_in, c_out, 1, eps)

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
    Residual-1's stride is taken by the max-pool, as in Xception. ``keras=True`` is the network as
    Keras builds it (Yu names Keras's layers, Sec. 2): TensorFlow's "same" max-pool (padding after,
    not around: ``same_padding``) and Keras's batch-norm epsilon 1e-3; ``keras=False`` is the book's
    earlier port, whose pools are shifted a pixel against the strided shortcuts.
    """

    def __init__(self, num_classes: int = 7, in_channels: int = 1, keras: bool = False):
        super().__init__()
        eps = KERAS_EPS if keras else 1e-5
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32, eps=eps), nn.ReLU6(inplace=True),
            nn.Conv2d(32, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64, eps=eps), nn.ReLU6(inplace=True)]
        c = 64
        for kind, c_out, stride in LAYOUT:
            if kind == "R1":
                layers.append(Residual1(c, c_out, stride, keras))
            elif kind == "R2":
                layers.append(Residual2(c, c_out, stride, keras))
            else:
                layers += [SeparableConv(c, c_out, eps), nn.ReLU6(inplace=True)]
            c = c_out
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Conv2d(c, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.classifier(self.pool(self.features(x))), 1)


@register("xception_separable", input_size=48, in_channels=1, paper="Yu", cam_layer=lambda m: m.features[-1])
def xception_separable(num_classes: int = 7, keras: bool = False) -> nn.Module:
    """Residual depthwise-separable Xception variant with ReLU6, on grey 48x48 faces (Yu)."""
    return XceptionSeparable(num_classes, in_channels=1, keras=keras)
