"""Augmentation and input preparation on tensors, so they run on the GPU when there is one.

One affine warp per batch does flip, rotation, crop (random or resized) and the resize to the
model's input size at once (``affine_grid`` + ``grid_sample``); the random parameters are drawn
from a CPU generator, so a seeded run gets the same augmentations on any device.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .config import AugmentConfig

# ImageNet's mean and std averaged over its channels: grey faces, 3 channels or 1.
MEAN, STD = 0.449, 0.226


def _finish(x: torch.Tensor, in_channels: int) -> torch.Tensor:
    x = (x - MEAN) / STD
    return x.expand(-1, in_channels, -1, -1) if in_channels != x.shape[1] else x


def to_input(images: torch.Tensor, size: int, in_channels: int) -> torch.Tensor:
    """uint8 ``B x 1 x H x W`` -> normalised float ``B x in_channels x size x size`` (no randomness)."""
    x = images.float().div_(255)
    if x.shape[-1] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=size < x.shape[-1])
    return _finish(x, in_channels)


def augment(images: torch.Tensor, cfg: AugmentConfig, size: int, in_channels: int,
            generator: torch.Generator) -> torch.Tensor:
    """Randomly flipped, rotated and cropped model inputs from uint8 ``B x 1 x 48 x 48``."""
    b, _, h, _ = images.shape
    rand = lambda *shape: torch.rand(*shape, generator=generator)  # noqa: E731 - CPU draws
    angle = (rand(b) * 2 - 1) * math.radians(cfg.rotation)
    flip = torch.where(rand(b) < 0.5, -1.0, 1.0) if cfg.hflip else torch.ones(b)
    scale, shift = torch.ones(b), torch.zeros(b, 2)
    if cfg.crop == "random":  # pad-and-crop == a shift of up to `crop_padding` pixels
        shift = (rand(b, 2) * 2 - 1) * (2 * cfg.crop_padding / h)
    elif cfg.crop == "resized":  # a square crop of random area, anywhere inside the image
        lo, hi = cfg.crop_scale
        scale = torch.sqrt(lo + rand(b) * (hi - lo))
        shift = (rand(b, 2) * 2 - 1) * (1 - scale)[:, None]
    cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
    theta = torch.stack([torch.stack([cos * flip, -sin, shift[:, 0]], 1),
                         torch.stack([sin * flip, cos, shift[:, 1]], 1)], 1).to(images.device)
    x = images.float().div_(255)
    grid = F.affine_grid(theta, [b, 1, size, size], align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return _finish(x, in_channels)


def tta_views(images: torch.Tensor, crop: int, size: int, in_channels: int) -> list[torch.Tensor]:
    """Test-time augmentation views: four corners + centre crops of ``crop`` pixels, each also
    flipped, each resized to the model's input (the ten-crop of Pham et al.'s evaluation)."""
    h = images.shape[-1]
    o = h - crop
    c = o // 2
    crops = [images[..., :crop, :crop], images[..., :crop, o:], images[..., o:, :crop],
             images[..., o:, o:], images[..., c:c + crop, c:c + crop]]
    views = [to_input(v, size, in_channels) for v in crops]
    return views + [torch.flip(v, dims=[-1]) for v in views]
