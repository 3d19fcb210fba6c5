"""mini-Xception (Arriaga, Valdenegro-Toro & Plöger, 2017)."""
from __future__ import annotations

import torch
from torch import nn

from . import register


def _separable(c_in: int, c_out: int) -> nn.Sequential:
    """Keras' SeparableConv2D (depthwise 3x3, pointwise 1x1, no bias), then batch-norm."""
    return nn.Sequential(nn.Conv2d(c_in, c_in, 3, padding=1, groups=c_in, bias=False),
                         nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out))


class Module(nn.Module):
    """One residual module: SeparableConv, ReLU, SeparableConv, 3x3 max-pool with stride 2, plus a
    strided 1x1 conv shortcut with batch-norm."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.body = nn.Sequential(_separable(c_in, c_out), nn.ReLU(inplace=True), _separable(c_out, c_out),
                                  nn.MaxPool2d(3, 2, padding=1))
        self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=2, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.shortcut(x)


class MiniXception(nn.Module):
    """Arriaga et al. (2017), "Real-time Convolutional Neural Networks for Emotion and Gender
    Classification" (arXiv:1710.07557), the model of their repository (``src/models/cnn.py``,
    ``mini_XCEPTION``): two 3x3 convs of 8 channels without padding, four residual modules of
    depthwise-separable convs (16, 32, 64, 128 channels, each halving the resolution), a 3x3 conv to
    the classes and global average pooling; about 57k parameters for 7 classes at 48x48.

    Interpretation: Keras' L2 kernel regularisation (0.01) is left to the optimiser's weight decay;
    the authors train at 64x64 (faces resized), the default here is the faces' own 48x48.
    """

    def __init__(self, num_classes: int = 7, in_channels: int = 1):
        super().__init__()
        self.base = nn.Sequential(
            nn.Conv2d(in_channels, 8, 3, bias=False), nn.BatchNorm2d(8), nn.ReLU(inplace=True),
            nn.Conv2d(8, 8, 3, bias=False), nn.BatchNorm2d(8), nn.ReLU(inplace=True))
        self.modules_ = nn.Sequential(Module(8, 16), Module(16, 32), Module(32, 64), Module(64, 128))
        self.head = nn.Conv2d(128, num_classes, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.pool(self.head(self.modules_(self.base(x)))), 1)


@register("mini_xception", input_size=48, in_channels=1, paper="Arriaga et al. 2017 (CPU chapter)",
          cam_layer="modules_")
def mini_xception(num_classes: int = 7) -> nn.Module:
    """mini-Xception: residual depthwise-separable modules, ~57k parameters (Arriaga et al. 2017)."""
    return MiniXception(num_classes)
