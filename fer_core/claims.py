"""The papers' numeric claims (``book/claims.csv``), one row per number, with its source.

Only numbers checked against a source are in the file; a table cell not yet transcribed is
absent, and the chapters say "not transcribed" rather than show a guess.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pandas as pd

from .paths import ROOT

CLAIMS_FILE = ROOT / "book" / "claims.csv"
COLUMNS = ["paper", "reference", "model", "dataset", "split", "metric", "value", "unit", "source", "note"]
PAPERS = {
    "pham": "Pham et al., Facial Expression Recognition Using Residual Masking Network (ICPR 2020)",
    "shen_li": "Shen & Li, Facial Expression Recognition Method Based on Residual Masking Reconstruction Network (JIPS)",
    "du": "Du, Facial emotion recognition based on improved ResNet (ACE vol. 21, 2023)",
    "yu": "Yu, an Xception-style network of residual depthwise-separable blocks with ReLU6",
    "qin": "Qin, spatial transformer + super-resolution + classifier",
}


def read_claims(path: str | Path = CLAIMS_FILE) -> pd.DataFrame:
    """All claims, validated: the columns, known papers, and a number in every ``value``."""
    path = Path(path)
    return _read(path, path.stat().st_mtime_ns)


@lru_cache(maxsize=4)
def _read(path: Path, _mtime: int) -> pd.DataFrame:
    df = pd.read_csv(path, dtype={"value": str}, keep_default_na=False)
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{path} lacks column(s) {missing}; the columns are {COLUMNS}.")
    for i, row in df.iterrows():
        where = f"{path}, line {i + 2}"
        if row["paper"] not in PAPERS:
            raise ValueError(f"{where}: unknown paper {row['paper']!r}; known: {sorted(PAPERS)}.")
        try:
            float(row["value"])
        except ValueError:
            raise ValueError(f"{where}: value {row['value']!r} is not a number.") from None
        if not row["source"].strip():
            raise ValueError(f"{where}: every claim needs its source.")
    df["value"] = df["value"].astype(float)
    return df


def claim(paper: str, model: str, metric: str = "accuracy", dataset: str | None = None) -> float | None:
    """The paper's value for ``model`` and ``metric`` (None when not transcribed)."""
    df = read_claims()
    hit = df[(df.paper == paper) & (df.model == model) & (df.metric == metric)]
    if dataset is not None:
        hit = hit[hit.dataset == dataset]
    if len(hit) > 1:
        raise ValueError(f"{len(hit)} claims match {paper}/{model}/{metric}/{dataset}; name the dataset.")
    return float(hit["value"].iloc[0]) if len(hit) else None
