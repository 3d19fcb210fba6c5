"""The book's tables: the claims with ours and their verdicts, each row's estimates with their
intervals, this book's own comparisons, the recipe and where each setting comes from."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..schedule.plans import Plan, config_for, leaf_keys
from ..schedule.slices import in_progress
from ..train.metrics import psnr
from ..verdicts import rule as verdicts
from ..verdicts.claims import claims_of, row_ref, short_source
from ..verdicts.papers import all_papers
from .published import ChapterRuns


#: paper -> its chapter notebook's stem: from the plans' heads (fer_core.verdicts.papers)
CHAPTERS = {p.key: p.chapter for p in all_papers()}


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


#: beside a reproduced difference whose tolerance holds 0 as well (``Verdict.caveat``), in short
ZERO_TOO = "0 would pass too"

SYMBOL = {verdicts.REPRODUCED: "✔ reproduced", verdicts.NOT_REPRODUCED: "✘ not reproduced",
          verdicts.NOT_COMPARABLE: "≠ not comparable", verdicts.NOT_TESTED: "– not tested"}


def _partial(estimate: str, missing: str) -> str:
    """An estimate, with the folds its cross-validated rows still lack when they lack any."""
    return f"{estimate}, partial: {missing}" if missing else estimate


def _full_seeds(runs: pd.DataFrame, paper: str) -> tuple[pd.DataFrame, str]:
    """A row's runs for its estimate: the seeds with every fold, where it has any (a seed still short
    of folds is named and left out of the mean: its few folds are other faces than a full seed's),
    else every run (a partial estimate, named as such); and what is missing."""
    full, missing = verdicts.complete_folds(runs, paper) if len(runs) else (runs, "")
    if missing and len(full):
        return full, f"{missing} (not in the mean)"
    return runs, missing


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
        "ours against the paper": [f"{d}; {ZERO_TOO}" if c else d
                                   for d, c in zip(assessed["direction"], assessed["caveat"])],
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


class ChapterTables(ChapterRuns):
    """A chapter's tables, from the runs it shows."""

    # -- what the plan says ---------------------------------------------------------------
    def recipe(self) -> pd.DataFrame:
        """Every setting of the paper's recipe: its value in the paper profile and where it comes
        from (the paper's line, or this book's named choice and why)."""
        return recipe_table(self.plan)

    # -- claims, verdicts and results -------------------------------------------------------
    def verdicts(self) -> pd.DataFrame:
        """The paper's claims with the published ours and the verdict of each."""
        return verdict_table(claims_of(self.paper), self.published)

    def results(self, columns: dict[str, str] | None = None, runs: pd.DataFrame | None = None) -> pd.DataFrame:
        """Per row of the plan: its runs and ours for each of ``columns`` with its 95% interval (the
        verdicts' estimate: over seeds and folds, or a single run's test set; label -> a
        metric as the claims name it: a ledger column, ``last:<history column>``, ...; a label
        ending in "(%)" is shown in percent; a cross-validated row short of folds says so), and
        whether the paper has the row; a row with a queue run not yet finished says where it stands
        (the saved queue statuses, :func:`fer_core.schedule.slices.in_progress`)."""
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
            used, missing = _full_seeds(mine, self.paper)
            for label, metric in columns.items():
                scale = 100.0 if label.endswith("(%)") else 1.0
                values = np.asarray(verdicts.values_of(used, metric) if len(used) else [], float)
                ok = ~np.isnan(values)
                est = verdicts.row_estimate(used[ok], metric, scale) if ok.any() else None
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
        and folds both ran (:func:`verdicts.paired_estimate`, the verdicts' estimate of a gain; a
        seed short of folds left out where the row has full seeds), and whether the interval leaves
        out zero; a cross-validated row short of folds says so.
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
            (ra, gap_a), (rb, gap_b) = _full_seeds(ra, self.paper), _full_seeds(rb, self.paper)
            sa, sb = verdicts.shared_runs(ra, rb)
            paired = verdicts.pairs_up(sa, sb)
            if paired:
                ra, rb = sa, sb
            est = verdicts.paired_estimate(ra, rb, metric, 100.0)
            missing = "; ".join(f"{v}: {m}" for v, m in ((a, gap_a), (b, gap_b)) if m)
            low, high = est.interval()
            apart = f"yes: {a} higher" if low > 0 else f"yes: {b} higher" if high < 0 else "no: not distinguishable"
            out.append({**entry, f"{metric_name(metric)} (points)": _partial(est.text(2), missing),
                        "paired": "yes: over the seeds and folds both ran" if paired else "no: other seeds or folds",
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
