"""An embedded synthetic FER set: procedurally drawn 48x48 grey faces, no download needed.

Each face has an identity (face shape, eye spacing, skin tone) and one of the seven FER2013
expressions, which differ only in the brows, the eyes and the mouth, the regions a FER model
should look at. Every image is varied in expression intensity, pose (rotation, scale, shift),
lighting, noise and partial occlusion, so that a linear classifier on raw pixels does clearly
worse than a small CNN (``tests/test_synthetic.py`` measures both). For every image the set
also gives the ground-truth mask of the expression-bearing regions (eyes + brows, mouth),
used to score attention maps.

Results on this set are *not* comparable to any paper: it only lets the whole book run with no
data configured, and every output made from it says so (:data:`SYNTHETIC_NOTE`).
"""
from __future__ import annotations

import numpy as np

SYNTHETIC_NOTE = "synthetic data — not comparable to the papers"

# Expression parameters, canonical order 0 angry .. 6 neutral:
# eye openness, brow raise, brow tilt (+: inner end down), mouth curvature (+: corners up),
# mouth half-width, mouth opening, mouth skew, nose wrinkle.
_EXPRESSIONS = np.array([
    # open  raise   tilt   curv   width  opening skew  wrinkle
    [0.60, -0.05,  0.09, -0.03,  0.20,  0.00,  0.00,  0.0],   # angry
    [0.50, -0.06,  0.03, -0.06,  0.25,  0.02,  0.12,  1.0],   # disgust
    [1.50,  0.07, -0.06, -0.02,  0.34,  0.09,  0.00,  0.0],   # fear
    [0.65,  0.01,  0.00,  0.13,  0.36,  0.04,  0.00,  0.0],   # happy
    [0.75,  0.02, -0.09, -0.11,  0.25,  0.00,  0.00,  0.0],   # sad
    [1.65,  0.13,  0.00,  0.00,  0.15,  0.17,  0.00,  0.0],   # surprise
    [1.00,  0.00,  0.00,  0.00,  0.25,  0.00,  0.00,  0.0],   # neutral
], dtype=np.float64)
_NEUTRAL = _EXPRESSIONS[6]


def _soft(d: np.ndarray, sharp: float = 40.0) -> np.ndarray:
    """Anti-aliased inside-indicator of a signed distance (negative inside)."""
    return 1.0 / (1.0 + np.exp(np.clip(sharp * d, -50, 50)))


def _identities(n_subjects: int, rng: np.random.Generator) -> np.ndarray:
    # face half-width, half-height, eye spacing, eye height, mouth height, skin tone, feature tone
    lo = np.array([0.60, 0.80, 0.26, -0.24, 0.40, 0.50, 0.05])
    hi = np.array([0.76, 0.94, 0.36, -0.12, 0.52, 0.85, 0.30])
    return lo + (hi - lo) * rng.random((n_subjects, 7))


def _render(expr: np.ndarray, ident: np.ndarray, rng: np.random.Generator, size: int = 48):
    """Draw a batch of faces. ``expr``: (n, 8) expression parameters, ``ident``: (n, 7)."""
    n = len(expr)
    c = lambda a: a[:, None, None]  # noqa: E731 - broadcast a per-image value over pixels
    # pose: face coordinates (u, v) of every pixel, v pointing down
    theta = np.deg2rad(rng.uniform(-20, 20, n))
    scale = rng.uniform(0.78, 1.08, n)
    shift = rng.uniform(-0.14, 0.14, (n, 2))
    grid = (np.arange(size) - (size - 1) / 2) / (size / 2)
    py, px = np.meshgrid(grid, grid, indexing="ij")
    x, y = px[None] - c(shift[:, 0]), py[None] - c(shift[:, 1])
    cos, sin = c(np.cos(theta)), c(np.sin(theta))
    u, v = (cos * x + sin * y) / c(scale), (-sin * x + cos * y) / c(scale)

    a, b, ex, ey, my, skin, tone = (c(ident[:, i]) for i in range(7))
    eye_open, raise_, tilt, curv, width, opening, skew, wrinkle = (c(expr[:, i]) for i in range(8))

    background = c(rng.uniform(0.05, 0.95, n))
    face = _soft(np.sqrt((u / a) ** 2 + (v / b) ** 2) - 1.0, 20)
    img = background * (1 - face) + skin * face
    dark = np.zeros_like(u)  # how much of the feature tone each pixel takes

    au = np.abs(u)  # the two halves of the face mirror each other
    # eyes: ellipses whose height is the openness, with a pupil
    eye_d = np.sqrt(((au - ex) / 0.12) ** 2 + ((v - ey) / (0.055 * eye_open + 1e-3)) ** 2) - 1.0
    dark = np.maximum(dark, 0.85 * _soft(eye_d * 0.1, 60))
    # brows: thick strokes above the eyes; tilt lowers (+) or raises (-) the inner end
    inner = np.clip((ex + 0.14 - au) / 0.28, 0, 1)
    brow_v = ey - 0.19 - raise_ + tilt * inner
    brow_d = np.maximum(np.abs(v - brow_v) - 0.035, np.abs(au - ex) - 0.15)
    dark = np.maximum(dark, _soft(brow_d, 60))
    # nose: a short vertical stroke, plus wrinkles beside it (disgust)
    nose_d = np.maximum(np.abs(u) - 0.02, np.abs(v - 0.15) - 0.12)
    dark = np.maximum(dark, 0.5 * _soft(nose_d, 60))
    wr_d = np.maximum(np.abs(au - 0.11 - 0.25 * (v - 0.05)) - 0.018, np.abs(v - 0.06) - 0.06)
    dark = np.maximum(dark, wrinkle * 0.8 * _soft(wr_d, 60))
    # mouth: a curve v = my - curv*(u/w)^2 + skew*u, lips opened by `opening`
    t = np.clip(u / width, -1, 1)
    mid = my + curv * (0.5 - t ** 2) + skew * u
    half_open = 0.5 * opening * (1 - t ** 2) + 0.022
    mouth_d = np.maximum(np.abs(v - mid) - half_open, np.abs(u) - width)
    dark = np.maximum(dark, _soft(mouth_d, 60))

    img = img * (1 - dark * face) + tone * dark * face
    # lighting gradient, noise, and an occluder over part of the image in 30% of faces
    phi = rng.uniform(0, 2 * np.pi, n)
    light = 1 + c(rng.uniform(0, 0.4, n)) * (c(np.cos(phi)) * px[None] + c(np.sin(phi)) * py[None])
    img = img * light + c(rng.uniform(0.02, 0.09, n)) * rng.standard_normal(img.shape)
    occluded = rng.random(n) < 0.3
    for i in np.flatnonzero(occluded):
        h, w = rng.integers(8, 20, 2)
        r0, c0 = rng.integers(0, size - h), rng.integers(0, size - w)
        img[i, r0:r0 + h, c0:c0 + w] = rng.uniform(0, 1)

    # ground truth: the expression-bearing regions (eyes with brows, mouth), in face coordinates
    eye_region = (((au - ex) / 0.22) ** 2 + ((v - (ey - 0.1)) / 0.24) ** 2) <= 1
    mouth_region = ((u / (0.42)) ** 2 + ((v - my) / 0.2) ** 2) <= 1
    mask = eye_region | mouth_region
    return np.clip(np.rint(img * 255), 0, 255).astype(np.uint8), mask


def make_synthetic(
    n_train: int = 3500,
    n_val: int = 700,
    n_test: int = 700,
    seed: int = 0,
    n_subjects: int = 150,
    size: int = 48,
) -> dict[str, np.ndarray]:
    """Generate the synthetic set: balanced classes, subjects disjoint across splits.

    Returns arrays ``images`` (uint8 N x size x size), ``labels`` (canonical ids 0-6),
    ``split`` ('train'/'val'/'test'), ``subject`` and ``mask`` (bool, expression regions).
    The same arguments always give the same arrays.
    """
    rng = np.random.default_rng(seed)
    counts = {"train": n_train, "val": n_val, "test": n_test}
    # subjects: 70% / 15% / 15% of the identities, one disjoint range per split
    bounds = np.rint(np.cumsum([0, 0.7, 0.15, 0.15]) * n_subjects).astype(int)
    idents = _identities(n_subjects, rng)
    out: dict[str, list] = {k: [] for k in ("images", "labels", "split", "subject", "mask")}
    for s, (split, n) in enumerate(counts.items()):
        labels = np.arange(n) % 7
        rng.shuffle(labels)
        subj = rng.integers(bounds[s], bounds[s + 1], n)
        strength = rng.uniform(0.45, 1.0, (n, 1))
        expr = _NEUTRAL + strength * (_EXPRESSIONS[labels] - _NEUTRAL)
        expr = expr + rng.normal(0, 1, expr.shape) * np.array([0.08, 0.012, 0.012, 0.012, 0.02, 0.01, 0.02, 0.1])
        expr[:, 0] = np.maximum(expr[:, 0], 0.15)
        for lo in range(0, n, 1024):  # bounded memory
            img, mask = _render(expr[lo:lo + 1024], idents[subj[lo:lo + 1024]], rng, size)
            out["images"].append(img)
            out["mask"].append(mask)
        out["labels"].append(labels)
        out["split"].append(np.full(n, split))
        out["subject"].append(np.char.add("syn_S", subj.astype(str)))
    return {k: np.concatenate(v) for k, v in out.items()}
