"""The front chapter's answer: the verdict counts per paper, every claim with its verdict, the
verdicts as data (``results/verdicts.csv`` and ``.json``), and what waits for a GPU."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..paths import ROOT, bench_file
from ..schedule.slices import GPU_HOURS
from ..verdicts import rule as verdicts
from ..verdicts.claims import PAPERS, read_claims
from .published import published
from .tables import SYMBOL, ZERO_TOO, grouped, metric_name, verdict_table


#: the verdicts as data (``results/verdicts.csv`` and ``.json``), what the front chapter shows
VERDICTS_FILE = ROOT / "results" / "verdicts"


EXPORT_COLUMNS = ["paper", "table", "label", "row", "versus", "dataset", "split", "metric", "relation", "value_text",
                  "unit", "ours", "ours_mean", "ours_half_width_95", "ours_n", "ours_df", "per_seed", "verdict",
                  "direction", "caveat", "readings", "reason", "tolerance", "not_comparable", "note", "source", "quote",
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


#: the README's block of answers, rewritten from results/verdicts.csv by ``python -m fer_core.book verdicts``
README = ROOT / "README.md"
ANSWERS_BEGIN, ANSWERS_END = "<!-- answers: written by python -m fer_core.book verdicts -->", "<!-- answers end -->"


def answers_markdown(table: pd.DataFrame) -> str:
    """The answers in short, one paragraph per paper with a claim answered (as the README gives them):
    its verdict counts, then each answered claim with ours, the paper's value and where ours lies,
    from the verdicts' table (``results/verdicts.csv`` as read with ``keep_default_na=False``)."""
    out = []
    for paper, claims in table.groupby("paper", sort=False):
        answered = claims[claims["verdict"] != verdicts.NOT_TESTED]
        if not len(answered):
            continue
        counts = claims["verdict"].value_counts()
        head = ", ".join(f"{counts[v]} {v}" for v in verdicts.VERDICTS if counts.get(v, 0))
        parts = []
        for verdict in [v for v in verdicts.VERDICTS if v != verdicts.NOT_TESTED]:
            these = answered[answered["verdict"] == verdict]
            said = [_answer(c) for _, c in these.iterrows()]
            if said:
                why = " (the paper's data or classes are not the book's: ours for reference)" \
                    if verdict == verdicts.NOT_COMPARABLE else ""
                parts.append(f"*{verdict}*{why}: " + "; ".join(said))
        out.append(f"- **{PAPERS[paper].split(',')[0]}** ({len(claims)} claims: {head}). " + ". ".join(parts) + ".")
    return "\n".join(out)


DATA_NAMES = {"fer2013": "FER2013", "ckplus": "CK+"}


def _answer(c: pd.Series) -> str:
    """One answered claim in words: what, ours against the paper's value, where ours lies."""
    paper = f"{c['paper_value']}{'' if c['unit'] in ('', 'images') else ' ' + c['unit']}"
    what = f"{c['label']} ({DATA_NAMES.get(c['dataset'], c['dataset'])}, {metric_name(c['metric'])})"
    if not c["ours_n"]:
        return f"{what}: paper {paper}, not run"
    return (f"{what}: ours {c['ours']} against {paper}, {c['direction']}"
            + (f"; {ZERO_TOO}" if c["caveat"] else "")
            + (f"; {c['readings'].split(':')[0]}" if c["readings"] else ""))


def write_readme_answers(table: pd.DataFrame, readme: Path = README) -> Path:
    """Rewrite the README's block of answers (between its two markers) from the verdicts' table."""
    text = readme.read_text()
    head, begin, rest = text.partition(ANSWERS_BEGIN)
    _, end, tail = rest.partition(ANSWERS_END)
    if not begin or not end:
        raise SystemExit(f"error: {readme} lacks the markers {ANSWERS_BEGIN!r} ... {ANSWERS_END!r}: put them "
                         "where the answers belong")
    readme.write_text(f"{head}{begin}\n{answers_markdown(table)}\n{end}{tail}")
    return readme


def grouped_quotes(claims: pd.DataFrame, assessed: pd.DataFrame) -> list[str]:
    """The quote of each grouped claim: its sources' quotes, as the claims file has them."""
    key = ["paper", "row", "versus", "dataset", "metric", "relation", "value"]
    quotes = claims.groupby(key, sort=False, dropna=False)["quote"].agg(lambda q: " | ".join(dict.fromkeys(q)))
    return [quotes.get(tuple(c[k] for k in key), "") for _, c in assessed.iterrows()]


def write_verdicts(published_dir: str | Path | None = None, path: Path = VERDICTS_FILE,
                   readme: Path | None = README) -> list[Path]:
    """``results/verdicts.csv`` and ``.json`` from :func:`verdicts_export`, and the README's answers
    from what was written (``readme=None``: not)."""
    table = verdicts_export(published_dir)
    csv_path, json_path = path.with_suffix(".csv"), path.with_suffix(".json")
    table.to_csv(csv_path, index=False)
    json_path.write_text(table.to_json(orient="records", indent=1, force_ascii=False) + "\n")
    written = [csv_path, json_path]
    if readme is not None:
        written.append(write_readme_answers(pd.read_csv(csv_path, keep_default_na=False), readme))
    return written


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
    counts["claims"] = counts.sum(axis=1)
    return counts.reindex([PAPERS[p].split(",")[0] for p in PAPERS]), table


def gpu_wait(path: str | Path | None = None) -> pd.DataFrame | None:
    """Why the GPU queue's claims are not tested, in numbers: per item of ``params/queues/gpu.yaml``
    its runs, the hours this CPU would need and what they are estimated from (the measured cases, the
    machine that measured them where it is not the one named), and the minutes on a GPU once one has
    been measured (``python -m fer_core queue gpu --status --measure --save``,
    ``results/bench/queue_gpu.csv``); None when that file is not there. When and on which machine
    the table was estimated is said once, in ``attrs["caption"]``."""
    path = Path(path) if path is not None else bench_file("queue_gpu")
    if not path.is_file():
        return None
    t = pd.read_csv(path)
    t = t.assign(**{"days here (at most)": (t["hours left (at most)"] / 24).round(1)})
    if GPU_HOURS in t:  # once a GPU's speed is measured: what the same item takes there
        t = t.assign(**{"GPU minutes (at most)": (t[GPU_HOURS] * 60).round(0)})
    if "speed from" in t:
        t["speed from"] = t["speed from"].fillna("").map(_bases)
    out = t[["item", "slice", "runs", "finished", "hours left (at most)", "days here (at most)",
             *(["GPU minutes (at most)"] if GPU_HOURS in t else []),
             *(["speed from"] if "speed from" in t else [])]].set_index("item")
    said = {c: ", ".join(dict.fromkeys(t[c].astype(str).str[:10 if c == "commit" else None])) if c in t else "?"
            for c in ("estimated", "machine", "commit")}
    out.attrs["caption"] = (f"Estimated {said['estimated']} on {said['machine']}, at commit {said['commit']}; "
                            "hours at most (early stopping may end a run sooner).")
    return out


def _bases(text: str) -> str:
    """An item's speed bases, shorter: ``measured (a); measured (b); scaled from c`` -> ``measured: a,
    b; scaled from c``."""
    measured = [b[len("measured ("):-1] for b in text.split("; ") if b.startswith("measured (")]
    rest = [b for b in text.split("; ") if b and not b.startswith("measured (")]
    return "; ".join(([f"measured: {', '.join(measured)}"] if measured else []) + rest)
