"""mini-Xception (Arriaga, Valdenegro-Toro & Plöger, 2017)."""
from __future__ import annotations

import torch
from torch import nn

from . import register
from .same_padding import MaxPool2dSame

KERAS_EPS = 1e-3  # Keras's BatchNormalization epsilon (torch's default: 1e-5)


def _separable(c_in: int, c_out: int, eps: float) -> nn.Sequential:
    """Keras' SeparableConv2D (depthwise 3x3, pointwise 1x1, no bias), then batch-norm."""
    return nn.Sequential(nn.Conv2d(c_in, c_in, 3, padding=1, groups=c_in, bias=False),
                         nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out, eps=eps))


class Module(nn.Module):
    """One residual module: SeparableConv, ReLU, SeparableConv, 3x3 max-pool with stride 2, plus a
    strided 1x1 conv shortcut with batch-norm."""

    def __init__(self, c_in: int, c_out: int, keras: bool = False):
        super().__init__()
        eps = KERAS_EPS if keras else 1e-5
        pool = MaxPool2dSame(3, 2) if keras else nn.MaxPool2d(3, 2, padding=1)
        self.body = nn.Sequential(_separable(c_in, c_out, eps), nn.ReLU(inplace=True), _separable(c_out, c_out, eps),
                                  pool)
        self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=2, bias=False), nn.BatchNorm2d(c_out, eps=eps))

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
    ``keras=True`` is the authors' forward pass exactly (what their released weights need):
    TensorFlow's "same" max-pool (padding after, not around: ``same_padding``) and Keras's
    batch-norm epsilon 1e-3. ``keras=False`` (the default, what the book's runs before it used)
    pads the pools on both sides, which shifts each window by a pixel against the shortcut.
    """

    def __init__(self, num_classes: int = 7, in_channels: int = 1, keras: bool = False):
        super().__init__()
        eps = KERAS_EPS if keras else 1e-5
        self.base = nn.Sequential(
            nn.Conv2d(in_channels, 8, 3, bias=False), nn.BatchNorm2d(8, eps=eps), nn.ReLU(inplace=True),
            nn.Conv2d(8, 8, 3, bias=False), nn.BatchNorm2d(8, eps=eps), nn.ReLU(inplace=True))
        self.modules_ = nn.Sequential(*(Module(c, 2 * c, keras) for c in (8, 16, 32, 64)))
        self.head = nn.Conv2d(128, num_classes, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.pool(self.head(self.modules_(self.base(x)))), 1)


@register("mini_xception", input_size=48, in_channels=1, paper="Arriaga et al. 2017 (CPU chapter)",
          cam_layer="modules_")
def mini_xception(num_classes: int = 7, keras: bool = False) -> nn.Module:
    """mini-Xception: residual depthwise-separable modules, ~57k parameters (Arriaga et al. 2017)."""
    return MiniXception(num_classes, keras=keras)
