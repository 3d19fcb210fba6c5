"""A chapter's figures, from the runs it shows: validation curves beside the paper's points, scores
per fold, pooled confusion matrices, loss terms, sample predictions, the intermediate images of
the STN and SR rows, and the attention records (drawn by :mod:`fer_core.book.plots`)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..runs.runner import restore, run_data
from ..train.evaluate import outputs
from ..train.metrics import classification_metrics
from ..verdicts.claims import claims_of
from . import attention_views, plots
from .published import ChapterRuns


class ChapterFigures(ChapterRuns):
    """A chapter's figures, from the runs it shows; each carries the chapter's note when they are
    not published numbers."""

    def focus(self, variant: str | None, split: str = "PrivateTest") -> None:
        """One row in close-up: its confusion matrix pooled over its runs, then its attention record."""
        if variant is None:
            print("no run to show")
            return
        pooled = self.pooled_metrics(variant)
        plots.show(plots.confusion(pooled, list(pooled["per_class"]), f"{variant}: {split} confusion", self.note))
        self.attention(variant)

    def loss_terms(self, terms: dict[str, str]) -> pd.DataFrame:
        """Each shown row's loss terms per epoch on the training set (its first run; ``terms``: a
        label per history column), and the table of their means on the test split."""
        on_test = {}
        for variant in dict.fromkeys(self.shown["variant"]):
            record = self.records(variant)[0]
            plots.show(plots.term_curves(record.history, terms, f"{variant}: loss terms per epoch (training set)",
                                         self.note))
            on_test[variant] = record.metrics.get("loss_terms", {})
        return pd.DataFrame(on_test).T.round(4).rename(columns=lambda c: f"test {c}")

    def sample_predictions(self, variant: str, n: int = 12, split: str = "PrivateTest") -> None:
        """``n`` test faces of the row's first run with their predictions (needs the run's data)."""
        record = self.records(variant)[0]
        try:
            test = run_data(record).select("test")
        except (FileNotFoundError, ValueError) as e:  # the data is not on this machine
            print(f"sample predictions need the run's data: {e}")
            return
        plots.show(plots.sample_predictions(test.images, record.predictions, list(record.metrics["per_class"]), n=n,
                                            title=f"{variant}: sample predictions ({split})", note=self.note))

    def stages(self, *variants: str, n: int = 6) -> None:
        """The first ``n`` test faces of each row's first run and the model's intermediate images
        (aligned by the STN, super-resolved), from the run's checkpoint and data."""
        for variant in variants:
            if variant is None or variant not in set(self.shown["variant"]):
                continue
            try:
                model, setup, data, _ = restore(self.records(variant)[0])
            except (FileNotFoundError, ValueError) as e:  # records committed without their checkpoints
                print(f"{variant}: the images need the run's checkpoint and data: {e}")
                continue
            test = data.select("test").take(np.arange(n))
            out = outputs(model, setup, test)
            rows = {"input": list(test.images)}
            for key, label in (("aligned", "aligned (STN)"), ("super_resolved", "x2 (SR or bicubic)")):
                if key in out:
                    rows[label] = [img[0] for img in out[key]]
            plots.show(plots.image_grid(rows, [test.class_names[t] for t in test.targets],
                                        f"{variant}: input and intermediate images", self.note))

    def attention(self, *preferred: str) -> None:
        """The attention record of the first of ``preferred`` rows among the shown runs: maps of
        every method, the model's internals, and the scores."""
        row = self.first_of(*preferred)
        if row is None:
            print("no run to draw attention maps from")
            return
        attention_views.show(self.records(row)[0], f"{row}: where the model looks", self.note,
                             learned=self.shows_published)

    def paper_points(self, variant: str) -> dict[str, list[tuple[int, float]]]:
        """The paper's per-epoch values of one row (claims on ``first:``/``last:`` history values),
        as (epoch, value) per history column; ``last`` is the recipe's last epoch."""
        claims = claims_of(self.paper)
        last = int(self.plan.recipe.get("train", {}).get("epochs", 0)) or None
        points: dict[str, list[tuple[int, float]]] = {}
        for _, c in claims[(claims["row"] == variant) & (claims["versus"] == "")].iterrows():
            kind, _, column = c["metric"].partition(":")
            epoch = 1 if kind == "first" else last if kind == "last" else None
            if epoch is not None and column in ("val_loss", "val_acc"):
                points.setdefault(column, []).append((epoch, float(c["value"])))
        return points

    def row_figures(self, *variants: str) -> None:
        """Per row shown: its runs' validation curves (beside the paper's per-epoch values), its
        accuracy per fold, and its confusion matrix pooled over every fold and seed. Rows without
        a shown run are named in one line."""
        ran = set(self.shown["variant"]) if len(self.shown) else set()
        missing = [v for v in variants if v not in ran]
        if missing:
            print(f"no run shown of {', '.join(missing)}")
        for variant in [v for v in variants if v in ran]:
            runs = self.shown[self.shown["variant"] == variant]
            records = self.records(variant)
            labels = [f"fold {r.config['data']['fold']}, seed {r.config['seed']}" if pd.notna(f) else
                      f"seed {r.config['seed']}" for r, f in zip(records, runs["fold"])]
            plots.show(plots.run_curves({lab: r.history for lab, r in zip(labels, records)},
                                        f"{variant}: validation curves of {len(records)} run(s)", self.note,
                                        self.paper_points(variant)))
            if runs["fold"].notna().any():
                plots.show(plots.fold_scores(runs, title=f"{variant}: test accuracy per fold", note=self.note))
            pooled = self.pooled_metrics(variant)
            plots.show(plots.confusion(pooled, list(pooled["per_class"]), f"{variant}: confusion matrix pooled "
                                       f"over {len(records)} run(s), {pooled['n']} test faces", self.note))

    def pooled_metrics(self, variant: str) -> dict:
        """One row's test predictions pooled over its seeds and folds, with the metrics recomputed
        on the pool: the confusion matrix of a cross-validation."""
        records = self.records(variant)
        if not records:
            raise KeyError(f"no runs of {variant!r} shown in this chapter")
        names = list(records[0].metrics["per_class"])
        y = np.concatenate([r.predictions["target"].to_numpy() for r in records])
        probs = np.concatenate([r.probs for r in records])
        return classification_metrics(y, probs / probs.sum(1, keepdims=True), names)
