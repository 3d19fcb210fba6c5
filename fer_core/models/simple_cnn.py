"""A small VGG-style CNN: the book's sanity baseline, quick enough for CPU tests."""
from torch import nn

from . import register


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
        nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    )


@register("simple_cnn", input_size=48, in_channels=1, cam_layer=lambda m: m[-5])
def simple_cnn(num_classes: int = 7, width: int = 16, dropout: float = 0.3, blocks: int = 3) -> nn.Module:
    """Conv blocks of width, 2x, 4x ... channels (``blocks``, default 3) + global average pooling +
    dropout + linear."""
    chans = [1] + [width * 2 ** i for i in range(blocks)]
    return nn.Sequential(
        *(_block(a, b) for a, b in zip(chans, chans[1:])),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(chans[-1], num_classes),
    )
