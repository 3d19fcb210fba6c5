"""Improved ResNet-50 (Du)."""
from __future__ import annotations

import torch
from torch import nn
from torchvision.models import resnet50

from . import register


def _head_block(d_in: int, d_out: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Dropout(dropout), nn.BatchNorm1d(d_in), nn.ReLU(inplace=True), nn.Linear(d_in, d_out))


class ImprovedResNet50(nn.Module):
    """Du, Sec. 2.2 (Fig. 2): ResNet-50 on 48x48x3 faces; its 2x2x2048 output map is flattened
    (8,192 values, no global pooling) and passed through two blocks of dropout, batch-norm,
    activation and a fully connected layer, then softmax (inside the cross-entropy).

    Interpretation: the paper does not give the first block's width (``hidden`` = 1024 by default)
    nor the activation (ReLU); its "drops 50 presented neurons" is read as dropout 0.5, in both
    blocks. At other input sizes the flattened length follows the map's size.
    """

    def __init__(self, num_classes: int = 7, hidden: int = 1024, dropout: float = 0.5, input_size: int = 48):
        super().__init__()
        r = resnet50(weights=None)
        self.features = nn.Sequential(r.conv1, r.bn1, r.relu, r.maxpool, r.layer1, r.layer2, r.layer3, r.layer4)
        side = -(-input_size // 32)  # ceil: 48 -> 2
        self.block1 = _head_block(2048 * side * side, hidden, dropout)
        self.block2 = _head_block(hidden, num_classes, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block2(self.block1(torch.flatten(self.features(x), 1)))


@register("improved_resnet50", input_size=48, in_channels=3, paper="Du", cam_layer="features.7")
def improved_resnet50(num_classes: int = 7, hidden: int = 1024, dropout: float = 0.5,
                      input_size: int = 48) -> nn.Module:
    """ResNet-50 at 48x48 + two dropout / batch-norm / ReLU / FC blocks on the flattened 2x2x2048 map (Du)."""
    return ImprovedResNet50(num_classes, hidden, dropout, input_size)
