"""A chapter's paragraphs written from its runs and its plan: the banner (which numbers the chapter
shows), the summary of its verdicts, the plan's deviations and protocol notes, and what FER2013's
training twins do to the published scores."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..data import SYNTHETIC_NOTE, duplicates
from ..runs import ledger
from ..schedule.plans import Plan
from ..verdicts import rule as verdicts
from .published import ChapterRuns, dirty_records
from .tables import claim_text, grouped, paper_value


def banner_text(ch: ChapterRuns) -> str:
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
    """Counts per verdict of a paper's claims (data descriptions aside), the ``largest`` misses (the
    judged claims whose ours lies the most tolerances of the rule from the paper's value), each
    reproduced difference the runs do not tell from none, and each *not comparable* claim that has
    ours beside it: the value, how far from the paper's, and why it is only a reference."""
    claims = claims[claims["metric"] != "images"]
    assessed = verdicts.assess(grouped(claims), runs)
    counts = assessed["verdict"].value_counts()
    head = ", ".join(f"{counts[v]} {v}" for v in verdicts.VERDICTS if counts.get(v, 0))
    lines = [f"**This paper's {len(assessed)} claims:** {head}."]
    judged = assessed[assessed["verdict"].isin([verdicts.REPRODUCED, verdicts.NOT_REPRODUCED])
                      & (assessed["relation"] == "=") & assessed["ours_mean"].notna()].copy()
    # how many tolerances ours lies from the paper's value: one measure for every unit
    judged["times"] = [abs(m - v) / t if t else float("inf") for m, v, t in
                       zip(judged["ours_mean"], judged["value"], judged["tolerance"])]
    misses = judged[judged["times"] > 1].sort_values("times", ascending=False).head(largest)
    weak = assessed[assessed["caveat"] != ""]
    beside = assessed[(assessed["verdict"] == verdicts.NOT_COMPARABLE) & assessed["ours_mean"].notna()]
    for head, rows, after in (
            ("The largest misses (in tolerances of the rule: how far ours lies from the paper's value)", misses,
             lambda c: f", {c['times']:.1f} times the tolerance ±{c['tolerance']:.3g}"),
            ("Reproduced, but the runs would pass no difference as well (the rule's tolerance holds 0: they do not "
             "tell the paper's difference from none)", weak,
             lambda c: f", and 0 ({abs(c['ours_mean']):.2f} away) within the tolerance ±{c['tolerance']:.3g} too"),
            ("Not comparable, ours beside the paper's for reference only (the paper measured a task the book's "
             "runs do not share)", beside, lambda c: f"; {c['not_comparable']}")):
        if len(rows):
            lines.append(f"\n{head}:\n")
            lines += [f"- {c['label']}, {claim_text(c)}: paper {paper_value(c)}, ours {c['ours']}: {c['direction']}"
                      f"{after(c)}" for _, c in rows.iterrows()]
    return "\n".join(lines)


def notes_markdown(plan: Plan) -> str:
    out = []
    if plan.deviations:
        out.append("**Deviations and interpretations**\n\n" + "\n".join(f"- {d}" for d in plan.deviations))
    if plan.protocol:
        out.append("**Protocol notes**\n\n" + "\n".join(f"- {d}" for d in plan.protocol))
    return "\n\n".join(out) or "(no notes)"


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
