"""The papers' claims (``book/claims.csv``): every number of their tables, one row each, with the
line it comes from.

Columns:

- ``paper``, ``table`` (where in the paper), ``label`` (the paper's own name for the row);
- ``row``: the plan row whose runs measure it (``variant`` of ``params/papers/<paper>.yaml``, or
  ``<plan>:<variant>`` for a row another paper's chapter runs); empty when this book runs nothing
  for it (a private data set, an ensemble, a method of the literature);
- ``versus``: for a relative claim, the row(s) it is compared with (``;``-separated); empty for an
  absolute one;
- ``dataset``, ``split``;
- ``metric``: what of ours measures it: a ledger column (``accuracy``, ``macro_f1``,
  ``accuracy_tta_random_views``, ``auc_min``, ``parameters_m``, ...), ``last:<history column>`` /
  ``first:<history column>`` (that column of the run's history at its last or first epoch), or
  ``metrics:<dotted path>`` into the run's ``metrics.json``, ``selected:<history column>`` (at the
  epoch the run selected on validation), or ``model:parameters_m`` (counted from the registered
  architecture, no run needed);
- ``relation``: ``=`` (the paper reports this value), ``>`` or ``<`` (a bound or an ordering);
- ``value``, ``unit`` (``%`` and ``points`` are percentages of ours' fractions);
- ``source``: ``<paper file>:<line>`` in ``../shared/papers/``, or the authors' repository file;
- ``quote``: the text on that line that carries the number, verbatim (the tests check it);
- ``not_comparable``: why the paper's number is on data, classes or a protocol the book's runs do
  not share (the claim's verdict is then *not comparable*); empty when they share them;
- ``note``: how the claim is read.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pandas as pd

from ..paths import ROOT
from .papers import all_papers

CLAIMS_FILE = ROOT / "book" / "claims.csv"
COLUMNS = ["paper", "table", "label", "row", "versus", "dataset", "split", "metric", "relation", "value", "unit",
           "source", "quote", "not_comparable", "note"]
RELATIONS = ("=", ">", "<")
#: paper -> its citation, in the order of the chapters: from the plans' heads (fer_core.verdicts.papers)
PAPERS = {p.key: p.title for p in all_papers()}


def read_claims(path: str | Path = CLAIMS_FILE) -> pd.DataFrame:
    """All claims, validated: the columns, known papers and relations, a number in every ``value``,
    a source and a quote in every row."""
    path = Path(path)
    return _read(path, path.stat().st_mtime_ns).copy()


@lru_cache(maxsize=4)
def _read(path: Path, _mtime: int) -> pd.DataFrame:
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{path} lacks column(s) {missing}; the columns are {COLUMNS}.")
    for i, row in df.iterrows():
        where = f"{path}, line {i + 2}"
        if row["paper"] not in PAPERS:
            raise ValueError(f"{where}: unknown paper {row['paper']!r}; known: {sorted(PAPERS)}.")
        if row["relation"] not in RELATIONS:
            raise ValueError(f"{where}: relation {row['relation']!r} is not one of {list(RELATIONS)}.")
        try:
            float(row["value"])
        except ValueError:
            raise ValueError(f"{where}: value {row['value']!r} is not a number.") from None
        for col in ("source", "quote", "metric"):
            if not row[col].strip():
                raise ValueError(f"{where}: every claim needs its {col}.")
    df["value_text"] = df["value"]  # as written in the paper, trailing zeros kept
    df["value"] = df["value"].astype(float)
    return df


def claims_of(paper: str, path: str | Path = CLAIMS_FILE) -> pd.DataFrame:
    """The claims of one paper, in file order (none for a plan of this book's own, such as ``cpu``)."""
    df = read_claims(path)
    return df[df["paper"] == paper].reset_index(drop=True)


SHORT_SOURCES = {**{p.text: f"{p.key}.txt" for p in all_papers()},
                 "phamquiluan/ResidualMaskingNetwork@9141618:": "repo:"}


def short_source(source: str) -> str:
    """A source with the papers' file names shortened as the plans write them (``pham.txt:47``,
    ``repo:README.md:96`` for the authors' repository at the commit read)."""
    for long, short in SHORT_SOURCES.items():
        source = source.replace(long, short)
    return source


def row_ref(paper: str, ref: str) -> tuple[str, str]:
    """``(plan, variant)`` of a claims ``row`` / ``versus`` entry: ``vgg19`` in Pham's claims is
    ``("pham", "vgg19")``; ``pham:vgg19`` in Shen & Li's claims too."""
    plan, _, variant = ref.rpartition(":")
    return plan or paper, variant
