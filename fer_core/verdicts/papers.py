"""The papers the book holds, named in one place: the head of each plan (``params/papers/<p>.yaml``:
``title``, ``text``, ``chapter``). The claims' list of papers, the chapters' file names, the short
names of the texts in the sources and the book's table of contents are derived from these heads,
so a new paper is its plan, its claims and its chapter, and nothing else.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from ..paths import ROOT

PLANS = ROOT / "params" / "papers"


@dataclass(frozen=True)
class Paper:
    key: str       # the plan's ``paper``: its name in claims.csv, run folders and commands
    title: str     # the citation the book prints
    text: str      # the full text's file under ../shared/papers/ (sources cite it as <key>.txt:<line>)
    chapter: str   # the chapter notebook's stem, NN_name

    @property
    def short(self) -> str:
        """Authors, as tables print them ("Pham et al.")."""
        return self.title.split(",")[0]


def read_head(path: Path) -> Paper | None:
    """A plan's head, or None for a plan of no paper (the CPU chapter's: no text, no claims)."""
    raw = yaml.safe_load(path.read_text()) or {}
    if not raw.get("text"):
        return None
    missing = [k for k in ("paper", "title", "chapter") if not raw.get(k)]
    if missing:
        raise ValueError(f"{path}: a paper's plan names its {', '.join(missing)} beside its text (see README, "
                         f"'Adding a paper').")
    return Paper(raw["paper"], raw["title"], raw["text"], raw["chapter"])


@lru_cache(maxsize=4)
def _all(folder: Path) -> tuple[Paper, ...]:
    found = [p for p in map(read_head, sorted(folder.glob("*.yaml"))) if p is not None]
    return tuple(sorted(found, key=lambda p: p.chapter))


def all_papers(folder: str | Path | None = None) -> tuple[Paper, ...]:
    """Every paper with a plan, in the order of its chapter."""
    return _all(Path(folder) if folder is not None else PLANS)


def forget() -> None:
    """Read the plans' heads again on the next call (after a plan was written in this process)."""
    _all.cache_clear()
