"""Readers for the real sources: FER2013 (image folders or the original CSV) and CK+48.

Each reader returns a dict of arrays (images, labels, split, subject, files); ``load`` in
``fer_core.data`` wraps it with the cache and builds the :class:`FERData`.
"""
from __future__ import annotations

import os
import re
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from .errors import WHERE_TO_GET, DataError
from .labels import ALIASES, label_of_folder

SIZE = 48
_JUNK = {"thumbs.db", "desktop.ini"}
FER_PREFIX = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}
FER_USAGE = FER_PREFIX  # the CSV's Usage column has the same three values
CK_NAME = re.compile(r"^S(\d+)_(\d+)_(\d+)\.\w+$")


def listing(root: Path) -> list[tuple[str, int, int]]:
    """(relative path, size, mtime) of every data file below ``root``: the cache key's input."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        rel = os.path.relpath(dirpath, root)  # once a folder: per file it cost seconds on FER2013's 35,887
        for name in sorted(filenames):
            if name.startswith(".") or name.lower() in _JUNK:
                continue
            st = os.stat(os.path.join(dirpath, name))
            out.append((name if rel == "." else os.path.join(rel, name), st.st_size, st.st_mtime_ns))
    return out


def _decode(path: Path, strict_size: bool) -> tuple[np.ndarray, bool]:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            if im.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16-bit grey: Pillow's convert("L") would clip it
                wide = np.asarray(im, dtype=np.int64)
                if wide.min() < 0 or wide.max() > 65535:
                    raise DataError(f"{path} is a {im.mode} image with values outside 0-65535: save the face as an "
                                    f"8-bit grey PNG or JPEG.")
                im = Image.fromarray((wide >> 8).astype(np.uint8) if wide.max() > 255 else wide.astype(np.uint8))
            im = im.convert("L")
            resized = im.size != (SIZE, SIZE)
            if resized:
                if strict_size:
                    raise DataError(f"{path} is {im.size[0]}x{im.size[1]}, not {SIZE}x{SIZE}. "
                                    f"Pass strict_size=False (data.strict_size: false) to resize such images "
                                    f"with a warning, or crop the set to {SIZE}x{SIZE} faces first.")
                im = im.resize((SIZE, SIZE), Image.BILINEAR)
            return np.asarray(im, dtype=np.uint8), resized
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise DataError(f"Cannot read image {path}: {e}. Remove or replace the file "
                        f"(it may be truncated or not an image).") from None


def decode_images(root: Path, rel_paths: list[str], strict_size: bool) -> np.ndarray:
    """Decode greyscale images in parallel; images not 48x48 are resized with one warning."""
    if not rel_paths:
        return np.zeros((0, SIZE, SIZE), np.uint8)
    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 1) * 2)) as pool:
        results = list(pool.map(lambda p: _decode(root / p, strict_size), rel_paths, chunksize=256))
    resized = [p for p, (_, r) in zip(rel_paths, results) if r]
    if resized:
        warnings.warn(f"{len(resized)} image(s) under {root} were not {SIZE}x{SIZE} and were resized "
                      f"(first: {resized[:3]}). Set data.strict_size: true to reject them instead.",
                      stacklevel=3)
    return np.stack([img for img, _ in results])


def _class_dirs(split_dir: Path, known: dict[str, int]) -> list[tuple[Path, int]]:
    out = []
    for d in sorted(p for p in split_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        label = label_of_folder(d.name)
        if label is None or label not in known.values():
            raise DataError(f"Unknown class folder {d}: expected folder names "
                            f"{sorted(k for k, v in ALIASES.items() if v in known.values())}. "
                            f"Rename it or move it out of the data directory.")
        out.append((d, label))
    if not out:
        raise DataError(f"No class folders in {split_dir}. " + WHERE_TO_GET["fer2013" if "train" in
                                                                          str(split_dir) else "ckplus"])
    return out


def _files(d: Path) -> list[str]:
    return sorted(n for n in os.listdir(d) if not n.startswith(".") and n.lower() not in _JUNK
                  and (d / n).is_file())


def read_fer2013_folders(root: Path, strict_size: bool = False) -> dict[str, np.ndarray]:
    """FER2013's image-folder release: ``train/<class>/Training_*.jpg``, ``test/<class>/PublicTest_*``
    and ``PrivateTest_*``; the file-name prefix restores the challenge's Usage split."""
    fer_classes = {k: v for k, v in ALIASES.items() if v < 7}
    rel, labels, split = [], [], []
    for part in ("train", "test"):
        part_dir = root / part
        if not part_dir.is_dir():
            raise DataError(f"{root} has no {part}/ folder. " + WHERE_TO_GET["fer2013"])
        for d, label in _class_dirs(part_dir, fer_classes):
            for name in _files(d):
                prefix = name.split("_", 1)[0]
                if prefix not in FER_PREFIX:
                    raise DataError(f"{d / name}: file name does not start with Training_, PublicTest_ or "
                                    f"PrivateTest_, so its FER2013 split is unknown. Keep the release's "
                                    f"original file names.")
                rel.append(f"{part}/{d.name}/{name}")
                labels.append(label)
                split.append(FER_PREFIX[prefix])
    images = decode_images(root, rel, strict_size)
    return {"images": images, "labels": np.array(labels, np.int64), "split": np.array(split),
            "files": np.array(rel)}


def read_fer2013_csv(path: Path) -> dict[str, np.ndarray]:
    """FER2013's original challenge CSV: ``emotion,pixels,Usage`` with 2304 space-separated
    grey levels per row; Training -> train, PublicTest -> val, PrivateTest -> test."""
    import pandas as pd

    try:
        df = pd.read_csv(path, dtype={"emotion": str, "pixels": str, "Usage": str}, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        raise DataError(f"{path} is not a readable CSV file: {e}") from None
    df.columns = [c.strip() for c in df.columns]
    missing = [c for c in ("emotion", "pixels", "Usage") if c not in df.columns]
    if missing:
        raise DataError(f"{path} lacks column(s) {missing} (found {list(df.columns)}). FER2013's original "
                        f"fer2013.csv has emotion,pixels,Usage; Kaggle's test-only files have no labels.")
    if df.empty:
        raise DataError(f"{path} has a header but no rows.")
    images = np.empty((len(df), SIZE, SIZE), np.uint8)
    for i, (pixels, emotion, usage) in enumerate(zip(df["pixels"], df["emotion"], df["Usage"])):
        row = f"{path}, row {i + 1} (line {i + 2})"
        try:
            values = np.array(str(pixels).split(), dtype=np.int64)
        except ValueError:
            raise DataError(f"{row}: the pixels field is not space-separated integers.") from None
        if values.size != SIZE * SIZE or values.min() < 0 or values.max() > 255:
            raise DataError(f"{row}: the pixels field has {values.size} values in "
                            f"[{values.min() if values.size else '-'}, {values.max() if values.size else '-'}]; "
                            f"expected {SIZE * SIZE} grey levels in 0-255.")
        images[i] = values.reshape(SIZE, SIZE)
        if str(usage).strip() not in FER_USAGE:
            raise DataError(f"{row}: Usage is {usage!r}; expected Training, PublicTest or PrivateTest.")
        emotion = str(emotion).strip()
        if not emotion:
            raise DataError(f"{row}: emotion is blank; expected an integer 0-6 (fill it in or remove the row).")
        if not (emotion.isascii() and emotion.isdigit() and 0 <= int(emotion) <= 6):
            raise DataError(f"{row}: emotion is {emotion}; expected an integer 0-6.")
    return {"images": images, "labels": df["emotion"].astype(np.int64).to_numpy(),
            "split": df["Usage"].str.strip().map(FER_USAGE).to_numpy().astype(str),
            "files": np.array([f"{path.name}:{i + 1}" for i in range(len(df))])}


#: FER+'s vote columns (microsoft/FERPlus fer2013new.csv), in its order, as canonical ids; then
#: its two non-emotion columns, whose faces its reader drops
FERPLUS_EMOTIONS = {"neutral": 6, "happiness": 3, "surprise": 5, "sadness": 4, "anger": 0, "disgust": 1, "fear": 2,
                    "contempt": 7}
FERPLUS_DROPPED = ("unknown", "NF")


def ferplus_majority(votes: np.ndarray) -> int | None:
    """FER+'s majority rule (microsoft/FERPlus src/ferplus.py, mode 'majority'): single votes are
    dropped as outliers, and the face keeps the emotion holding more than half of the votes left
    (index into the ten columns), or None (unknown) when none does."""
    v = np.where(np.asarray(votes, float) <= 1.0, 0.0, np.asarray(votes, float))
    total = v.sum()
    if total <= 0 or v.max() <= 0.5 * total:
        return None
    return int(np.argmax(v))


def read_ferplus(new_csv: Path) -> dict[str, np.ndarray]:
    """FER2013's faces with FER+'s labels: ``fer2013new.csv`` (Usage, Image name, ten vote columns,
    one row per row of ``fer2013.csv``) beside the original ``fer2013.csv``. Eight classes by the
    majority rule (:func:`ferplus_majority`); faces FER+ names no file for (not faces, removed by
    its authors), whose majority is unknown or not-a-face, or with no majority are dropped."""
    import pandas as pd

    base = read_fer2013_csv(new_csv.with_name("fer2013.csv"))
    try:
        votes = pd.read_csv(new_csv, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        raise DataError(f"{new_csv} is not a readable CSV file: {e}") from None
    votes.columns = [c.strip() for c in votes.columns]
    columns = [*FERPLUS_EMOTIONS, *FERPLUS_DROPPED]
    missing = [c for c in ("Usage", "Image name", *columns) if c not in votes.columns]
    if missing:
        raise DataError(f"{new_csv} lacks column(s) {missing}: FER+'s fer2013new.csv has Usage, Image name, "
                        f"{', '.join(columns)} (github.com/microsoft/FERPlus).")
    if len(votes) != len(base["labels"]):
        raise DataError(f"{new_csv} has {len(votes)} rows and fer2013.csv {len(base['labels'])}: FER+'s file has "
                        f"one row per row of the original CSV; use the two files as published.")
    try:
        counts = votes[columns].apply(pd.to_numeric).to_numpy(float)
    except ValueError as e:
        raise DataError(f"{new_csv}: a vote column is not a number ({e}).") from None
    ids = list(FERPLUS_EMOTIONS.values())
    labels = np.full(len(votes), -1, np.int64)
    for i, (name, row) in enumerate(zip(votes["Image name"].astype(str).str.strip(), counts)):
        winner = ferplus_majority(row) if name else None
        if winner is not None and winner < len(ids):
            labels[i] = ids[winner]
    keep = labels >= 0
    return {"images": base["images"][keep], "labels": labels[keep], "split": base["split"][keep],
            "files": base["files"][keep]}


def read_ckplus(root: Path, strict_size: bool = False) -> dict[str, np.ndarray]:
    """CK+48: ``<class>/S<subject>_<sequence>_<frame>.png``; the subject id comes from the name."""
    rel, labels, subject, seen = [], [], [], {}
    for d, label in _class_dirs(root, ALIASES):
        if not _files(d):
            raise DataError(f"Class folder {d} is empty: every number would rest on another class set than CK+'s. "
                            f"Put its images back, or move the empty folder out of the data directory.")
        for name in _files(d):
            m = CK_NAME.match(name)
            if not m:
                raise DataError(f"{d / name}: expected a CK+ name S<subject>_<sequence>_<frame>.png; "
                                f"the subject id is needed for subject-independent folds.")
            if name in seen:  # one frame under two classes: its label is unknown, and it would sit in two folds
                raise DataError(f"{d / name} is also under {seen[name]}/: one CK+ frame has one label. Remove it "
                                f"from the folder of the wrong class.")
            seen[name] = d.name
            rel.append(f"{d.name}/{name}")
            labels.append(label)
            subject.append(f"S{int(m.group(1)):03d}")
    images = decode_images(root, rel, strict_size)
    return {"images": images, "labels": np.array(labels, np.int64), "split": np.full(len(rel), "cv"),
            "subject": np.array(subject), "files": np.array(rel)}
