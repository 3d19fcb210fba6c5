"""A paper chapter: :meth:`Chapter.open` runs the chapter's profile (the pipeline check on a
machine that cannot make the published runs) and reads the published records; the object then
answers the chapter's cells: its tables (:mod:`fer_core.book.tables`), figures
(:mod:`fer_core.book.figures`) and paragraphs (:mod:`fer_core.book.prose`), from the runs it shows
(:mod:`fer_core.book.published`).

Parameters left as None fall back on environment variables, so that a test (``pytest --nbval-lax``)
or a batch run can point every chapter elsewhere: ``FER_PROFILE`` (the profile to run),
``FER_RESULTS_DIR`` (where its runs go) and ``FER_PUBLISHED_DIR`` (where published records are read).
"""
from __future__ import annotations

import os

import pandas as pd

from ..schedule.plans import default_profile, notebook_settings, read_plan
from ..schedule.slices import Slice, execute
from ..verdicts.claims import claims_of
from .figures import ChapterFigures
from .prose import banner_text, notes_markdown, summary_markdown
from .published import published_view
from .tables import CHAPTERS, ChapterTables

__all__ = ["CHAPTERS", "Chapter"]


class Chapter(ChapterTables, ChapterFigures):
    """One paper chapter: its runs (published, and its pipeline check), tables, figures and paragraphs."""

    @classmethod
    def open(cls, paper: str, *, profile: str | None = None, overrides: list[str] = (), data_dir: str | None = None,
             device: str = "auto", models: list[str] | None = None, epochs: int | None = None, seeds: int = 1,
             results_dir: str | None = None, published_dir: str | None = None, reuse: bool = True,
             progress: bool = True) -> "Chapter":
        """Run the chapter's profile (the paper profile on a GPU, else the CPU pipeline check) and
        read the published records."""
        profile = profile or default_profile(data_dir)
        pd.set_option("display.max_colwidth", None)  # a chapter's tables are read: no reason cut to "..."
        results_dir = results_dir or os.environ.get("FER_RESULTS_DIR") or None
        if published_dir is None and profile == "paper" and results_dir:
            published_dir = results_dir
        settings = notebook_settings(overrides, device=device, progress=progress, epochs=epochs,
                                     results_dir=results_dir)
        ran = execute(Slice(paper, profile, models, list(range(seeds)), None, data_dir, settings), reuse=reuse)
        # paper-profile runs are the published ones, unless they ran on the synthetic set (no data)
        check = ran if profile != "paper" or (ran["dataset"] == "synthetic").any() else None
        shown, refused = published_view(published_dir)
        return cls(paper, profile, read_plan(paper), shown, check, refused)

    def banner(self) -> None:
        """Which numbers the chapter shows: published records (device, dates, commit) or none yet."""
        from IPython.display import Markdown, display

        display(Markdown(banner_text(self)))

    def notes(self) -> None:
        from IPython.display import Markdown, display

        display(Markdown(notes_markdown(self.plan)))

    def summary(self):
        """The chapter's answer before its detail: the paper's claims counted by verdict and the three
        claims ours misses by most (in tolerances of the rule), as Markdown."""
        from IPython.display import Markdown

        return Markdown(summary_markdown(claims_of(self.paper), self.published))
