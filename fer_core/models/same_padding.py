"""TensorFlow's "same" padding for the models ported from Keras descriptions (mini-Xception, Yu's
network). With a stride of 2 on an even size, "same" needs one row and column of padding and
TensorFlow puts it at the bottom and right; ``nn.MaxPool2d(3, 2, padding=1)`` pads both sides, which
gives the same output size but shifts every pooling window up and left by one pixel, out of line
with the strided 1x1 shortcut it is added to (pixels 0, 2, 4, ...)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def same_pads(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """(before, after) padding of one dimension under TensorFlow's "same" (the odd one after)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class MaxPool2dSame(nn.Module):
    """``MaxPooling2D(pool_size=kernel, strides=stride, padding="same")`` as TensorFlow computes it."""

    def __init__(self, kernel: int, stride: int):
        super().__init__()
        self.kernel, self.stride = kernel, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (top, bottom), (left, right) = (same_pads(x.shape[-2], self.kernel, self.stride),
                                        same_pads(x.shape[-1], self.kernel, self.stride))
        x = F.pad(x, (left, right, top, bottom), value=float("-inf"))
        return F.max_pool2d(x, self.kernel, self.stride)

    def extra_repr(self) -> str:
        return f"kernel={self.kernel}, stride={self.stride}, padding='same' (TensorFlow)"
