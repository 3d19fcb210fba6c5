"""What a paper chapter shows, and from which runs.

A chapter shows **published** numbers: the paper-profile run records committed under
``results/`` (their ledger ``results/ledger.csv``), made on a GPU by a chapter or by
``python -m fer_core run``. On a machine that cannot make them (the CPU that builds the book), the
chapter also runs its CPU profile as a **pipeline check**: it proves the code runs end to end and
is shown in its own, labelled section, never in place of a published number. Where no record is
published yet, the verdicts say "not tested" and the figures come from the pipeline check, marked
as such.

Parameters left as None fall back on environment variables, so that a test (``pytest --nbval-lax``)
or a batch run can point every chapter elsewhere: ``FER_PROFILE`` (the profile to run),
``FER_RESULTS_DIR`` (where its runs go) and ``FER_PUBLISHED_DIR`` (where published records are read).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import attention_views, ledger, plots, verdicts
from .claims import PAPERS, claims_of, read_claims, row_ref, short_source
from .config import read_params
from .data import SYNTHETIC_NOTE, duplicates
from .evaluate import outputs
from .papers import all_papers
from .metrics import classification_metrics, psnr
from .paths import ROOT, params_file
from .plans import Plan, config_for, default_profile, leaf_keys, notebook_settings, read_plan
from .runs import restore, run_data
from .slices import Slice, execute, in_progress

PUBLISHED_DIR = "results"
#: paper -> its chapter notebook's stem: from the plans' heads (fer_core.papers)
CHAPTERS = {p.key: p.chapter for p in all_papers()}
CHECK_LABEL = "pipeline check ({profile} profile): shows the code runs, not a result"
METRICS = {
    "accuracy": "accuracy", "accuracy_tta_random_views": "accuracy, 10-view TTA",
    "accuracy_tta_tencrop": "accuracy, ten-crop TTA", "macro_f1": "macro F1",
    "macro_f1_tta_random_views": "macro F1, 10-view TTA", "auc_min": "lowest one-vs-rest AUC",
    "parameters_m": "parameters (M)", "model:parameters_m": "parameters (M) of the architecture, counted",
    "cross_entropy": "cross-entropy", "images": "images",
    "last:val_acc": "validation accuracy, last epoch", "last:val_loss": "validation cross-entropy, last epoch",
    "first:val_acc": "validation accuracy, first epoch", "first:val_loss": "validation cross-entropy, first epoch",
    "last:train_margin": "training L_margin, last epoch", "metrics:per_class.happy.recall": "recall of happy",
    "metrics:loss_terms.sr_l2": "test MSE of the super-resolved face",
}
SYMBOL = {verdicts.REPRODUCED: "✔ reproduced", verdicts.NOT_REPRODUCED: "✘ not reproduced",
          verdicts.NOT_COMPARABLE: "≠ not comparable", verdicts.NOT_TESTED: "– not tested"}


def published_view(published_dir: str | Path | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The published runs and the refused records of ``published_dir`` (default
    ``FER_PUBLISHED_DIR``, else ``results/``): the valid paper-profile records on real data found
    under it (:func:`fer_core.ledger.scan`: sealed, unchanged, their numbers recomputing from their
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


def _partial(estimate: str, missing: str) -> str:
    """An estimate, with the folds its cross-validated rows still lack when they lack any."""
    return f"{estimate}, partial: {missing}" if missing else estimate


def metric_name(metric: str) -> str:
    return METRICS.get(metric, metric)


def claim_text(c: pd.Series) -> str:
    """What a claim says, in words: the quantity, and the difference for a relative claim."""
    what = metric_name(c["metric"])
    if c["versus"]:
        others = [row_ref(c["paper"], v)[1] for v in c["versus"].split(";")]
        what += f": {row_ref(c['paper'], c['row'])[1]} minus " + (others[0] if len(others) == 1 else
                                                                    f"each of {len(others)} rows")
    return what


def paper_value(c: pd.Series) -> str:
    unit = "" if c["unit"] in ("", "images") else f" {c['unit']}"
    value = c["value_text"] if "value_text" in c else f"{c['value']:g}"
    return f"{'' if c['relation'] == '=' else c['relation'] + ' '}{value}{unit}"


def grouped(claims: pd.DataFrame) -> pd.DataFrame:
    """One row per distinct claim: the same number for the same row stated in several places (a
    table, the abstract, the README) becomes one row with all its sources."""
    key = ["paper", "row", "versus", "dataset", "split", "metric", "relation", "value", "unit"]
    out = claims.groupby(key, sort=False, dropna=False).agg(
        label=("label", "first"), table=("table", lambda t: "; ".join(dict.fromkeys(t))),
        source=("source", lambda s: "; ".join(dict.fromkeys(s))), note=("note", "first"),
        not_comparable=("not_comparable", "first"),
        value_text=("value_text", "first")).reset_index()
    return out


def verdict_table(claims: pd.DataFrame, results: pd.DataFrame, *, link: bool = False,
                  data_descriptions: bool = False) -> pd.DataFrame:
    """Claims grouped, with ours and the verdict, ready to print: claim, measured as, paper, ours,
    verdict, why, source (and the chapter, with ``link``). Data descriptions (image counts) are left
    out unless ``data_descriptions``."""
    if not data_descriptions:
        claims = claims[claims["metric"] != "images"]
    assessed = verdicts.assess(grouped(claims), results)
    table = pd.DataFrame({
        "claim": assessed["label"],
        "measured as": [f"{c['dataset']} {c['split']}".strip() + f": {claim_text(c)}" for _, c in assessed.iterrows()],
        "paper": [paper_value(c) for _, c in assessed.iterrows()],
        "ours": [f"{o} [{s}]" if s else o for o, s in zip(assessed["ours"], assessed["per_seed"])],
        "verdict": assessed["verdict"].map(SYMBOL),
        "ours against the paper": assessed["direction"],
        "under each reading": assessed["readings"],
        "why": assessed["reason"],
        "source": [short_source(s) for s in assessed["source"]],
    })
    if link:
        table.insert(0, "chapter", [f'<a href="{CHAPTERS[p]}.html">{CHAPTERS[p][:2]}</a>' for p in assessed["paper"]])
    return table


def html(table: pd.DataFrame):
    """A table as deterministic HTML (links kept): what the book and nbval both read."""
    from IPython.display import HTML

    body = table.to_html(index=False, escape=False, border=0, classes="dataframe verdicts")
    return HTML(f'<div class="verdicts-scroll">{body}</div>')


@dataclass
class Chapter:
    """One paper chapter's runs: ``published`` (every paper's paper-profile rows) and ``check``
    (this chapter's pipeline-check rows, None in the paper profile)."""

    paper: str
    profile: str
    plan: Plan
    published: pd.DataFrame
    check: pd.DataFrame | None
    #: finished records under the published folder that count nowhere, with why (record, problems)
    refused: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=ledger.REFUSED_COLUMNS))

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

    def banner(self) -> None:
        """Which numbers the chapter shows: published records (device, dates, commit) or none yet."""
        from IPython.display import Markdown, display

        display(Markdown(banner_text(self)))

    # -- what the plan says ---------------------------------------------------------------
    def recipe(self) -> pd.DataFrame:
        """Every setting of the paper's recipe: its value in the paper profile and where it comes
        from (the paper's line, or this book's named choice and why)."""
        return recipe_table(self.plan)

    def notes(self) -> None:
        from IPython.display import Markdown, display

        display(Markdown(notes_markdown(self.plan)))

    # -- claims, verdicts and results -------------------------------------------------------
    def verdicts(self) -> pd.DataFrame:
        """The paper's claims with the published ours and the verdict of each."""
        return verdict_table(claims_of(self.paper), self.published)

    def summary(self):
        """The chapter's answer before its detail: the paper's claims counted by verdict and the three
        claims ours misses by most (in tolerances of the rule), as Markdown."""
        from IPython.display import Markdown

        return Markdown(summary_markdown(claims_of(self.paper), self.published))

    def results(self, columns: dict[str, str] | None = None, runs: pd.DataFrame | None = None) -> pd.DataFrame:
        """Per row of the plan: its runs and ours for each of ``columns`` with its 95% interval (the
        verdicts' estimate: over seeds and folds, or a single run's test set; label -> a
        metric as the claims name it: a ledger column, ``last:<history column>``, ...; a label
        ending in "(%)" is shown in percent; a cross-validated row short of folds says so), and
        whether the paper has the row; a row with a queue run not yet finished says where it stands
        (the saved queue statuses, :func:`fer_core.slices.in_progress`)."""
        runs = self.shown if runs is None else runs
        columns = columns or {"accuracy (%)": "accuracy"}
        claims = claims_of(self.paper)
        named = set(claims["row"]) | {r for v in claims["versus"] for r in v.split(";")}
        started = in_progress(self.paper, self.plan.variants()) if self.shows_published else {}
        rows = []
        for variant in self.plan.variants():
            mine = runs[runs["variant"] == variant] if len(runs) else runs
            entry = {"row": variant, "runs": len(mine),
                     "in the paper": "yes" if variant in named else "no: this book's ablation or extension"}
            missing = verdicts.complete_folds(mine, self.paper)[1] if len(mine) else ""
            for label, metric in columns.items():
                scale = 100.0 if label.endswith("(%)") else 1.0
                values = np.asarray(verdicts.values_of(mine, metric) if len(mine) else [], float)
                ok = ~np.isnan(values)
                est = verdicts.row_estimate(mine[ok], metric, scale) if ok.any() else None
                digits = 2 if scale > 1 else 4
                text = est.text(digits) + (f" [{est.per_seed(digits)}]" if est.per_seed() else "") if est else None
                entry[label] = _partial(text, missing) if text else "—" if len(mine) else "not run"
            if started:  # a run of the queue not finished yet: named, never a number of the table
                entry["in progress"] = "; ".join(started.get(variant, [])) or ""
            rows.append(entry)
        return pd.DataFrame(rows).set_index("row")

    def differences(self, *pairs: tuple[str, str], metric: str = "accuracy") -> pd.DataFrame:
        """This book's own comparisons, which no claim of the paper reads (a control against the
        row it controls): row A minus row B in points with its 95% interval, paired over the seeds
        and folds both ran (:func:`verdicts.paired_estimate`, the verdicts' estimate of a gain),
        and whether the interval leaves out zero; a cross-validated row short of folds says so.
        ``metric``: an accuracy (a fraction), shown in points."""
        runs = self.shown
        out = []
        for a, b in pairs:
            ra, rb = (runs[runs["variant"] == v] if len(runs) else runs for v in (a, b))
            entry = {"A minus B": f"{a} − {b}", "runs": f"{len(ra)} and {len(rb)}"}
            if not len(ra) or not len(rb):
                out.append({**entry, f"{metric_name(metric)} (points)": "not run: " + " and ".join(
                    v for v, r in ((a, ra), (b, rb)) if not len(r)), "paired": "", "zero outside the 95% interval": ""})
                continue
            est = verdicts.paired_estimate(ra, rb, metric, 100.0)
            missing = "; ".join(m for m in (verdicts.complete_folds(r, self.paper)[1] for r in (ra, rb)) if m)
            low, high = est.interval()
            apart = f"yes: {a} higher" if low > 0 else f"yes: {b} higher" if high < 0 else "no: not distinguishable"
            out.append({**entry, f"{metric_name(metric)} (points)": _partial(est.text(2), missing),
                        "paired": "yes" if verdicts.pairs_up(ra, rb) else "no: other seeds or folds",
                        "zero outside the 95% interval": apart})
        return pd.DataFrame(out).set_index("A minus B")

    def paper_vs_ours(self, metric: str, runs: pd.DataFrame | None = None) -> pd.DataFrame:
        """Per row with a claim of ``metric`` (relation "="): the paper's value (the first source's)
        and ours (in %, over the shown runs, with the half-width of its 95% interval: the verdicts'
        standard error), for a bar chart."""
        if runs is None:  # rows of another paper's chapter (Shen & Li's baselines) are published there
            runs = self.published if self.shows_published or self.check is None else self.check
        claims = claims_of(self.paper)
        claims = claims[(claims["metric"] == metric) & (claims["relation"] == "=") & (claims["versus"] == "")
                        & (claims["row"] != "")].drop_duplicates("row")
        rows = []
        for _, c in claims.iterrows():
            paper, variant = row_ref(self.paper, c["row"])
            mine = runs[(runs["variant"] == variant) & (runs["paper"] == paper)] if len(runs) else runs
            mine = mine[mine[metric].notna()] if len(mine) and metric in mine else mine.iloc[:0]
            est = verdicts.row_estimate(mine, metric, 100.0) if len(mine) else None
            rows.append({"row": variant, "paper": c["value"], "ours": est.mean if est else None,
                         "ours_ci95": est.half_width if est else None})
        return pd.DataFrame(rows, columns=["row", "paper", "ours", "ours_ci95"])

    def check_table(self) -> pd.DataFrame | None:
        """The pipeline check's runs, labelled as such (None in the paper profile)."""
        if self.check is None:
            return None
        cols = ["variant", "fold", "seed", "dataset", "accuracy", "macro_f1", "epochs_run", "wall_time_s"]
        return self.check[cols].assign(accuracy=lambda d: (d["accuracy"] * 100).round(2),
                                       macro_f1=lambda d: (d["macro_f1"] * 100).round(2)).set_index("variant")

    def pipeline_check(self):
        """The pipeline check's table, or the line that says the paper profile has none."""
        table = self.check_table()
        if table is None:
            print("paper profile: no pipeline check (the runs above are the published ones)")
        return table

    #: the provenance columns of a chapter's closing table
    PROVENANCE = ["variant", "fold", "seed", "profile", "dataset", "accuracy", "epochs_run", "wall_time_s", "device",
                  "commit", "data_fingerprint", "record"]

    def provenance(self) -> pd.DataFrame:
        """Every shown run with where it comes from: commit, data fingerprint, device, record."""
        return self.shown[self.PROVENANCE].round(4)

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

    def sr_quality(self, *variants: str) -> pd.DataFrame | None:
        """The super-resolution rows' test losses and PSNR (their own and bicubic's), one row per run."""
        rows = [{"row": variant, "seed": r.config["seed"], "test L1": terms["sr_l1"], "test L2 (MSE)": terms["sr_l2"],
                 "PSNR (dB)": psnr(terms["sr_l2"]), "bicubic PSNR (dB)": psnr(terms["bicubic_l2"])}
                for variant in variants for r in self.records(variant) for terms in [r.metrics["loss_terms"]]]
        if self.note:
            print(f"[{self.note}]")
        if not rows:
            print("the SR rows were not run")
            return None
        return pd.DataFrame(rows).set_index("row").round(3)

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

    def records(self, variant: str, runs: pd.DataFrame | None = None) -> list:
        """The run records of one row (every seed and fold) among the shown runs."""
        runs = self.shown if runs is None else runs
        return [ledger.record_at(p) for p in runs.loc[runs["variant"] == variant, "record"]]

    def first_of(self, *preferred: str) -> str | None:
        """The first of ``preferred`` rows among the shown runs, else the first shown row."""
        ran = list(dict.fromkeys(self.shown["variant"]))
        return next((v for v in preferred if v in ran), ran[0] if ran else None)

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


def twins_note(runs: pd.DataFrame) -> str:
    """What FER2013's training twins do to the published FER2013 records, in numbers read from
    their ``duplicate_free.json`` (one markdown paragraph)."""
    fer = runs[runs["dataset"] == "fer2013"] if len(runs) else runs
    found = [d for d in (duplicates.read(ledger.record_at(p).path) for p in fer["record"]) if d]
    head = ("**FER2013's test faces include training faces.** Every FER2013 claim — each paper's and ours — "
            "is measured on a PrivateTest split in which some faces are byte-identical to a training face "
            "(`python -m fer_core duplicates`: exact pixel identity after decoding; near-duplicates are not "
            "caught). A model can score those by memory. The verdicts compare the full split, as the papers "
            "report it; every FER2013 record also carries its scores without those faces (`duplicate_free.json`), "
            "and the chapters show both.")
    if not found:
        return head + " No FER2013 record is published yet to measure what this changes."
    drops = [100 * (d["full"]["accuracy"] - d["duplicate_free"]["accuracy"]) for d in found]
    return head + (f" On the {len(found)} published FER2013 record(s), {found[0]['dropped']} of "
                   f"{found[0]['full']['n']} PrivateTest faces have a training twin, and leaving them out lowers "
                   f"the accuracy by {min(drops):.2f} to {max(drops):.2f} points: every paper's FER2013 number "
                   f"likely shares that inflation, and none of them says so.")


def gpu_wait(path: str | Path | None = None) -> pd.DataFrame | None:
    """Why the GPU queue's claims are not tested, in numbers: per item of ``params/queues/gpu.yaml``
    its runs and the hours this CPU would need (``python -m fer_core queue gpu --status --save``,
    ``results/bench/queue_gpu.csv``); None when that file is not there."""
    path = Path(path) if path is not None else ledger.ROOT / "results" / "bench" / "queue_gpu.csv"
    if not path.is_file():
        return None
    t = pd.read_csv(path)
    t = t.assign(**{"days here (at most)": (t["hours left (at most)"] / 24).round(1)})
    return t[["item", "slice", "runs", "finished", "hours left (at most)", "days here (at most)", "estimated",
              "machine"]].set_index("item")


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


def banner_text(ch: Chapter) -> str:
    if ch.shows_published:
        mine = ch.mine
        devices = ", ".join(sorted(set(mine["device"].astype(str))))
        finished = mine["finished"].dropna().astype(str).str[:10]
        dates = f"{finished.min()} to {finished.max()}" if len(finished) else "unknown dates"
        commits = ", ".join(sorted(set(mine["commit"].fillna("no commit").astype(str).str[:8])))
        data = ", ".join(sorted(set(mine["dataset"])))
        text = (f"> **Published numbers.** The tables, verdicts and figures of this chapter come from "
                f"{len(mine)} paper-profile run record(s) on {data} ({devices}; finished {dates}; commit {commits}), "
                f"each checked against its manifest.")
        dirty = dirty_records(mine)
        if dirty:
            text += (f"\n>\n> **⚠ {len(dirty)} of them were made from uncommitted code** (their commit plus changes "
                     f"that no commit holds: {'; '.join(dirty[:3])}{' ...' if len(dirty) > 3 else ''}): the code "
                     f"that made them cannot be checked out exactly.")
    else:
        text = ("> **No paper-profile run of this chapter is published yet.** Its verdicts say *not tested*, and "
                "its figures come from the pipeline check below, which shows that the code runs, not what the "
                "paper's models achieve.")
    flagged = ch.refused[ch.refused["record"].map(lambda r: Path(r).parent.name == ch.paper)]
    if len(flagged):
        text += (f"\n>\n> **⚠ {len(flagged)} record(s) fail their check** and count nowhere in this book (no table, "
                 f"figure or verdict): " +
                 "; ".join(f"{Path(r).name}: {p}" for r, p in zip(flagged["record"], flagged["problems"])))
    if ch.check is not None:
        data = ", ".join(sorted(set(ch.check["dataset"]))) if len(ch.check) else "no runs"
        text += (f"\n>\n> **Pipeline check** ({ch.profile} profile, {data}, {len(ch.check)} run(s)): run on this "
                 f"machine to prove the chapter end to end; shown only in its own section.")
        if (ch.check["dataset"] == "synthetic").any():
            text += (f"\n>\n> **⚠ {SYNTHETIC_NOTE}.** No data directory was configured (`FER_DATA_DIR` or "
                     f"`data_dir`), so the pipeline check ran on the book's embedded synthetic faces.")
    return text


def summary_markdown(claims: pd.DataFrame, runs: pd.DataFrame, largest: int = 3) -> str:
    """Counts per verdict of a paper's claims (data descriptions aside) and the ``largest`` misses:
    the judged claims whose ours lies the most tolerances of the rule from the paper's value."""
    claims = claims[claims["metric"] != "images"]
    assessed = verdicts.assess(grouped(claims), runs)
    counts = assessed["verdict"].value_counts()
    head = ", ".join(f"{counts[v]} {v}" for v in verdicts.VERDICTS if counts.get(v, 0))
    lines = [f"**This paper's {len(assessed)} claims:** {head}."]
    judged = assessed[assessed["verdict"].isin([verdicts.REPRODUCED, verdicts.NOT_REPRODUCED])
                      & (assessed["relation"] == "=") & assessed["ours_mean"].notna()].copy()
    if len(judged):
        # how many tolerances ours lies from the paper's value: one measure for every unit
        judged["times"] = [abs(m - v) / t if t else float("inf") for m, v, t in
                           zip(judged["ours_mean"], judged["value"], judged["tolerance"])]
        misses = judged[judged["times"] > 1].sort_values("times", ascending=False).head(largest)
        if len(misses):
            lines.append("The largest misses (in tolerances of the rule: how far ours lies from the paper's value):")
            lines += [f"- {c['label']}, {claim_text(c)}: paper {paper_value(c)}, ours {c['ours']}: "
                      f"{c['direction']}, {c['times']:.1f} times the tolerance ±{c['tolerance']:.3g}"
                      for _, c in misses.iterrows()]
    return "\n".join(lines)


def recipe_table(plan: Plan) -> pd.DataFrame:
    """Setting, value (as resolved for the paper profile) and where it comes from."""
    first = plan.variants()[0]
    cfg = config_for(plan, first, "paper", data_dir="(your data)").to_dict()
    rows = []
    for key in leaf_keys(plan.recipe):
        value = cfg
        for part in key.split("."):
            value = value[part]
        entry = plan.settings.get(key, {})
        origin = (f"source: {entry['source']}" if "source" in entry else
                  f"named choice: {entry['choice']}" if "choice" in entry else "not documented")
        shown = f"{value:g}" if isinstance(value, float) else str(value)
        rows.append({"setting": key, "value": shown, "from": origin})
    return pd.DataFrame(rows).set_index("setting")


def notes_markdown(plan: Plan) -> str:
    out = []
    if plan.deviations:
        out.append("**Deviations and interpretations**\n\n" + "\n".join(f"- {d}" for d in plan.deviations))
    if plan.protocol:
        out.append("**Protocol notes**\n\n" + "\n".join(f"- {d}" for d in plan.protocol))
    return "\n\n".join(out) or "(no notes)"


#: the verdicts as data (``results/verdicts.csv`` and ``.json``), what the front chapter shows
VERDICTS_FILE = ROOT / "results" / "verdicts"
EXPORT_COLUMNS = ["paper", "table", "label", "row", "versus", "dataset", "split", "metric", "relation", "value_text",
                  "unit", "ours", "ours_mean", "ours_half_width_95", "ours_n", "ours_df", "per_seed", "verdict",
                  "direction", "readings", "reason", "tolerance", "not_comparable", "note", "source", "quote",
                  "records", "commits"]


def verdicts_export(published_dir: str | Path | None = None) -> pd.DataFrame:
    """Every claim (grouped as the front chapter groups them, data descriptions left out) with the
    paper's value, ours with its 95% half-width, *n* and degrees of freedom, the verdict, its
    direction, reason and readings, and the records it rests on with their commits: the front
    chapter's table as data, from the same code."""
    claims = read_claims()
    claims = claims[claims["metric"] != "images"]
    runs = published(published_dir)
    assessed = verdicts.assess(grouped(claims), runs)
    records, commits = [], []
    for _, c in assessed.iterrows():
        used = verdicts.claim_runs(c, runs) if c["row"] and not c["metric"].startswith("model:") else []
        found = pd.concat(used) if used and not isinstance(used, str) else runs.iloc[:0]
        records.append(";".join(found["record"].astype(str)) if c["verdict"] != verdicts.NOT_TESTED else "")
        commits.append(";".join(sorted(set(found["commit"].fillna("no commit").astype(str)))) if records[-1] else "")
    out = assessed.assign(records=records, commits=commits, quote=grouped_quotes(claims, assessed))
    return out[EXPORT_COLUMNS].rename(columns={"value_text": "paper_value"})


def grouped_quotes(claims: pd.DataFrame, assessed: pd.DataFrame) -> list[str]:
    """The quote of each grouped claim: its sources' quotes, as the claims file has them."""
    key = ["paper", "row", "versus", "dataset", "metric", "relation", "value"]
    quotes = claims.groupby(key, sort=False, dropna=False)["quote"].agg(lambda q: " | ".join(dict.fromkeys(q)))
    return [quotes.get(tuple(c[k] for k in key), "") for _, c in assessed.iterrows()]


def write_verdicts(published_dir: str | Path | None = None, path: Path = VERDICTS_FILE) -> list[Path]:
    """``results/verdicts.csv`` and ``.json`` from :func:`verdicts_export`."""
    table = verdicts_export(published_dir)
    csv_path, json_path = path.with_suffix(".csv"), path.with_suffix(".json")
    table.to_csv(csv_path, index=False)
    json_path.write_text(table.to_json(orient="records", indent=1, force_ascii=False) + "\n")
    return [csv_path, json_path]


def overview(published_dir: str | Path | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The front chapter's two tables: verdict counts per paper, and every claim of every paper
    with its verdict and a link to its chapter."""
    claims = read_claims()
    runs = published(published_dir)
    table = verdict_table(claims, runs, link=True)
    paper_of = grouped(claims[claims["metric"] != "images"])["paper"]
    # the claims with a verdict first (as the papers come), the untested after them
    order = sorted(range(len(table)), key=lambda i: table["verdict"].iloc[i] == SYMBOL[verdicts.NOT_TESTED])
    table, paper_of = table.iloc[order].reset_index(drop=True), paper_of.iloc[order].reset_index(drop=True)
    counts = pd.crosstab(paper_of.map(lambda p: PAPERS[p].split(",")[0]).values, table["verdict"].values)
    counts = counts.reindex(columns=list(SYMBOL.values()), fill_value=0)
    counts.index.name, counts.columns.name = "paper", None
    counts["claims"] = counts.sum(1)
    return counts.reindex([PAPERS[p].split(",")[0] for p in PAPERS]), table
