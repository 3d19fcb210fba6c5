"""Does it hold up? One rule gives every claim of ``book/claims.csv`` a verdict from the runs.

:data:`RULE` states it (the book prints it once); :func:`judge` applies it to one claim and one
estimate; :func:`measure` turns the published runs of a claim's row(s) into that estimate;
:func:`assess` does both for a table of claims.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .claims import row_ref
from .experiments import read_plan

REPRODUCED, NOT_REPRODUCED, NOT_TESTED = "reproduced", "not reproduced", "not tested"
FLOOR_POINTS = 1.0     # percentage points: the tolerance of a single run's claim in %
FLOOR_RELATIVE = 0.02  # share of the claimed value, for claims that are not percentages
SPREAD = 2.0           # how many of our standard deviations the tolerance adds

RULE = f"""\
**The rule.** *Ours* is the mean over the paper-profile runs of a row: over seeds on FER2013, over
folds (and seeds) on CK+, with the sample standard deviation *s* of those runs (0 for a single run).
A relative claim compares two rows: ours is the difference of their means, with
*s* = √(*s*<sub>A</sub>² + *s*<sub>B</sub>²).

- A claim of a **value** (the paper reports *c*) is **{REPRODUCED}** when ours lies within
  *t* = *f* + {SPREAD:g}*s* of *c*, where the floor *f* is {FLOOR_POINTS:g} percentage point for percentages and
  {FLOOR_RELATIVE:.0%} of *c* for other quantities (losses, parameter counts). The tolerance grows with our spread.
- A claim of a **bound or an ordering** (above *c*, e.g. "beats every baseline": a difference above 0) is
  **{REPRODUCED}** when ours clears *c* by more than {SPREAD:g}*s* (below *c*: falls short of it by more than
  {SPREAD:g}*s*). Against several rows, it must hold against each.
- Otherwise it is **{NOT_REPRODUCED}**.
- A claim is **{NOT_TESTED}** when no paper-profile run on real data measures it: the book ran only its
  smoke or test profile, or on the synthetic set, or not that row, or the claim is on data or a method
  this book cannot run (a private data set, an ensemble, another paper's method). A cross-validated row
  counts only with all its folds published for a seed: a paper's CK+ number is one accuracy over its
  whole protocol, and a few folds are not that.
"""


@dataclass(frozen=True)
class Estimate:
    """Ours: a mean with the sample standard deviation of its ``n`` runs (0 when ``n`` is 1)."""

    mean: float
    std: float
    n: int

    @classmethod
    def of(cls, values) -> "Estimate":
        v = np.asarray(list(values), dtype=float)
        v = v[~np.isnan(v)]
        if len(v) == 0:
            raise ValueError("no values to estimate from")
        return cls(float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0, int(len(v)))

    def minus(self, other: "Estimate") -> "Estimate":
        return Estimate(self.mean - other.mean, math.hypot(self.std, other.std), min(self.n, other.n))

    def text(self, digits: int = 2) -> str:
        return f"{self.mean:.{digits}f}" + (f" ± {self.std:.{digits}f} (n={self.n})" if self.n > 1 else "")


@dataclass(frozen=True)
class Verdict:
    verdict: str
    reason: str
    ours: Estimate | None = None
    tolerance: float | None = None


def tolerance(claimed: float, unit: str, std: float) -> float:
    floor = FLOOR_POINTS if unit in ("%", "points") else FLOOR_RELATIVE * abs(claimed)
    return floor + SPREAD * std


def judge(relation: str, claimed: float, ours: Estimate, unit: str = "%") -> Verdict:
    """The rule (:data:`RULE`) for one claim and our estimate of it."""
    if relation == "=":
        t = tolerance(claimed, unit, ours.std)
        gap = ours.mean - claimed
        ok = abs(gap) <= t
        why = f"ours is {gap:+.3g} {unit or ''} from the paper's value; tolerance ±{t:.3g}".replace("  ", " ")
        return Verdict(REPRODUCED if ok else NOT_REPRODUCED, why, ours, t)
    if relation in (">", "<"):
        margin = SPREAD * ours.std
        clear = ours.mean - claimed if relation == ">" else claimed - ours.mean
        ok = clear > margin
        side = "above" if relation == ">" else "below"
        why = f"ours is {ours.mean:.3g}, {side} {claimed:g} by {clear:+.3g} (needs more than {margin:.3g})"
        return Verdict(REPRODUCED if ok else NOT_REPRODUCED, why, ours, margin)
    raise ValueError(f"unknown relation {relation!r}")


# -- from runs to an estimate ------------------------------------------------------------------
def _scale(unit: str) -> float:
    return 100.0 if unit in ("%", "points") else 1.0


def values_of(runs: pd.DataFrame, metric: str) -> list[float]:
    """One value per run: a ledger column, or a value read from the run's record."""
    if ":" not in metric:
        if metric not in runs.columns:
            raise KeyError(f"metric {metric!r} is neither a ledger column nor 'last:', 'first:' or 'metrics:'")
        return runs[metric].astype(float).tolist()
    from . import ledger

    kind, _, what = metric.partition(":")
    out = []
    for path in runs["record"]:
        record = ledger.record(path)
        if kind in ("last", "first"):
            column = record.history[what]
            out.append(float(column.iloc[-1 if kind == "last" else 0]))
        elif kind == "metrics":
            value = record.metrics
            for key in what.split("."):
                value = value[key]
            out.append(float(value))
        else:
            raise KeyError(f"metric {metric!r}: unknown kind {kind!r}")
    return out


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


def measure(claim: pd.Series | dict, results: pd.DataFrame) -> Estimate | str:
    """Ours for one claim: an :class:`Estimate`, or the reason it is not tested."""
    if not claim["row"]:
        return claim["note"] or "this book runs nothing for it"
    refs = [claim["row"]] + [v for v in claim["versus"].split(";") if v]
    estimates = []
    for ref in refs:
        paper, variant = row_ref(claim["paper"], ref)
        runs = published_runs(results, paper, variant, claim["dataset"])
        if len(runs) == 0:
            return f"no paper-profile run of {ref} on {claim['dataset']}"
        runs, missing = complete_folds(runs, paper)
        if len(runs) == 0:
            return f"{ref} on {claim['dataset']}: {missing} published so far (the protocol needs them all)"
        estimates.append(Estimate.of(np.asarray(values_of(runs, claim["metric"])) * _scale(claim["unit"])))
    return estimates[0] if len(estimates) == 1 else [estimates[0].minus(b) for b in estimates[1:]]


def verdict_of(claim: pd.Series | dict, results: pd.DataFrame) -> Verdict:
    """The verdict of one claim against the published runs ``results`` (ledger rows)."""
    ours = measure(claim, results)
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
    return Verdict(NOT_REPRODUCED if failed else REPRODUCED, reason, worst.ours, worst.tolerance)


def assess(claims: pd.DataFrame, results: pd.DataFrame) -> pd.DataFrame:
    """Every claim with ours, the tolerance, the verdict and its reason (one row per claim)."""
    rows = []
    for _, c in claims.iterrows():
        v = verdict_of(c, results)
        rows.append({**c.to_dict(), "ours": v.ours.text() if v.ours else "—",
                     "ours_mean": v.ours.mean if v.ours else None, "ours_n": v.ours.n if v.ours else 0,
                     "tolerance": v.tolerance, "verdict": v.verdict, "reason": v.reason})
    return pd.DataFrame(rows, columns=[*claims.columns, "ours", "ours_mean", "ours_n", "tolerance", "verdict",
                                       "reason"])


def summary(assessed: pd.DataFrame) -> pd.Series:
    """How many claims got each verdict."""
    return assessed["verdict"].value_counts().reindex([REPRODUCED, NOT_REPRODUCED, NOT_TESTED], fill_value=0)
