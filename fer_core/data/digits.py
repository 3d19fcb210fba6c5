"""Distorted digits: the sanity set of the spatial-transformer check (Qin's MNIST test).

Qin tests the STN on distorted MNIST, which cannot be downloaded here. scikit-learn's bundled
digits (1,797 grey 8x8 images, 10 classes) stand in: each digit is upscaled to 24x24, placed on a
48x48 canvas and randomly rotated (up to ``max_rotation`` degrees), scaled and shifted, like the
"RTS" variant of Jaderberg et al.'s distorted MNIST. Deterministic in ``seed``.
"""
from __future__ import annotations

import math

import numpy as np

DIGIT_NAMES: tuple[str, ...] = tuple(str(d) for d in range(10))
DIGITS_NOTE = "distorted scikit-learn digits (a sanity set, not faces)"


def make_digits(seed: int = 0, size: int = 48, max_rotation: float = 45.0, scale: tuple[float, float] = (0.7, 1.2),
                max_shift: float = 0.25, split: tuple[float, float] = (0.7, 0.15)) -> dict[str, np.ndarray]:
    """``images`` (uint8 N x size x size), ``labels`` (0-9), ``split`` (train/val/test, stratified)."""
    import torch
    import torch.nn.functional as F
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.from_numpy(digits.images.astype(np.float32) / 16.0).unsqueeze(1)  # N x 1 x 8 x 8, in [0, 1]
    x = F.interpolate(x, size=size // 2, mode="bilinear", align_corners=False)
    pad = (size - size // 2) // 2
    x = F.pad(x, (pad, size - size // 2 - pad, pad, size - size // 2 - pad))
    g = torch.Generator().manual_seed(seed)
    n = len(x)
    angle = (torch.rand(n, generator=g) * 2 - 1) * math.radians(max_rotation)
    s = scale[0] + torch.rand(n, generator=g) * (scale[1] - scale[0])
    shift = (torch.rand(n, 2, generator=g) * 2 - 1) * max_shift
    cos, sin = torch.cos(angle) / s, torch.sin(angle) / s
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    images = (x.squeeze(1).clamp(0, 1) * 255).round().to(torch.uint8).numpy()

    labels = digits.target.astype(np.int64)
    rng = np.random.default_rng(seed)
    parts = np.empty(n, dtype="<U5")
    for c in range(10):
        rows = rng.permutation(np.flatnonzero(labels == c))
        a, b = int(round(len(rows) * split[0])), int(round(len(rows) * (split[0] + split[1])))
        parts[rows[:a]], parts[rows[a:b]], parts[rows[b:]] = "train", "val", "test"
    return {"images": images, "labels": labels, "split": parts}
