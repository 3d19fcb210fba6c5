"""Data: one API for FER2013 (folders or CSV), CK+48 and the embedded synthetic set.

>>> data = load("synthetic")                       # no download: procedurally drawn faces
>>> data = load("fer2013", data_dir="../shared/data")
>>> data = load("synthetic", cv=True).with_fold(0)  # the synthetic set standing in for CK+
>>> train = data.select("train"); x, y = train.images, train.targets

Real data is found from ``data_dir`` or the ``FER_DATA_DIR`` environment variable. Decoded
arrays are cached under ``FER_CACHE_DIR`` (default ``~/.cache/fer_core``), keyed by the names,
sizes and modification times of the source files, so a second load takes about a second.
"""
from __future__ import annotations

import hashlib
import json
import os
import warnings
import zipfile
from functools import lru_cache
from pathlib import Path

import numpy as np

from .digits import DIGIT_NAMES, DIGITS_NOTE, make_digits
from .dataset import SPLITS, FERData, fingerprint_arrays, subject_folds
from .errors import WHERE_TO_GET, DataError
from .labels import CKPLUS_CLASSES, EMOTIONS, FER2013_CLASSES
from .readers import listing, read_ckplus, read_fer2013_csv, read_fer2013_folders, read_ferplus
from .synthetic import SYNTHETIC_NOTE, make_synthetic

__all__ = ["SOURCES", "BUNDLED", "SPLITS", "EMOTIONS", "SYNTHETIC_NOTE", "DataError", "FERData", "load",
           "fingerprint_of", "resolve", "subject_folds"]

SOURCES = ("auto", "synthetic", "fer2013", "fer2013-csv", "ferplus", "ckplus", "digits")
#: Sources that ship with the project (no download, no data directory).
BUNDLED = ("synthetic", "digits")
_READER_VERSION = 1  # bump when a reader's output changes, to invalidate caches


def _data_dir(data_dir: str | os.PathLike | None) -> Path | None:
    given = data_dir if data_dir not in (None, "") else os.environ.get("FER_DATA_DIR") or None
    return Path(given).expanduser() if given else None


def resolve(source: str, data_dir: str | os.PathLike | None = None) -> tuple[str, Path | None]:
    """Which source is read from where: ``(source, path)``. ``auto`` is FER2013 when a data
    directory is given (or ``FER_DATA_DIR`` is set), else the synthetic set."""
    if source not in SOURCES:
        raise DataError(f"Unknown data source {source!r}; choose one of {list(SOURCES)}.")
    base = _data_dir(data_dir)
    if source in BUNDLED:
        return source, None
    if source == "auto":
        if base is None:
            return "synthetic", None
        for candidate in ("fer2013", "fer2013-csv"):
            try:
                return resolve(candidate, base)
            except DataError:
                continue
        raise DataError(f"data.source=auto found no FER2013 in {base}: it looks for the image folders train/ and "
                        f"test/ ({_folders_status(base)}) and for the CSV fer2013.csv (in {base} or "
                        f"{base / 'fer2013'}: not found). " + WHERE_TO_GET["fer2013"])
    key = "ckplus" if source == "ckplus" else "fer2013"
    if base is None:
        raise DataError(f"No data directory for {source}: pass data_dir (data.dir in params) or set "
                        f"FER_DATA_DIR. " + WHERE_TO_GET[key])
    if not base.exists():
        raise DataError(f"Data directory {base} does not exist. " + WHERE_TO_GET[key])
    if source == "fer2013":
        for cand in (base, base / "fer2013"):
            if (cand / "train").is_dir() and (cand / "test").is_dir():
                return source, cand
        raise DataError(f"No FER2013 image folders (train/ and test/) in {base} or {base / 'fer2013'}. "
                        + WHERE_TO_GET[key])
    if source == "fer2013-csv":
        cands = [base] if base.is_file() else [base / "fer2013.csv", base / "fer2013" / "fer2013.csv"]
        for cand in cands:
            if cand.is_file():
                return source, cand
        raise DataError(f"No FER2013 CSV at {', '.join(map(str, cands))}. " + WHERE_TO_GET[key])
    if source == "ferplus":
        cands = [base / "fer2013new.csv", base / "fer2013" / "fer2013new.csv"]
        for cand in cands:
            if cand.is_file() and cand.with_name("fer2013.csv").is_file():
                return source, cand
        raise DataError(f"data.source=ferplus needs FER+'s fer2013new.csv beside FER2013's fer2013.csv, in {base} or "
                        f"{base / 'fer2013'} (not found): fer2013new.csv is in github.com/microsoft/FERPlus; "
                        + WHERE_TO_GET[key])
    for cand in (base, base / "CK+48", base / "ckplus" / "CK+48", base / "ckplus"):
        if cand.is_dir() and any((cand / n).is_dir() for n in ("anger", "contempt", "happy", "surprise")):
            return source, cand
    raise DataError(f"No CK+48 class folders in {base} (looked in ., CK+48/, ckplus/CK+48/). "
                    + WHERE_TO_GET[key])


def _folders_status(base: Path) -> str:
    """What of FER2013's image-folder layout is there: ``train/ found, test/ missing in <dir>``."""
    for cand in (base, base / "fer2013"):
        found = [d for d in ("train", "test") if (cand / d).is_dir()]
        if found:
            return ", ".join(f"{d}/ {'found' if d in found else 'missing'}" for d in ("train", "test")) + f" in {cand}"
    return f"neither in {base} nor in {base / 'fer2013'}"


def cache_dir() -> Path:
    return Path(os.environ.get("FER_CACHE_DIR") or Path.home() / ".cache" / "fer_core")


def _cache_key(source: str, path: Path, strict_size: bool) -> str:
    paths = [path, path.with_name("fer2013.csv")] if source == "ferplus" else [path]
    files = [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in paths] if path.is_file() else listing(path)
    if not files:
        raise DataError(f"{path} holds no files. " + WHERE_TO_GET["ckplus" if source == "ckplus" else "fer2013"])
    blob = json.dumps([_READER_VERSION, source, str(path.resolve()), strict_size, files])
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def _read_cached(source: str, path: Path, strict_size: bool, use_cache: bool) -> dict[str, np.ndarray]:
    key = _cache_key(source, path, strict_size)
    file = cache_dir() / f"{source}-{key}.npz"
    if use_cache and file.is_file():
        try:
            with np.load(file, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile):
            pass  # a broken (truncated) cache file is rebuilt below
    if source == "fer2013":
        arrays = read_fer2013_folders(path, strict_size)
    elif source == "fer2013-csv":
        arrays = read_fer2013_csv(path)
    elif source == "ferplus":
        arrays = read_ferplus(path)
    else:
        arrays = read_ckplus(path, strict_size)
    arrays["fingerprint"] = np.array(fingerprint_arrays(arrays["images"], arrays["labels"], arrays["split"]))
    if use_cache:
        tmp = file.with_suffix(f".{os.getpid()}.tmp.npz")
        try:
            file.parent.mkdir(parents=True, exist_ok=True)
            np.savez(tmp, **arrays)
            os.replace(tmp, file)  # atomic: a concurrent reader never sees half a file
        except OSError as e:  # a read-only or full cache disk costs the next load its speed, nothing else
            tmp.unlink(missing_ok=True)
            warnings.warn(f"the decoded data could not be cached in {file.parent} ({e.strerror or e}); it is read "
                          f"from {path} again next time (set FER_CACHE_DIR to a writable folder)", stacklevel=3)
    return arrays


def fingerprint_of(source: str, data_dir: str | os.PathLike | None = None, strict_size: bool = False) -> str | None:
    """The content fingerprint of the data a source reads from ``data_dir`` (what a run's identity
    names instead of the folder's spelling); None for the embedded sets, which have no folder."""
    source, path = resolve(source, data_dir)
    if path is None:
        return None
    return _fingerprint_cached(source, str(path.resolve()), strict_size)


@lru_cache(maxsize=16)
def _fingerprint_cached(source: str, path: str, strict_size: bool) -> str:
    return str(_read_cached(source, Path(path), strict_size, use_cache=True)["fingerprint"])


def load(
    source: str = "auto",
    data_dir: str | os.PathLike | None = None,
    *,
    n_folds: int = 10,
    fold_seed: int = 0,
    cv: bool | None = None,
    with_contempt: bool = True,
    strict_size: bool = False,
    use_cache: bool = True,
    synthetic_size: tuple[int, int, int] = (3500, 700, 700),
    synthetic_seed: int = 0,
) -> FERData:
    """Load one source into a :class:`FERData`.

    - ``fer2013`` / ``fer2013-csv``: splits train / val (PublicTest) / test (PrivateTest).
    - ``ferplus``: the CSV's faces with FER+'s eight majority labels (``fer2013new.csv`` beside
      ``fer2013.csv``), the same splits.
    - ``ckplus``: split ``cv`` plus a subject-independent ``fold`` per image (``n_folds``);
      ``with_contempt=False`` drops contempt for a 6-class experiment.
    - ``synthetic``: ``synthetic_size`` = (train, val, test) images, deterministic in the seed.
    - ``digits``: the distorted scikit-learn digits of the STN check (10 classes, not faces).

    ``cv``: subject-independent ``n_folds``-fold cross-validation (split ``cv`` and a ``fold`` per
    image). None means: CK+ only, which has no fixed splits. ``cv=True`` on the synthetic set pools
    its splits into folds by subject, so that a CK+ chapter runs without data.
    """
    source, path = resolve(source, data_dir)
    if cv and source in ("fer2013", "fer2013-csv", "ferplus", "digits"):
        raise DataError(f"data.cv=true: {source} has no subject ids to split folds by; it is used with its "
                        f"fixed train/val/test splits (set data.cv to null or false).")
    if cv is False and source == "ckplus":
        raise DataError("data.cv=false: CK+ has no fixed train/val/test splits; it is always cross-validated "
                        "by subject (set data.cv to null or true, and data.fold to the test fold).")
    if source == "synthetic":
        a = make_synthetic(*synthetic_size, seed=synthetic_seed)
        data = FERData(images=a["images"], labels=a["labels"], split=a["split"], source=source,
                       classes=FER2013_CLASSES, subject=a["subject"], mask=a["mask"],
                       fingerprint="synthetic-" + fingerprint_arrays(a["images"], a["labels"], a["split"]),
                       notes=(SYNTHETIC_NOTE,))
        return data.as_folds(n_folds, fold_seed) if cv else data
    if source == "digits":
        a = make_digits(seed=synthetic_seed)
        return FERData(images=a["images"], labels=a["labels"], split=a["split"], source=source,
                       classes=tuple(range(10)), names=DIGIT_NAMES, notes=(DIGITS_NOTE,),
                       fingerprint="digits-" + fingerprint_arrays(a["images"], a["labels"], a["split"]))
    a = _read_cached(source, path, strict_size, use_cache)
    for s in (("train", "val", "test") if source != "ckplus" else ("cv",)):
        if not (a["split"] == s).any():
            raise DataError(f"The {s!r} split of {path} is empty: check that the files of every split are there.")
    kw = dict(images=a["images"], labels=a["labels"], split=a["split"], source=source,
              fingerprint=str(a["fingerprint"]), files=a["files"], location=str(path.resolve()))
    if source == "ckplus":
        data = FERData(classes=CKPLUS_CLASSES, subject=a["subject"],
                       fold=subject_folds(a["labels"], a["subject"], n_folds, fold_seed), **kw)
        if not with_contempt:
            data = data.with_classes(tuple(c for c in CKPLUS_CLASSES if c != 7))
        return data
    if source == "ferplus":  # FER+'s eight classes: FER2013's seven and contempt
        return FERData(classes=FER2013_CLASSES + (7,), **kw)
    return FERData(classes=FER2013_CLASSES, **kw)
