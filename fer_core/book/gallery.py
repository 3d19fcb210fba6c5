"""The attention chapter (06): the attention records of many runs side by side, published ones
first, else the chapters' pipeline checks, said plainly which."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from . import attention_views, plots
from .published import pipeline_runs, published


@dataclass
class Gallery:
    """The attention chapter: the first run of every row that has an attention record, of the
    published records, else of the chapters' pipeline checks (models that have not learned), with
    the note its figures carry (None for published records) and the paragraph that says which."""

    runs: pd.DataFrame
    atts: dict
    note: str | None
    intro: str

    @classmethod
    def open(cls, profile: str | None = None, results_dir: str | None = None,
             published_dir: str | Path | None = None) -> "Gallery":
        runs = published(published_dir)
        if len(runs):
            plans = ", ".join(f"`{p}`" for p in dict.fromkeys(runs["paper"]))
            note, intro = None, (
                f"> **Published records.** {len(runs)} run record(s) on real data, of the plans {plans}: the first "
                f"run of each row is shown. (`cpu` is this book's own chapter, *FER2013 on two CPU cores*: small "
                f"models trained within a wall-clock budget, not a paper's models.)")
        else:
            runs = pipeline_runs(profile, results_dir)
            note = "pipeline check: models that have not learned (but the foundation's); not a result"
            intro = ("> **No paper-profile run is published yet.** The maps below come from the pipeline checks of "
                     "the chapters (two epochs on subsets: **models that have not learned**, whatever the method "
                     "shows) and from the foundation chapter's model, which did learn the synthetic set. They show "
                     "every method running on every model, not where the papers' models look.")
        return cls(runs, attention_views.gallery(runs), note, intro)

    def table(self) -> pd.DataFrame:
        """The paragraph, then the runs shown (one per row)."""
        from IPython.display import Markdown, display

        display(Markdown(self.intro))
        keys = self.runs.apply(lambda r: f"{r['paper']}/{r['variant']}", axis=1) if len(self.runs) else []
        shown = self.runs[[k in self.atts for k in keys]].drop_duplicates(["paper", "variant"])
        return shown[["paper", "variant", "dataset", "profile", "accuracy", "record"]].round(4)

    def scores(self) -> pd.DataFrame | None:
        """Every method's scores for every model shown."""
        table = attention_views.score_table(self.atts)
        if self.note:
            print(f"[{self.note}]")
        if not len(table):
            print("no attention records to score")
            return None
        return table.round(3)

    def right_and_wrong(self, n: int = 4) -> None:
        if self.atts:
            plots.show(plots.per_class_faces(dict(list(self.atts.items())[:n]), "Right and wrong faces", self.note))

    def class_averages(self, methods=("integrated_gradients", "grad_cam"), n: int = 6) -> None:
        """The maps averaged per class, for the models explained on the 7 FER classes."""
        faces = {k: a for k, a in self.atts.items() if "integrated_gradients" in a.methods and len(a.class_names) == 7}
        for method in methods:
            if faces:
                plots.show(plots.class_average_maps(dict(list(faces.items())[:n]), method,
                                                    f"Class-average maps: {method.replace('_', ' ')}", self.note))
