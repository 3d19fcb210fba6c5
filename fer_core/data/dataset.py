"""``FERData``: the one in-memory form every source is read into."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

from .errors import DataError
from .labels import EMOTIONS
from .synthetic import SYNTHETIC_NOTE

SPLITS = ("train", "val", "test")


def fingerprint_arrays(*arrays: np.ndarray) -> str:
    """Content hash of decoded data: the same images, labels and splits give the same id."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str((a.dtype.str, a.shape)).encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


@dataclass(frozen=True)
class FERData:
    """Images (uint8 N x 48 x 48), canonical labels, split, and subject ids of one source.

    ``classes`` is the label space of the experiment, as canonical ids in order (FER2013: 0-6,
    CK+: 0-5 and 7 contempt); ``targets`` are the labels renumbered 0..C-1 in that order, what
    a model's output indexes. CK+ rows carry a subject-independent ``fold`` and the split
    ``cv`` until :meth:`with_fold` turns one fold into the test split. ``names`` names the label
    ids: the emotions, except for a sanity set such as the digits of the STN check.
    """

    images: np.ndarray
    labels: np.ndarray
    split: np.ndarray
    source: str
    classes: tuple[int, ...]
    fingerprint: str
    subject: np.ndarray | None = None
    fold: np.ndarray | None = None
    mask: np.ndarray | None = None
    files: np.ndarray | None = None
    location: str | None = None
    notes: tuple[str, ...] = field(default=())
    names: tuple[str, ...] = EMOTIONS

    # -- label space ---------------------------------------------------------------------
    @property
    def class_names(self) -> list[str]:
        return [self.names[c] for c in self.classes]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def targets(self) -> np.ndarray:
        lut = np.full(len(self.names), -1, dtype=np.int64)
        lut[list(self.classes)] = np.arange(len(self.classes))
        return lut[self.labels]

    @property
    def synthetic(self) -> bool:
        return self.source == "synthetic"

    @property
    def note(self) -> str:
        """The line every output made from this data carries ('' for real data)."""
        return "; ".join(self.notes) or (SYNTHETIC_NOTE if self.synthetic else "")

    def __len__(self) -> int:
        return len(self.labels)

    # -- selection -----------------------------------------------------------------------
    def take(self, index: np.ndarray) -> "FERData":
        """Rows ``index`` (bool mask or integer index) as a new FERData with the same fingerprint."""
        def pick(a):
            return None if a is None else a[index]
        return replace(self, images=self.images[index], labels=self.labels[index], split=self.split[index],
                       subject=pick(self.subject), fold=pick(self.fold), mask=pick(self.mask),
                       files=pick(self.files))

    def select(self, split: str) -> "FERData":
        part = self.take(self.split == split)
        if len(part) == 0:
            present = sorted(set(self.split.tolist()))
            hint = " (CK+ is split by fold: call with_fold(k) or set data.fold)" if "cv" in present else ""
            raise DataError(f"The {split!r} split of {self.source} ({self.location or 'generated'}) is empty; "
                            f"splits present: {present}{hint}.")
        return part

    def with_classes(self, classes: tuple[int, ...]) -> "FERData":
        """Keep only rows whose label is in ``classes`` and make that the label space."""
        unknown = [c for c in classes if not 0 <= c < len(self.names)]
        if unknown:
            raise DataError(f"Unknown class ids {unknown}; ids are 0-{len(self.names) - 1} in the order "
                            f"{list(self.names)}.")
        return replace(self.take(np.isin(self.labels, classes)), classes=tuple(classes))

    def as_folds(self, n_folds: int = 10, seed: int = 0) -> "FERData":
        """Pool every split and assign subject-independent folds (split ``cv``), as CK+ is read:
        lets the synthetic set stand in for CK+ in a cross-validated chapter."""
        if self.subject is None:
            raise DataError(f"{self.source} has no subject ids, so it cannot be split into subject-independent "
                            f"folds; use its fixed train/val/test splits (data.cv=false).")
        return replace(self, split=np.full(len(self), "cv"),
                       fold=subject_folds(self.labels, self.subject, n_folds, seed))

    def with_fold(self, k: int) -> "FERData":
        """Cross-validation fold ``k``: that fold is the test split, the next one the
        validation split (used for early stopping and checkpoint selection), the rest train."""
        if self.fold is None:
            raise DataError(f"{self.source} has no cross-validation folds; folds exist for CK+ only.")
        n = int(self.fold.max()) + 1
        if not 0 <= k < n:
            raise DataError(f"data.fold={k} is out of range: {self.source} has folds 0..{n - 1}.")
        split = np.where(self.fold == k, "test", np.where(self.fold == (k + 1) % n, "val", "train"))
        return replace(self, split=split)

    def subsample(self, per_split: dict[str, int] | None, seed: int = 0) -> "FERData":
        """At most ``per_split[s]`` rows of each split, stratified by class (for quick profiles)."""
        if not per_split:
            return self
        rng = np.random.default_rng(seed)
        keep = np.ones(len(self), dtype=bool)
        for split, n in per_split.items():
            rows = np.flatnonzero(self.split == split)
            if n is None or n >= len(rows):
                continue
            # stratified: each class keeps its share, rounded, at least one row where it exists
            chosen = []
            labels = self.labels[rows]
            for c in np.unique(labels):
                cls_rows = rows[labels == c]
                k = max(1, int(round(n * len(cls_rows) / len(rows))))
                chosen.append(rng.choice(cls_rows, size=min(k, len(cls_rows)), replace=False))
            keep[rows] = False
            keep[np.concatenate(chosen)] = True
        return self.take(keep)

    # -- reporting -----------------------------------------------------------------------
    def summary(self) -> dict:
        """Split sizes and per-class counts, as the ``data --json`` command prints them."""
        out: dict = {"source": self.source, "location": self.location, "fingerprint": self.fingerprint,
                     "classes": self.class_names, "total": int(len(self))}
        if self.note:
            out["note"] = self.note
        splits = [s for s in (*SPLITS, "cv") if (self.split == s).any()]
        out["splits"] = {}
        for s in splits:
            lab = self.labels[self.split == s]
            out["splits"][s] = {"total": int(len(lab)),
                                "per_class": {self.names[c]: int((lab == c).sum()) for c in self.classes}}
        if self.subject is not None:
            out["subjects"] = int(len(np.unique(self.subject)))
        if self.fold is not None:
            out["folds"] = {str(k): int((self.fold == k).sum()) for k in range(int(self.fold.max()) + 1)}
        return out


def subject_folds(labels: np.ndarray, subject: np.ndarray, n_folds: int = 10, seed: int = 0) -> np.ndarray:
    """Deterministic subject-independent k-fold assignment, balanced by class where possible
    (scikit-learn's StratifiedGroupKFold): no subject ever appears in two folds."""
    n_subjects = len(np.unique(subject))
    if n_folds < 2 or n_folds > n_subjects:
        raise DataError(f"data.n_folds={n_folds} must be between 2 and the number of subjects ({n_subjects}).")
    fold = np.empty(len(labels), dtype=np.int64)
    splitter = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    for k, (_, test) in enumerate(splitter.split(np.zeros(len(labels)), labels, groups=subject)):
        fold[test] = k
    return fold
