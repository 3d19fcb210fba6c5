"""Augmentation on tensors and the inputs of test-time augmentation (fer_core.train.augment)."""

import torch

from fer_core.config import AugmentConfig
from fer_core.train.augment import augment, tencrop_views, to_input


# -- augmentation and inputs ------------------------------------------------------------------
def _batch(n=8):
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (n, 1, 48, 48), dtype=torch.uint8, generator=g)


def test_augment_shapes_and_seeded_determinism():
    x = _batch()
    cfg = AugmentConfig(crop="resized", rotation=15)
    a = augment(x, cfg, 64, 3, torch.Generator().manual_seed(1))
    b = augment(x, cfg, 64, 3, torch.Generator().manual_seed(1))
    c = augment(x, cfg, 64, 3, torch.Generator().manual_seed(2))
    assert a.shape == (8, 3, 64, 64) and a.dtype == torch.float32
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(a[:, 0], a[:, 2])  # grey -> 3 identical channels


def test_flip_only_augmentation_flips_some_images_exactly():
    x = _batch(32)
    cfg = AugmentConfig(hflip=True, rotation=0, crop="none")
    out = augment(x, cfg, 48, 1, torch.Generator().manual_seed(0))
    plain, flipped = to_input(x, 48, 1), torch.flip(to_input(x, 48, 1), dims=[-1])
    same = [torch.allclose(o, p, atol=1e-5) for o, p in zip(out, plain)]
    mirrored = [torch.allclose(o, f, atol=1e-5) for o, f in zip(out, flipped)]
    assert all(s or m for s, m in zip(same, mirrored)) and any(same) and any(mirrored)


def test_no_augmentation_is_the_identity():
    x = _batch()
    cfg = AugmentConfig(hflip=False, rotation=0, crop="none")
    assert torch.allclose(augment(x, cfg, 48, 1, torch.Generator()), to_input(x, 48, 1), atol=1e-5)


def test_tta_views_are_ten_crops_and_flips():
    views = tencrop_views(_batch(2), 40, 48, 1)
    assert len(views) == 10 and all(v.shape == (2, 1, 48, 48) for v in views)
    assert torch.allclose(views[5], torch.flip(views[0], dims=[-1]))
