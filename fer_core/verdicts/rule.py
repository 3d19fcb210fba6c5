"""Does it hold up? One rule gives every claim of ``book/claims.csv`` a verdict from the runs.

:data:`RULE` states it (the book prints it once); :func:`judge` applies it to one claim and one
estimate; :func:`measure` turns the published runs of a claim's row(s) into that estimate;
:func:`assess` does both for a table of claims.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import norm
from scipy.stats import t as student_t

from ..data import duplicates
from ..models import count_parameters, create_model
from ..runs import ledger
from ..schedule.plans import config_for, read_plan
from .claims import row_ref

REPRODUCED, NOT_REPRODUCED, NOT_TESTED = "reproduced", "not reproduced", "not tested"
NOT_COMPARABLE = "not comparable"
VERDICTS = (REPRODUCED, NOT_REPRODUCED, NOT_COMPARABLE, NOT_TESTED)
FLOOR_POINTS = 1.0     # percentage points: the tolerance of a claim in %, before our uncertainty
FLOOR_RELATIVE = 0.02  # share of the claimed value, for claims that are not percentages
LEVEL = 0.95           # the two-sided level of the tables' intervals and of the rule's tolerance


def t95(df: float) -> float:
    """The two-sided 95% quantile of Student's *t* with ``df`` degrees of freedom (the normal
    1.96 for an infinite ``df``: a single run's binomial error on a fixed test set)."""
    if not df or df <= 0:
        raise ValueError(f"degrees of freedom must be positive, not {df!r}")
    return float(student_t.ppf(0.5 + LEVEL / 2, df)) if math.isfinite(df) else float(norm.ppf(0.5 + LEVEL / 2))


def satterthwaite(parts: list[tuple[float, float]]) -> float:
    """Welch–Satterthwaite degrees of freedom of a sum of variances ``[(variance, df), ...]``:
    (Σ v)² / Σ (v² / df); a part with an infinite ``df`` (a binomial error) adds no term."""
    total = sum(v for v, _ in parts)
    denominator = sum(v * v / df for v, df in parts if v > 0 and math.isfinite(df))
    return total * total / denominator if denominator > 0 else math.inf

RULE = f"""\
**The rule.** *Ours* is the number the paper's protocol gives, from the paper-profile runs of a row:
on a fixed split (FER2013) a run's test accuracy, on CK+ the mean over its 10 subject-independent
folds; with several seeds, the mean over seeds. Its uncertainty is a **standard error** *u*, the
uncertainty of that number, not the spread of the runs around it, with its **degrees of freedom**
*ν*, which say how well *u* itself is known:

- a single run on a fixed split: its test set's own sampling error, √(*p*(1 − *p*)/*N*) for an
  accuracy *p* on *N* faces (3,589 on FER2013: about 0.8 points), so that one run is never held to
  more than its test set can tell; *ν* = ∞ (a binomial error, known from *p* and *N*); quantities that
  are not accuracies (losses, F1, AUC) have none here;
- cross-validation: the standard error over folds, *s*<sub>folds</sub>/√*k* (the folds' spread *s*
  is how far one fold lies from another; the mean over *k* folds is √*k* times surer), *ν* = *k* − 1;
- several seeds: *u*² = (the mean of each seed's *u*²) + *s*<sub>seeds</sub>²/*n*<sub>seeds</sub>: the
  test set (or the folds) is the same for every seed, so its share does not shrink with more seeds;
  *s*<sub>seeds</sub> has *n*<sub>seeds</sub> − 1 degrees of freedom, and *ν* of the sum is
  Welch–Satterthwaite's, (Σ *v*)² / Σ (*v*²/*ν*<sub>v</sub>) over its parts *v*.
- A **relative** claim compares two rows run on the same seeds (and folds) as a **paired**
  comparison: ours is the mean of the per-run differences, and *u* and *ν* come from those differences
  (for one run each on the same test faces, from the faces one row gets right and the other not,
  McNemar's discordant pairs). Rows not run on the same seeds and folds: *u* = √(*u*<sub>A</sub>² +
  *u*<sub>B</sub>²), *ν* by Welch–Satterthwaite.
- Every 95% interval of the book is ours ± *t*<sub>*ν*</sub>·*u*, with *t*<sub>*ν*</sub> the 97.5%
  quantile of Student's *t* with *ν* degrees of freedom (1.96 for *ν* = ∞, 2.262 for 10 folds, 4.303
  for 3 seeds of one run each).

- A claim of a **value** (the paper reports *c*) is **{REPRODUCED}** when ours lies within
  *f* + *t*<sub>*ν*</sub>·*u* of *c*, where the floor *f* is {FLOOR_POINTS:g} percentage point for percentages and
  {FLOOR_RELATIVE:.0%} of *c* for other quantities (losses, parameter counts).
- A claim of a **bound or an ordering** (above *c*, e.g. "beats every baseline": a difference above 0) is
  **{REPRODUCED}** when ours clears *c* by more than *t*<sub>*ν*</sub>·*u* (below *c*: falls short of it by more than
  *t*<sub>*ν*</sub>·*u*). Against several rows, it must hold against each.
- Otherwise it is **{NOT_REPRODUCED}**; beside every verdict the table says whether ours lies above or below
  the paper's value, and by how much.
- A **difference** claimed as a value (a gain of 7.2 points) that is {REPRODUCED} while 0 lies within
  the same tolerance of ours says so beside the verdict: the runs pass the paper's difference, and would
  pass no difference at all, so they do not tell the one from the other.
- A claim is **{NOT_COMPARABLE}** when the paper measured it on data, classes or a protocol the book's
  runs do not share (Qin's "FER2013" is FER+'s eight-class relabelling); ours is shown beside it, and the
  reason. A relative claim between two rows run on the same data stays testable as a proxy, and says so.
- A claim is **{NOT_TESTED}** when no paper-profile run on real data measures it: the book ran only its
  smoke or test profile, or on the synthetic set, or not that row, or the claim is on data or a method
  this book cannot run (a private data set, an ensemble, another paper's method). A cross-validated row
  counts only with all its folds published for a seed: a paper's CK+ number is one accuracy over its
  whole protocol, and a few folds are not that. A row whose runs mix numerical precisions (float32 and
  bf16 autocast) is refused, with the runs named.
- Claims of an architecture's size (parameter counts) need no run: ours is counted from the registered
  model at the paper's input and seven classes, exactly (*u* = 0).
- Where the text allows several readings of a claim's protocol (the paper's plan names them), the
  verdict is computed under each: it **holds under every reading** or **depends on the reading**.

Why the standard error: the folds' spread *s* says how far one fold's accuracy lies from another's,
while a paper's CK+ number is one accuracy over its whole protocol, the counterpart of our mean over
all *k* folds, which is √*k* times surer. With *s* in the tolerance, a CK+ claim would pass anywhere
within 1 + 2*s* of it: for the CK+ folds published in this book, ten points and more either side.
"""


@dataclass(frozen=True)
class Estimate:
    """Ours: a mean, the sample standard deviation ``std`` of its ``n`` runs (0 when ``n`` is 1),
    ``se``, the standard error of the mean as the claim's counterpart (see :data:`RULE`;
    :meth:`of` takes ``std / sqrt(n)``), and ``df``, the degrees of freedom of ``se`` (∞ for a
    binomial error or an exact count; :meth:`of` takes ``n - 1``)."""

    mean: float
    std: float
    n: int
    se: float | None = None
    df: float | None = None
    #: per seed, the protocol's number (a run, or the mean over its folds), for the tables
    seeds: tuple[tuple[int, float], ...] = ()
    #: a difference of two estimates on different runs (:meth:`minus`): the runs of each side
    sides: tuple[int, int] | None = None

    def __post_init__(self):
        if self.se is None:
            object.__setattr__(self, "se", self.std / math.sqrt(self.n) if self.n > 1 else 0.0)
        if self.df is None:
            object.__setattr__(self, "df", float(self.n - 1) if self.n > 1 and self.se > 0 else math.inf)

    @classmethod
    def of(cls, values, se: float | None = None) -> "Estimate":
        v = np.asarray(list(values), dtype=float)
        v = v[~np.isnan(v)]
        if len(v) == 0:
            raise ValueError("no values to estimate from")
        return cls(float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0, int(len(v)), se)

    @property
    def quantile(self) -> float:
        """*t* of the estimate's degrees of freedom: the half-width of its 95% interval is ``quantile * se``."""
        return t95(self.df)

    @property
    def half_width(self) -> float:
        return self.quantile * self.se if self.se > 0 else 0.0

    def minus(self, other: "Estimate") -> "Estimate":
        """The difference of two estimates made on different runs (unpaired; Welch–Satterthwaite)."""
        return Estimate(self.mean - other.mean, math.hypot(self.std, other.std), min(self.n, other.n),
                        math.hypot(self.se, other.se),
                        satterthwaite([(self.se ** 2, self.df), (other.se ** 2, other.df)]), sides=(self.n, other.n))

    def interval(self) -> tuple[float, float]:
        """The 95% interval mean ± t_df se."""
        return self.mean - self.half_width, self.mean + self.half_width

    def runs(self) -> str:
        """What the estimate rests on: ``3 seeds × 10 folds``, ``1 seed × 10 folds``, ``1 seed``
        (from its per-seed values), ``n=20 and 10`` for an unpaired difference, else ``n=3``
        ('' for a single value without seeds)."""
        if self.sides and max(self.sides) > 1:  # a difference of unpaired runs: each side's
            return f"n={self.sides[0]} and {self.sides[1]}"
        seeds = len(self.seeds)
        if seeds and self.n % seeds == 0:
            folds = self.n // seeds
            return f"{seeds} seed{'s' if seeds > 1 else ''}" + (f" × {folds} folds" if folds > 1 else "")
        return f"n={self.n}" if self.n > 1 else ""

    def text(self, digits: int = 2) -> str:
        """``mean ± half-width of the 95% interval`` (with the runs behind it: seeds and folds,
        and, when finite, the degrees of freedom of its *t*), or the mean alone when it has none."""
        runs = self.runs()
        if self.se > 0:
            dof = f", t{self.df:.3g}" if math.isfinite(self.df) else ""
            return f"{self.mean:.{digits}f} ± {self.half_width:.{digits}f} (95%{', ' + runs if runs else ''}{dof})"
        return f"{self.mean:.{digits}f}" + (f" ({runs})" if runs else "")

    def per_seed(self, digits: int = 2) -> str:
        """Each seed's value, ``s0 89.52 · s1 90.10``; '' for a single seed."""
        if len(self.seeds) < 2:
            return ""
        return " · ".join(f"s{seed} {value:.{digits}f}" for seed, value in self.seeds)


@dataclass(frozen=True)
class Verdict:
    verdict: str
    reason: str
    ours: Estimate | None = None
    tolerance: float | None = None
    #: where ours lies against the paper's value ("3.70 points below"), '' without ours
    direction: str = ""
    #: a reproduced non-zero value whose tolerance holds 0 as well: why ours does not tell it from none
    caveat: str = ""


def _percentage(unit: str) -> bool:
    """A claim in percent, or a difference of percentages (in percentage points)."""
    return unit in ("%", "points")


def tolerance(claimed: float, unit: str, se: float, df: float = math.inf) -> float:
    """The rule's tolerance of a value claim: the floor plus t_df times our standard error."""
    floor = FLOOR_POINTS if _percentage(unit) else FLOOR_RELATIVE * abs(claimed)
    return floor + (t95(df) * se if se > 0 else 0.0)


def direction(claimed: float, ours: Estimate, unit: str) -> str:
    """Where ours lies against the paper's value, in the claim's unit: "3.70 points below"."""
    gap = ours.mean - claimed
    if _percentage(unit):
        size = f"{abs(gap):.2f} points"
    else:
        size = f"{abs(gap):.3g}{' ' + unit if unit and unit != 'images' else ''}"
        if claimed:
            size += f" ({abs(gap) / abs(claimed):.1%})"
    return "equal" if gap == 0 else f"{size} {'above' if gap > 0 else 'below'}"


def judge(relation: str, claimed: float, ours: Estimate, unit: str = "%") -> Verdict:
    """The rule (:data:`RULE`) for one claim and our estimate of it."""
    where = direction(claimed, ours, unit)
    if relation == "=":
        t = tolerance(claimed, unit, ours.se, ours.df)
        gap = ours.mean - claimed
        ok = abs(gap) <= t
        if _percentage(unit):  # a gap between percentages is in percentage points
            why = f"ours is {gap:+.2f} points from the paper's value; tolerance ±{t:.2f} points"
        else:
            why = f"ours is {gap:+.3g}{' ' + unit if unit else ''} from the paper's value; tolerance ±{t:.3g}"
        caveat = ""
        if ok and claimed != 0 and abs(ours.mean) <= t:  # the rule would pass 0 as well
            caveat = "0 lies within the tolerance too: these runs do not tell the paper's difference from none"
            why += f"; {caveat}"
        return Verdict(REPRODUCED if ok else NOT_REPRODUCED, why, ours, t, where, caveat)
    if relation in (">", "<"):
        margin = ours.half_width
        clear = ours.mean - claimed if relation == ">" else claimed - ours.mean
        ok = clear > margin
        side = "above" if relation == ">" else "below"
        why = f"ours is {ours.mean:.3g}, {side} {claimed:g} by {clear:+.3g} (needs more than {margin:.3g})"
        return Verdict(REPRODUCED if ok else NOT_REPRODUCED, why, ours, margin, where)
    raise ValueError(f"unknown relation {relation!r}")


# -- from runs to an estimate ------------------------------------------------------------------
def _scale(unit: str) -> float:
    return 100.0 if _percentage(unit) else 1.0


def values_of(runs: pd.DataFrame, metric: str) -> list[float]:
    """One value per run: a ledger column, or a value read from the run's record
    (:meth:`fer_core.runs.records.RunRecord.value`)."""
    if ":" not in metric:
        if metric not in runs.columns:
            raise KeyError(f"metric {metric!r} is neither a ledger column nor 'last:', 'first:', 'selected:', "
                           f"'metrics:', 'duplicate_free:' or 'model:'")
        return runs[metric].astype(float).tolist()
    return [ledger.record_at(path).value(metric) for path in runs["record"]]


def published_runs(results: pd.DataFrame, paper: str, variant: str, dataset: str) -> pd.DataFrame:
    """The paper-profile runs on real data of one plan row."""
    if results is None or len(results) == 0:
        return pd.DataFrame()
    keep = (results["paper"] == paper) & (results["variant"] == variant) & (results["profile"] == "paper") \
        & (results["dataset"] == dataset)
    return results[keep]


def complete_folds(runs: pd.DataFrame, paper: str) -> tuple[pd.DataFrame, str]:
    """The runs of the seeds whose every cross-validation fold (the plan's ``cv_folds``) is
    published, and what is missing for the others ('' when nothing is); fixed-split runs as they are."""
    if "fold" not in runs or runs["fold"].isna().all():
        return runs, ""
    n = read_plan(paper).cv_folds
    done = {seed: set(g["fold"].dropna().astype(int)) for seed, g in runs.groupby("seed")}
    full = [seed for seed, folds in done.items() if folds >= set(range(n))]
    short = [f"seed {seed}: {len(folds)} of {n} folds" for seed, folds in done.items() if seed not in full]
    return runs[runs["seed"].isin(full)], "; ".join(short)


ACCURACIES = ("accuracy", "accuracy_tta_tencrop", "accuracy_tta_random_views", "last:val_acc", "first:val_acc",
              "selected:val_acc", "last:train_acc", "first:train_acc", "last:test_acc", "duplicate_free:accuracy",
              "duplicate_free:accuracy_tta_tencrop",
              "duplicate_free:accuracy_tta_random_views")


def faces_scored(runs: pd.DataFrame, metric: str) -> list[int | None]:
    """Per run, the number of faces an accuracy ``metric`` was measured on (the test split's
    ``n`` in metrics.json, the validation split's size for a history's ``val_acc``), None for
    metrics that are not accuracies."""
    if metric not in ACCURACIES:
        return [None] * len(runs)
    out = []
    for path in runs["record"]:
        record = ledger.record_at(path)
        if "val_acc" in metric or "train_acc" in metric:
            split = "val" if "val_acc" in metric else "train"
            out.append((record.provenance.get("data") or {}).get("sizes", {}).get(split))
        elif metric.startswith("duplicate_free:"):
            out.append((duplicates.read(record.path) or {}).get("duplicate_free", {}).get("n"))
        else:
            out.append(record.metrics.get("n"))
    return out


def _sampling_se(value: float, n: int | None, scale: float) -> float:
    """A single accuracy's standard error on ``n`` faces (binomial), in the claim's units."""
    if not n:
        return 0.0
    p = min(max(value / scale, 0.0), 1.0)
    return scale * math.sqrt(p * (1 - p) / n)


def protocol_estimate(runs: pd.DataFrame, values, run_se) -> Estimate:
    """Ours over ``runs`` (one value and one sampling error per run): per seed the protocol's number
    (the run, or the mean over its folds with the standard error over folds, k - 1 degrees of
    freedom), then the mean over seeds with u² = mean(seed u²) + s_seeds² / n_seeds and the
    Welch–Satterthwaite degrees of freedom of that sum (:data:`RULE`)."""
    df = pd.DataFrame({"seed": runs["seed"].to_numpy() if "seed" in runs else 0,
                       "fold": runs["fold"].to_numpy() if "fold" in runs else np.nan,
                       "value": np.asarray(values, float), "se": np.asarray(run_se, float)}).dropna(subset=["value"])
    if not len(df):
        raise ValueError("no values to estimate from")
    means, parts, per_seed = [], [], []
    for seed, g in df.groupby("seed", dropna=False):
        if g["fold"].notna().any():  # cross-validated: the mean over folds, its standard error over folds
            k = len(g)
            var, dof = (g["value"].var(ddof=1) / k, k - 1.0) if k > 1 else (g["se"].iloc[0] ** 2, math.inf)
        else:
            var, dof = float((g["se"] ** 2).mean()), math.inf
        means.append(g["value"].mean())
        parts.append((var, dof))
        per_seed.append((int(seed) if pd.notna(seed) else 0, float(g["value"].mean())))
    seeds = np.asarray(means)
    n = len(seeds)
    test_part = (sum(v for v, _ in parts) / n, satterthwaite([(v / n, d) for v, d in parts]))
    seed_part = (seeds.var(ddof=1) / n, n - 1.0) if n > 1 else (0.0, math.inf)
    u2 = test_part[0] + seed_part[0]
    std = float(df["value"].std(ddof=1)) if len(df) > 1 else 0.0
    return Estimate(float(seeds.mean()), std, int(len(df)), math.sqrt(u2), float(satterthwaite([test_part, seed_part])),
                    tuple(per_seed))


def _keys(runs: pd.DataFrame) -> list[tuple]:
    folds = runs["fold"] if "fold" in runs else pd.Series([np.nan] * len(runs), index=runs.index)
    return [(int(s), -1 if pd.isna(f) else int(f)) for s, f in zip(runs["seed"], folds)]


def _paired_sampling_se(path_a: str, path_b: str, scale: float) -> float | None:
    """The standard error of the accuracy difference of two runs scored on the same test faces,
    from their per-face correctness (McNemar's discordant pairs b, c: var = ((b + c)/N - ((b - c)/N)²)/N);
    None when their predictions do not name the same faces."""
    a, b = ledger.record_at(path_a).predictions, ledger.record_at(path_b).predictions
    if len(a) != len(b) or "file" not in a or not (a["file"].values == b["file"].values).all():
        return None
    d = (a["pred"] == a["target"]).astype(float).to_numpy() - (b["pred"] == b["target"]).astype(float).to_numpy()
    return scale * math.sqrt(max(d.var(), 0.0) / len(d))


def row_estimate(runs: pd.DataFrame, metric: str, scale: float) -> Estimate:
    """Ours for one row: its runs' values with their sampling errors, through :func:`protocol_estimate`."""
    values = np.asarray(values_of(runs, metric)) * scale
    se = [_sampling_se(v, n, scale) for v, n in zip(values, faces_scored(runs, metric))]
    return protocol_estimate(runs, values, se)


def shared_runs(a: pd.DataFrame, b: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Both rows' runs on the seeds and folds both ran (each row as it is when they share none)."""
    common = set(_keys(a)) & set(_keys(b))
    if not common:
        return a, b
    return tuple(r[[k in common for k in _keys(r)]] for r in (a, b))


def pairs_up(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    """Whether two rows' runs pair up one to one: the same seeds and folds, each once."""
    ka, kb = _keys(a), _keys(b)
    return len(set(ka)) == len(ka) == len(kb) and set(ka) == set(kb)


def paired_estimate(a: pd.DataFrame, b: pd.DataFrame, metric: str, scale: float) -> Estimate:
    """Ours for "row A minus row B": paired when both were run on the same seeds and folds (the
    per-run differences, for single runs with their paired sampling error), else unpaired."""
    if not pairs_up(a, b):
        return row_estimate(a, metric, scale).minus(row_estimate(b, metric, scale))
    ka = _keys(a)
    b = b.set_axis(_keys(b)).loc[ka]
    va, vb = np.asarray(values_of(a, metric)) * scale, np.asarray(values_of(b, metric)) * scale
    na, nb = faces_scored(a, metric), faces_scored(b, metric)
    se = []
    for i, (pa, pb) in enumerate(zip(a["record"], b["record"])):
        paired = _paired_sampling_se(pa, pb, scale) if metric == "accuracy" else None
        se.append(paired if paired is not None else math.hypot(_sampling_se(va[i], na[i], scale),
                                                                 _sampling_se(vb[i], nb[i], scale)))
    return protocol_estimate(a, va - vb, se)


def precision_of(path: str) -> str:
    """The numerical precision a run trained and was tested in (:attr:`RunRecord.precision`)."""
    return ledger.record_at(path).precision


def mixed_precisions(runs: pd.DataFrame) -> str:
    """'' when every run shares one precision, else the line that names the runs of each."""
    by = {}
    for path in runs["record"]:
        by.setdefault(precision_of(path), []).append(Path(path).name)
    if len(by) < 2:
        return ""
    return "its runs mix precisions (" + "; ".join(f"{p}: {', '.join(names)}" for p, names in sorted(by.items())) \
        + "): re-run them at one precision"


@lru_cache(maxsize=64)
def model_count(paper: str, variant: str, what: str) -> float:
    """A property of a plan row's registered architecture, measured without a run: ``parameters_m``
    (millions of parameters, each distinct tensor once: shared weights count once, buffers such
    as batch-norm statistics not at all) at the row's input size and kwargs and seven classes."""
    if what != "parameters_m":
        raise KeyError(f"metric 'model:{what}': only model:parameters_m is measured from the architecture")
    cfg = config_for(read_plan(paper), variant, "paper")
    model = create_model(cfg.model.name, num_classes=7, input_size=cfg.model.input_size, **cfg.model.kwargs)
    return count_parameters(model) / 1e6


def claim_runs(claim: pd.Series | dict, results: pd.DataFrame) -> list[pd.DataFrame] | str:
    """The published runs a claim rests on, one table per row it names (its ``row``, then each
    ``versus``), cross-validated rows cut to their seeds with every fold; or why there are none."""
    found = []
    for ref in [claim["row"]] + [v for v in claim["versus"].split(";") if v]:
        paper, variant = row_ref(claim["paper"], ref)
        runs = published_runs(results, paper, variant, claim["dataset"])
        if len(runs) == 0:
            return f"no paper-profile run of {ref} on {claim['dataset']}"
        for row in runs.to_dict("records"):
            wrong = row.get("problems", None)
            wrong = ledger.problems(row) if wrong is None else [wrong] if wrong else []
            if wrong:  # a number that does not recompute from its record's predictions is no evidence
                return f"{ref}: record {Path(row['record']).name} fails its check ({'; '.join(wrong)})"
        runs, missing = complete_folds(runs, paper)
        if len(runs) == 0:
            return f"{ref} on {claim['dataset']}: {missing} published so far (the protocol needs them all)"
        found.append(runs)
    return found


def measure(claim: pd.Series | dict, results: pd.DataFrame, metric: str | None = None
            ) -> Estimate | list[Estimate] | str:
    """Ours for one claim (under ``metric``, default the claim's own): an :class:`Estimate` (a list
    of them for a claim against several rows), or the reason it is not tested."""
    metric = metric or claim["metric"]
    if not claim["row"]:
        return claim["note"] or "this book runs nothing for it"
    refs = [claim["row"]] + [v for v in claim["versus"].split(";") if v]
    if metric.startswith("model:"):  # a property of the architecture: counted, exactly
        counts = [model_count(*row_ref(claim["paper"], ref), metric.partition(":")[2]) for ref in refs]
        ests = [Estimate(counts[0] - c, 0.0, 1, 0.0, math.inf) for c in counts[1:]] or [Estimate(counts[0], 0.0, 1)]
        return ests[0] if len(refs) == 1 else ests
    found = claim_runs(claim, results)
    if isinstance(found, str):
        return found
    mixed = mixed_precisions(pd.concat(found))
    if mixed:
        return f"{' and '.join(refs)}: {mixed}"
    scale = _scale(claim["unit"])
    if len(found) == 1:
        return row_estimate(found[0], metric, scale)
    return [paired_estimate(found[0], other, metric, scale) for other in found[1:]]


def _verdict(claim: pd.Series | dict, results: pd.DataFrame, metric: str) -> Verdict:
    """The rule applied to one claim under one reading (``metric``)."""
    ours = measure(claim, results, metric)
    if isinstance(ours, str):
        return Verdict(NOT_TESTED, ours)
    if isinstance(ours, Estimate):
        return judge(claim["relation"], claim["value"], ours, claim["unit"])
    # a relative claim against several rows must hold against each: report the weakest
    verdicts = [judge(claim["relation"], claim["value"], d, claim["unit"]) for d in ours]
    failed = [v for v in verdicts if v.verdict != REPRODUCED]
    if claim["relation"] == "=":
        worst = max(verdicts, key=lambda v: abs(v.ours.mean - claim["value"]) - v.tolerance)
    else:
        sign = 1 if claim["relation"] == ">" else -1
        worst = min(verdicts, key=lambda v: sign * (v.ours.mean - claim["value"]) - v.tolerance)
    versus = [v for v in claim["versus"].split(";") if v]
    who = versus[verdicts.index(worst)]
    reason = f"weakest against {who}: {worst.reason}" + (f" ({len(failed)} of {len(verdicts)} fail)" if failed else "")
    if failed:
        return Verdict(NOT_REPRODUCED, reason, worst.ours, worst.tolerance, worst.direction)
    # reproduced against each: say against which rows ours does not tell the difference from none
    caveats = {w: v.caveat for w, v in zip(versus, verdicts) if v.caveat}
    reason += "".join(f"; against {w}: {c}" for w, c in caveats.items() if w != who)  # the weakest's is said
    return Verdict(REPRODUCED, reason, worst.ours, worst.tolerance, worst.direction,
                   "; ".join(f"against {w}: {c}" for w, c in caveats.items()))


def readings_of(claim: pd.Series | dict) -> dict[str, str]:
    """The readings of a claim's protocol its paper's plan names for its metric (reading in words
    -> metric, the claim's own first), or {} when the text allows one."""
    readings = read_plan(claim["paper"]).readings.get(claim["metric"], {})
    return dict(sorted(readings.items(), key=lambda kv: kv[1] != claim["metric"]))


def verdict_of(claim: pd.Series | dict, results: pd.DataFrame) -> Verdict:
    """The verdict of one claim against the published runs ``results`` (ledger rows). A claim with
    a ``not_comparable`` reason is *not comparable*, with ours (when measured) as its reason's context."""
    v = _verdict(claim, results, claim["metric"])
    other_data = claim.get("not_comparable", "") if hasattr(claim, "get") else ""
    if other_data:
        context = f"; for reference, {v.reason}" if v.ours is not None else f" ({v.reason})"
        return replace(v, verdict=NOT_COMPARABLE, reason=f"{other_data}{context}", caveat="")
    return v


def under_readings(claim: pd.Series | dict, results: pd.DataFrame, main: Verdict | None = None) -> str:
    """'' for a claim with one reading; else whether its verdict holds under every reading its plan
    names or depends on the reading, and what each gives."""
    readings = readings_of(claim)
    if len(readings) < 2 or claim.get("not_comparable", ""):
        return ""
    main = main or verdict_of(claim, results)
    got = {name: (main if metric == claim["metric"] else _verdict(claim, results, metric))
           for name, metric in readings.items()}
    tested = {name: v for name, v in got.items() if v.verdict != NOT_TESTED}
    if len(tested) < 2:
        return ""
    each = "; ".join(f"{name}: {v.verdict}" + (f" ({v.ours.mean:.4g}, {v.direction})" if v.ours else "")
                     for name, v in got.items())
    same = len({v.verdict for v in tested.values()}) == 1
    head = (f"holds under every reading ({len(tested)})" if same and main.verdict == REPRODUCED else
            f"the same under every reading ({len(tested)})" if same else "depends on the reading")
    return f"{head}: {each}"


def assess(claims: pd.DataFrame, results: pd.DataFrame) -> pd.DataFrame:
    """Every claim with ours (and its per-seed values), the tolerance, the verdict, its reason, the
    direction of ours against the paper's value and the verdict under each reading (one row per claim)."""
    rows = []
    for _, c in claims.iterrows():
        v = verdict_of(c, results)
        rows.append({**c.to_dict(), "ours": v.ours.text() if v.ours else "—",
                     "ours_mean": v.ours.mean if v.ours else None, "ours_n": v.ours.n if v.ours else 0,
                     "ours_half_width_95": v.ours.half_width if v.ours else None,
                     "ours_df": v.ours.df if v.ours else None,
                     "per_seed": v.ours.per_seed() if v.ours else "",
                     "tolerance": v.tolerance, "verdict": v.verdict, "reason": v.reason, "direction": v.direction,
                     "caveat": v.caveat,
                     "readings": under_readings(c, results, v)})
    return pd.DataFrame(rows, columns=[*claims.columns, "ours", "ours_mean", "ours_n", "ours_half_width_95", "ours_df",
                                       "per_seed", "tolerance", "verdict", "reason", "direction", "caveat",
                                       "readings"])


def summary(assessed: pd.DataFrame) -> pd.Series:
    """How many claims got each verdict."""
    return assessed["verdict"].value_counts().reindex(list(VERDICTS), fill_value=0)
