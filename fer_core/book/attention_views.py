"""Attention records in the book: a run's maps and scores shown in a chapter (:func:`show`), and
the records of many runs side by side (:func:`gallery`, :func:`score_table`) for the attention
chapter. The records themselves are :mod:`fer_core.explain.attention`'s; the faces are read back from
the run's data when it is on this machine (:func:`with_faces`)."""
from __future__ import annotations

from dataclasses import replace

import pandas as pd

from ..explain.attention import Attention, scores
from ..runs import ledger
from ..runs.records import RunRecord
from ..runs.runner import run_data
from . import plots


def with_faces(record: RunRecord, att: Attention | None = None) -> Attention:
    """A run's attention record with its faces read from the run's data (checked by fingerprint);
    without them when the data is not on this machine."""
    att = att or Attention.read(record.path)
    try:
        test = run_data(record).select("test")
    except (FileNotFoundError, ValueError, KeyError):  # the data set is not here (or not the run's)
        return att
    return replace(att, faces=test.images[att.arrays["ids"]])


def show(record: RunRecord, title: str, note: str | None = None, *, learned: bool = True) -> Attention | None:
    """A run's attention record in a notebook: the maps of a face per class, then every score;
    returns the record shown (None without one). ``learned=False`` says plainly that the model has
    not learned (a pipeline check's)."""
    from IPython.display import Markdown, display

    try:
        att = with_faces(record)
    except FileNotFoundError as e:
        print(f"no attention record: {e}")
        return None
    if not learned:
        display(Markdown(f"> **These maps come from a model that has not learned**: the pipeline check's, trained "
                         f"for {record.metrics['epochs_run']} epoch(s) on a subset (test accuracy "
                         f"{record.metrics['accuracy']:.1%}). They show that every method runs on this model, not "
                         f"where the paper's model looks."))
    plots.show(plots.attention_grid(att, title, note))
    table = scores(att)
    if len(table):
        meta = att.meta
        sanity = ("sanity: rank correlation with the maps of the model randomised from the top" if meta["sanity_faces"]
                  else "the sanity check is off in this profile")
        print(f"{meta['faces']} test faces of {record.path.name}; deletion/insertion: {meta['curve_steps']} steps to "
              f"{meta['curve_baseline']}; {sanity}" + (f"; [{note}]" if note else ""))
        display(table.round(3))
    return att


def gallery(runs: pd.DataFrame) -> dict[str, Attention]:
    """``paper/row -> Attention`` for the first run (seed, fold) of every row of ``runs`` (ledger
    rows) whose record has an attention file."""
    out: dict[str, Attention] = {}
    for _, r in runs.iterrows():
        key = f"{r['paper']}/{r['variant']}"
        if key in out:
            continue
        try:
            out[key] = with_faces(ledger.record_at(r["record"]))
        except FileNotFoundError:
            continue
    return out


def score_table(atts: dict[str, Attention]) -> pd.DataFrame:
    """Every method's scores for every model of a gallery, one row per (model, method)."""
    parts = {key: scores(att) for key, att in atts.items()}
    parts = {k: v for k, v in parts.items() if len(v)}
    return pd.concat(parts, names=["model", "method"]) if parts else pd.DataFrame()
