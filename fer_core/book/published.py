"""Which runs the book shows.

A chapter shows **published** numbers: the paper-profile run records committed under
``results/`` (the valid records found there: :func:`fer_core.runs.ledger.scan`), made by a chapter,
``python -m fer_core run`` or a queue. On a machine that cannot make them, the chapter also runs its
CPU profile as a **pipeline check** (:meth:`fer_core.book.chapter.Chapter.open`): it proves the
code runs end to end and is shown in its own, labelled section, never in place of a published
number. Where no record is published yet, the figures come from the pipeline check, marked as such.
:class:`ChapterRuns` is a chapter's runs and the choice among them that its tables and figures read.

``FER_PUBLISHED_DIR`` (where published records are read) and ``FER_RESULTS_DIR`` (where the
pipeline checks' runs go) point every chapter elsewhere, for a test or a batch run.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..config import read_params
from ..data import SYNTHETIC_NOTE
from ..paths import params_file
from ..runs import ledger
from ..schedule.plans import Plan, default_profile


PUBLISHED_DIR = "results"


CHECK_LABEL = "pipeline check ({profile} profile): shows the code runs, not a result"


def published_view(published_dir: str | Path | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The published runs and the refused records of ``published_dir`` (default
    ``FER_PUBLISHED_DIR``, else ``results/``): the valid paper-profile records on real data found
    under it (:func:`fer_core.runs.ledger.scan`: sealed, unchanged, their numbers recomputing from their
    predictions, one per run), never its ledger; and every finished record that is not valid, with why."""
    runs, refused = ledger.scan(published_dir or os.environ.get("FER_PUBLISHED_DIR") or PUBLISHED_DIR)
    shown = runs[(runs["profile"] == "paper") & (runs["dataset"] != "synthetic")].reset_index(drop=True)
    return shown, refused


def published(published_dir: str | Path | None = None) -> pd.DataFrame:
    """The published runs (:func:`published_view`), each with an empty ``problems`` column."""
    return published_view(published_dir)[0]


def pipeline_runs(profile: str | None = None, results_dir: str | None = None) -> pd.DataFrame:
    """The pipeline checks' runs of every chapter (the CPU profile's ledger), for a chapter that
    reads other chapters' runs when none is published."""
    profile = profile or default_profile()
    folder = results_dir or os.environ.get("FER_RESULTS_DIR") or \
        read_params(params_file(profile)).get("output", {}).get("results_dir", "build/results")
    book = ledger.read_ledger(folder)
    return book[book["profile"] == profile].reset_index(drop=True)


def dirty_records(runs: pd.DataFrame) -> list[str]:
    """The records among ``runs`` made from a tree with uncommitted changes: ``run (commit +
    changed files or diff hash)`` each (their provenance says ``dirty``)."""
    out = []
    for path in runs["record"]:
        p = ledger.record_at(path).provenance
        if p.get("dirty"):
            what = ", ".join(p.get("changed_files", [])[:3]) or p.get("diff_sha256", "")[:12] or "changes not recorded"
            out.append(f"{Path(path).name} ({str(p.get('commit'))[:8]} + {what})")
    return out


@dataclass
class ChapterRuns:
    """One paper chapter's runs: ``published`` (every paper's paper-profile rows) and ``check``
    (this chapter's pipeline-check rows, None in the paper profile), and which of them it shows."""

    paper: str

    profile: str

    plan: Plan

    published: pd.DataFrame

    check: pd.DataFrame | None

    #: finished records under the published folder that count nowhere, with why (record, problems)
    refused: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=ledger.REFUSED_COLUMNS))

    # -- which runs are shown -------------------------------------------------------------
    @property
    def mine(self) -> pd.DataFrame:
        """This paper's published rows."""
        return self.published[self.published["paper"] == self.paper]

    @property
    def shows_published(self) -> bool:
        return len(self.mine) > 0

    @property
    def shown(self) -> pd.DataFrame:
        """The runs the figures are drawn from: the published ones, else the pipeline check's."""
        return self.mine if self.shows_published or self.check is None else self.check

    @property
    def note(self) -> str | None:
        """The line every figure of the chapter carries when it does not show published numbers."""
        if self.shows_published:
            return None
        label = CHECK_LABEL.format(profile=self.profile)
        synthetic = self.check is not None and (self.check["dataset"] == "synthetic").any()
        return f"{SYNTHETIC_NOTE}; {label}" if synthetic else label

    def records(self, variant: str, runs: pd.DataFrame | None = None) -> list:
        """The run records of one row (every seed and fold) among the shown runs."""
        runs = self.shown if runs is None else runs
        return [ledger.record_at(p) for p in runs.loc[runs["variant"] == variant, "record"]]

    def first_of(self, *preferred: str) -> str | None:
        """The first of ``preferred`` rows among the shown runs, else the first shown row."""
        ran = list(dict.fromkeys(self.shown["variant"]))
        return next((v for v in preferred if v in ran), ran[0] if ran else None)
