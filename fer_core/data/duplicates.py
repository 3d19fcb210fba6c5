"""Test and validation faces that are also training faces.

FER2013 holds faces twice: measured on this book's copy, 288 of the 3,589 PrivateTest faces and
280 PublicTest faces have a byte-identical twin among the 28,709 Training faces (mostly with the
same label). A model can score them by memory, so every FER2013 record is also scored on the
duplicate-free test split (:func:`scores`), from its own ``predictions.csv``.

Method: **exact pixel identity after decoding** — the 48x48 grey values of a test face equal those
of a training face (a BLAKE2 hash of the pixels, then a pixel-by-pixel check of every match). It
catches the image-folder release's copies and the CSV layout's alike (both are compared after
decoding). Near-duplicates — the same face re-encoded, shifted or cropped a pixel differently — are
**not** caught: no threshold of a perceptual distance is validated on these faces here, so the
duplicate-free score is an upper bound on what memory does not explain.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, f1_score

from ..paths import DUPLICATE_FREE

METHOD = "exact pixel identity after decoding (BLAKE2 hash, then pixel check); near-duplicates not caught"
FILE = DUPLICATE_FREE  # the record file it is kept in


def pixel_keys(images: np.ndarray) -> np.ndarray:
    """One hash per face of its decoded uint8 pixels."""
    return np.array([hashlib.blake2b(np.ascontiguousarray(img).tobytes(), digest_size=16).hexdigest()
                     for img in images])


@dataclass(frozen=True)
class Twins:
    """The faces of ``split`` with a training twin: their rows in the data set, file names and
    labels, and the twin's file name and label (a training face with those pixels, one with the
    same label where there is one)."""

    table: pd.DataFrame

    def files(self, split: str) -> set[str]:
        return set(self.table.loc[self.table["split"] == split, "file"])

    def counts(self, class_names: list[str]) -> pd.DataFrame:
        """Per split and class: faces with a training twin, and how many of those share its label."""
        t = self.table.assign(cls=[class_names[i] for i in self.table["target"]],
                              same=self.table["target"] == self.table["twin_target"])
        return (t.groupby(["split", "cls"]).agg(twins=("file", "size"), same_label=("same", "sum"))
                .rename_axis(["split", "class"]))


def training_twins(data) -> Twins:
    """The validation and test faces of ``data`` (a :class:`~fer_core.data.FERData` with a
    ``train`` split) whose pixels equal those of a training face."""
    train = data.split == "train"
    keys = pixel_keys(data.images)
    in_train: dict[str, list[int]] = {}
    for i in np.flatnonzero(train):
        in_train.setdefault(keys[i], []).append(i)
    files = data.files if data.files is not None else np.arange(len(data)).astype(str)
    targets = data.targets
    rows = []
    for i in np.flatnonzero(np.isin(data.split, ["val", "test"])):
        same = [j for j in in_train.get(keys[i], []) if np.array_equal(data.images[i], data.images[j])]
        if same:  # the twin: one with the same label if there is one
            j = next((j for j in same if targets[j] == targets[i]), same[0])
            rows.append({"split": data.split[i], "row": int(i), "file": str(files[i]), "target": int(targets[i]),
                         "twin_row": int(j), "twin_file": str(files[j]), "twin_target": int(targets[j])})
    return Twins(pd.DataFrame(rows, columns=["split", "row", "file", "target", "twin_row", "twin_file",
                                             "twin_target"]))


def scores(predictions: pd.DataFrame, twins: set[str]) -> dict:
    """Accuracy and macro F1 of a record's ``predictions`` (columns file, target, pred, and
    ``pred_tta_<mode>`` per TTA mode) on the whole split and without the faces in ``twins``; the
    labels are the record's classes seen in either column, so both scores average over the same
    classes."""
    keep = ~predictions["file"].astype(str).isin(twins)
    labels = sorted(set(predictions["target"]) | set(predictions["pred"]))

    def score(df):
        out = {"n": int(len(df)), "accuracy": float(accuracy_score(df["target"], df["pred"])),
               "macro_f1": float(f1_score(df["target"], df["pred"], labels=labels, average="macro", zero_division=0))}
        for column in [c for c in df.columns if c.startswith("pred_tta_")]:  # each TTA mode's predictions
            mode = column[len("pred_"):]
            out[f"accuracy_{mode}"] = float(accuracy_score(df["target"], df[column]))
            out[f"macro_f1_{mode}"] = float(f1_score(df["target"], df[column], labels=labels, average="macro",
                                                     zero_division=0))
        return out
    return {"method": METHOD, "full": score(predictions), "duplicate_free": score(predictions[keep]),
            "dropped": int((~keep).sum())}


def applies(data) -> bool:
    """Whether ``data`` is FER2013 read with its training split (a fixed-split real set)."""
    return data.source.startswith("fer2013") and bool((data.split == "train").any())


def for_run(data, predictions: pd.DataFrame) -> dict | None:
    """The content of a FER2013 run's ``duplicate_free.json`` (None for other data)."""
    if not applies(data):
        return None
    twins = training_twins(data)
    return {**scores(predictions, twins.files("test")), "data_fingerprint": data.fingerprint}


def read(record_dir) -> dict | None:
    """A record's ``duplicate_free.json``, or None when it has none (not FER2013, or older)."""
    path = Path(record_dir) / FILE
    return json.loads(path.read_text()) if path.is_file() else None
