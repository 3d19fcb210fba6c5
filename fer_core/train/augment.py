"""Augmentation and input preparation on tensors, so they run on the GPU when there is one.

One affine warp per batch does flip, rotation, crop (random or resized) and the resize to the
model's input size at once (``affine_grid`` + ``grid_sample``); the random parameters are drawn
from a CPU generator, so a seeded run gets the same augmentations on any device.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..config import AugmentConfig

# ImageNet's mean and std averaged over its channels: grey faces, 3 channels or 1.
MEAN, STD = 0.449, 0.226


def _finish(x: torch.Tensor, in_channels: int) -> torch.Tensor:
    x = (x - MEAN) / STD
    return x.expand(-1, in_channels, -1, -1) if in_channels != x.shape[1] else x


def to_input(images: torch.Tensor, size: int, in_channels: int) -> torch.Tensor:
    """uint8 ``B x 1 x H x W`` -> normalised float ``B x in_channels x size x size`` (no randomness)."""
    return faces_to_input(images.float().div_(255), size, in_channels)


def faces_to_input(faces: torch.Tensor, size: int, in_channels: int) -> torch.Tensor:
    """Grey faces as floats in [0, 1] (``B x 1 x H x W``) -> the model's input; differentiable, so
    that an attribution can be taken with respect to the 48x48 face itself."""
    x = faces
    if x.shape[-1] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=size < x.shape[-1])
    return _finish(x, in_channels)


def affine_params(n: int, cfg: AugmentConfig, h: int, generator: torch.Generator) -> torch.Tensor:
    """``n x 2 x 3`` random affine matrices (flip, rotation, crop) drawn from a CPU generator."""
    rand = lambda *shape: torch.rand(*shape, generator=generator)  # noqa: E731 - CPU draws
    angle = (rand(n) * 2 - 1) * math.radians(cfg.rotation)
    flip = torch.where(rand(n) < 0.5, -1.0, 1.0) if cfg.hflip else torch.ones(n)
    scale, shift = torch.ones(n), torch.zeros(n, 2)
    if cfg.crop == "random":  # pad-and-crop == a shift of up to `crop_padding` pixels
        shift = (rand(n, 2) * 2 - 1) * (2 * cfg.crop_padding / h)
    elif cfg.crop == "resized":  # a square crop of random area, anywhere inside the image
        lo, hi = cfg.crop_scale
        scale = torch.sqrt(lo + rand(n) * (hi - lo))
        shift = (rand(n, 2) * 2 - 1) * (1 - scale)[:, None]
    cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
    return torch.stack([torch.stack([cos * flip, -sin, shift[:, 0]], 1),
                        torch.stack([sin * flip, cos, shift[:, 1]], 1)], 1)


def warp(images: torch.Tensor, theta: torch.Tensor, size: int, in_channels: int) -> torch.Tensor:
    """uint8 ``B x 1 x H x W`` warped by ``theta`` (``B x 2 x 3``) straight to normalised model inputs."""
    x = images.float().div_(255)
    grid = F.affine_grid(theta.to(images.device), [len(x), 1, size, size], align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return _finish(x, in_channels)


def augment(images: torch.Tensor, cfg: AugmentConfig, size: int, in_channels: int,
            generator: torch.Generator) -> torch.Tensor:
    """Randomly flipped, rotated and cropped model inputs from uint8 ``B x 1 x 48 x 48``: one affine
    warp per image does flip, rotation, crop and the resize to the model's input at once."""
    return warp(images, affine_params(len(images), cfg, images.shape[-1], generator), size, in_channels)


def tencrop_views(images: torch.Tensor, crop: int, size: int, in_channels: int) -> list[torch.Tensor]:
    """Test-time augmentation ``tencrop``: four corner crops and the centre crop of ``crop`` pixels,
    each also mirrored, each resized to the model's input (a common FER evaluation; this book's
    option, not a paper's)."""
    h = images.shape[-1]
    o = h - crop
    c = o // 2
    crops = [images[..., :crop, :crop], images[..., :crop, o:], images[..., o:, :crop],
             images[..., o:, o:], images[..., c:c + crop, c:c + crop]]
    views = [to_input(v, size, in_channels) for v in crops]
    return views + [torch.flip(v, dims=[-1]) for v in views]


def random_view_params(n: int, cfg: AugmentConfig, n_views: int, seed: int, h: int = 48) -> list[torch.Tensor]:
    """Test-time augmentation ``random_views`` (Pham et al.'s evaluation: ``trainers/tta_trainer.py``
    of their code scores each test face on 10 draws of the training augmentation and sums the
    softmax): ``n_views`` sets of affine matrices for ``n`` images, drawn once for the whole split
    from ``seed``, so that the result does not depend on the evaluation batch size."""
    return [affine_params(n, cfg, h, torch.Generator().manual_seed(seed * 7919 + 104_729 + v))
            for v in range(n_views)]
