"""A run's attention record, ``attention.npz``: where its model looked, kept with the run.

At the end of every training run the run layer (:mod:`fer_core.runs.runner`) explains the selected model
on a fixed sample of test faces (``eval.attention`` faces, spread over the classes; the same faces
for every run on the same data) and writes, beside the metrics:

- ``ids`` (rows of the test split), ``files``, ``targets``, ``preds``, ``probs`` (the faces
  themselves are not stored: they are data, read back from the data set when it is at hand);
- ``map_<method>``: every method of :mod:`fer_core.explain.attribution`, 48x48 float16 per face;
- ``internal_<name>``: the model's own evidence (masks P_S, reconstruction, aligned and
  super-resolved faces), float16;
- ``deletion_<method>`` and ``insertion_<method>``: the probability of the predicted class as
  the face's pixels are replaced by its mean grey (deletion) or restored from it (insertion) in
  the map's order, :data:`CURVE_STEPS` + 1 points per face; ``random`` orders the pixels at random
  (the reference a method has to beat);
- ``sanity_<method>``: the mean rank correlation of the maps with those of the model after
  cascading randomisation (Adebayo et al., 2018) of its top layer, top half and all layers;
- ``truth`` (the synthetic set's ground-truth expression regions), when the data has them;
- ``meta``: JSON (methods, settings, seconds taken).

:func:`scores` turns a record into one row per method: the pointing game and the share of the map
inside the ground-truth regions (synthetic set), the areas under the deletion and insertion
curves, and the sanity check. ``python -m fer_core attention <run dir>`` recomputes the file from
the run's checkpoint.
"""
from __future__ import annotations

import json
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..models import get_spec
from ..paths import ATTENTION as FILE
from . import attribution
from .attribution import METHODS, OnFaces

CURVE_STEPS = 12
SANITY_STAGES = {"top layer": 0.0, "top half": 0.5, "all layers": 1.0}
SANITY_FACES = 8
SANITY_FLAG = 0.5  # mean rank correlation at or above which randomising every layer "did not change" the maps


def sample(test, n: int = 32, seed: int = 0) -> np.ndarray:
    """Rows of the test split to explain: ``n`` faces spread over the classes as evenly as the
    split allows, drawn with a fixed seed (the same rows for the same test split)."""
    rng = np.random.default_rng(seed)
    y = test.targets
    per_class = [rng.permutation(np.flatnonzero(y == c)).tolist() for c in range(test.num_classes)]
    chosen: list[int] = []
    while len(chosen) < min(n, len(y)):
        for rows in per_class:
            if rows and len(chosen) < n:
                chosen.append(rows.pop(0))
    return np.array(sorted(chosen), dtype=np.int64)


def _faces(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(images)).float().div(255).unsqueeze(1)


@torch.no_grad()
def _class_probs(fn: OnFaces, faces: torch.Tensor, target: torch.Tensor) -> np.ndarray:
    batch, out = attribution.forward_batch(fn.setup) if fn.setup is not None else 64, []
    for i in range(0, len(faces), batch):
        p = torch.softmax(fn(faces[i:i + batch]), 1)
        out.append(p.gather(1, target[i:i + batch, None])[:, 0].cpu())
    return torch.cat(out).numpy()


def curve_ends(fn: OnFaces, faces: torch.Tensor, target: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """The probability of ``target`` on the faces and on their mean grey: the two ends every
    deletion and insertion curve shares, whatever the map."""
    grey = faces.mean(dim=(1, 2, 3), keepdim=True).expand_as(faces)
    return _class_probs(fn, faces, target), _class_probs(fn, grey, target)


def perturbation_curves(fn: OnFaces, faces: torch.Tensor, target: torch.Tensor, maps: np.ndarray,
                        steps: int = CURVE_STEPS, ends: tuple[np.ndarray, np.ndarray] | None = None,
                        ) -> tuple[np.ndarray, np.ndarray]:
    """(deletion, insertion), each ``N x (steps + 1)``: the probability of ``target`` after the
    top k/steps of the pixels (in the maps' order) are set to the face's mean grey, or after only
    those pixels are restored on a face of its mean grey. The perturbed faces of every step are
    scored together in large batches; ``ends`` (:func:`curve_ends`) saves scoring the shared
    first and last points again for every map."""
    n, h, w = maps.shape
    face_p, grey_p = ends if ends is not None else curve_ends(fn, faces, target)
    order = np.argsort(-maps.reshape(n, -1), axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(h * w)[None].repeat(n, 0), axis=1)
    ranks = torch.from_numpy(ranks.reshape(n, 1, h, w)).to(faces.device)
    grey = faces.mean(dim=(1, 2, 3), keepdim=True).expand_as(faces)
    top = torch.stack([ranks < round(k / steps * h * w) for k in range(1, steps)])  # (steps-1) x N x 1 x H x W
    perturbed = torch.cat([torch.where(top, grey, faces), torch.where(top, faces, grey)]).flatten(0, 1)
    inner = _class_probs(fn, perturbed, target.repeat(2 * (steps - 1))).reshape(2, steps - 1, n).transpose(0, 2, 1)
    deletion = np.concatenate([face_p[:, None], inner[0], grey_p[:, None]], 1)
    insertion = np.concatenate([grey_p[:, None], inner[1], face_p[:, None]], 1)
    return deletion, insertion


def _sanity(model, model_name: str, setup, faces, target, maps: dict, ig_steps: int) -> dict[str, np.ndarray]:
    out = {m: [] for m in maps}
    for share in SANITY_STAGES.values():
        random_maps = attribution.explain_batch(attribution.randomised(model, share), model_name, setup, faces, target,
                                                list(maps), ig_steps=ig_steps)
        for m in maps:
            out[m].append(float(attribution.rank_correlation(maps[m], random_maps[m]).mean()))
    return {m: np.array(v, np.float32) for m, v in out.items()}


def compute(model, model_name: str, setup, test, *, n: int = 32, ig_steps: int = 16, sanity: bool = True,
            seed: int = 0, probs: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The arrays of ``attention.npz`` for a trained ``model`` and its test split ``test``.
    ``probs``: the run's own test-pass probabilities for the whole split (``predictions.csv``), the
    one source of the predicted class that the maps explain; without them the faces are scored here."""
    t0 = time.perf_counter()
    ids = sample(test, n, seed)
    faces = _faces(test.images[ids]).to(setup.device)
    model = attribution.explainable(model)
    fn = OnFaces.of(model, setup)
    if probs is not None:
        probs = torch.from_numpy(np.asarray(probs, dtype=np.float32)[ids]).to(setup.device)
    else:
        with torch.no_grad():
            probs = torch.cat([torch.softmax(fn(faces[i:i + 64]), 1) for i in range(0, len(faces), 64)])
    preds = probs.argmax(1)
    arrays: dict[str, np.ndarray] = {
        "ids": ids, "files": np.array([str(f) for f in test.files[ids]]) if test.files is not None else ids.astype(str),
        "targets": test.targets[ids], "preds": preds.cpu().numpy(),
        "probs": probs.cpu().numpy().astype(np.float16), "class_names": np.array(test.class_names)}
    if test.mask is not None:
        arrays["truth"] = test.mask[ids].astype(bool)
    for name, values in attribution.internals(model, setup, faces).items():
        arrays[f"internal_{name}"] = values.astype(np.float16)
    methods = list(METHODS) if get_spec(model_name).cam_layer is not None else []
    maps = attribution.explain_batch(model, model_name, setup, faces, preds, methods, ig_steps=ig_steps)
    rng = np.random.default_rng(seed)
    ends = curve_ends(fn, faces, preds) if methods else None
    for method, m in {**maps, "random": rng.random((len(ids), 48, 48))}.items():
        if method != "random":
            arrays[f"map_{method}"] = m.astype(np.float16)
        if methods:
            deletion, insertion = perturbation_curves(fn, faces, preds, m, ends=ends)
            arrays[f"deletion_{method}"], arrays[f"insertion_{method}"] = (deletion.astype(np.float16),
                                                                           insertion.astype(np.float16))
    if sanity and methods:
        k = min(SANITY_FACES, len(ids))
        for method, corr in _sanity(model, model_name, setup, faces[:k], preds[:k],
                                    {m: v[:k] for m, v in maps.items()}, ig_steps).items():
            arrays[f"sanity_{method}"] = corr
    meta = {"methods": {m: METHODS[m] for m in methods}, "faces": len(ids), "ig_steps": ig_steps,
            "curve_steps": CURVE_STEPS, "curve_baseline": "the face's mean grey",
            "sanity_stages": list(SANITY_STAGES), "sanity_faces": min(SANITY_FACES, len(ids)) if sanity else 0,
            "model": model_name, "seconds": round(time.perf_counter() - t0, 2)}
    arrays["meta"] = np.array(json.dumps(meta))
    return arrays


def write(path: str | Path, arrays: dict[str, np.ndarray]) -> Path:
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(path)
    return path


@dataclass(frozen=True)
class Attention:
    """An ``attention.npz`` read back; ``faces`` are the explained faces when the data set was at
    hand (:func:`with_faces`), else None."""

    path: Path
    arrays: dict
    faces: np.ndarray | None = None

    @classmethod
    def read(cls, path: str | Path) -> "Attention":
        path = Path(path)
        if path.is_dir():
            path = path / FILE
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist: the run was made before attention records, or without "
                                    f"them (eval.attention: 0). Recompute it from the checkpoint with "
                                    f"python -m fer_core attention {path.parent}.")
        try:
            with np.load(path, allow_pickle=False) as z:
                return cls(path, {k: z[k] for k in z.files})
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
            why = (str(e).splitlines() or [type(e).__name__])[0]
            raise ValueError(f"Attention record {path} cannot be read ({why}): recompute it from the run's "
                             f"checkpoint with python -m fer_core attention {path.parent}.") from None

    @property
    def meta(self) -> dict:
        return json.loads(str(self.arrays["meta"]))

    @property
    def methods(self) -> list[str]:
        return [k[4:] for k in self.arrays if k.startswith("map_")]

    @property
    def class_names(self) -> list[str]:
        return [str(c) for c in self.arrays["class_names"]]

    def maps(self, method: str) -> np.ndarray:
        return self.arrays[f"map_{method}"].astype(np.float32)

    @property
    def internals(self) -> dict[str, np.ndarray]:
        return {k[9:]: v.astype(np.float32) for k, v in self.arrays.items() if k.startswith("internal_")}


def _auc(curves: np.ndarray) -> float:
    """Mean area under the per-face curves over [0, 1] (trapezoid rule)."""
    c = curves.astype(np.float64)
    return float(((c[:, 1:] + c[:, :-1]) / 2).mean(1).mean())


def scores(att: Attention) -> pd.DataFrame:
    """One row per method (and the random reference): pointing game and share inside the
    ground-truth regions (synthetic set only), deletion and insertion AUC, sanity check."""
    a = att.arrays
    rows = []
    for method in att.methods + (["random"] if "deletion_random" in a else []):
        row: dict = {"method": method}
        if "truth" in a and method != "random":
            maps, truth = att.maps(method), a["truth"]
            peak = maps.reshape(len(maps), -1).argmax(1)
            row["pointing game"] = float(truth.reshape(len(truth), -1)[np.arange(len(maps)), peak].mean())
            row["share in regions"] = float(((maps * truth).sum((1, 2)) / np.maximum(maps.sum((1, 2)), 1e-12)).mean())
            row["regions' share of the face"] = float(truth.mean())
        if f"deletion_{method}" in a:
            row["deletion AUC (lower is better)"] = _auc(a[f"deletion_{method}"])
            row["insertion AUC (higher is better)"] = _auc(a[f"insertion_{method}"])
        if f"sanity_{method}" in a:
            corr = a[f"sanity_{method}"]
            for stage, value in zip(SANITY_STAGES, corr):
                row[f"rank corr., {stage} random"] = float(value)
            row["sanity check"] = "fails: maps barely change" if corr[-1] >= SANITY_FLAG else "passes"
        rows.append(row)
    return pd.DataFrame(rows).set_index("method") if rows else pd.DataFrame()


def class_means(att: "Attention", method: str) -> np.ndarray:
    """``C x 48 x 48``: the map averaged over the sample's faces of each class (NaN for a class
    with no face in the sample)."""
    maps, y = att.maps(method), att.arrays["targets"]
    return np.stack([maps[y == c].mean(0) if (y == c).any() else np.full(maps.shape[1:], np.nan)
                     for c in range(len(att.class_names))])
