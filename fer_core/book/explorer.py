"""The front chapter's claim explorer: every claim in one interactive table (itables, DataTables
shipped with the page: it works offline in the static HTML) that a reader filters by paper,
verdict, data set and metric, sorts and searches; each row opens to the paper's words and line,
the protocol note, the runs it rests on (links to their record folders), the command that re-makes
them and that command's hours on this CPU (from the saved queue statuses,
``results/bench/queue_<name>.csv``).

It is built from :func:`fer_core.book.chapter.verdicts_export`, the code that writes
``results/verdicts.csv``: the explorer, the download and the static table cannot disagree.
"""
from __future__ import annotations

import html as html_text
import os
from pathlib import Path

import pandas as pd

from ..paths import BENCH, project_path
from ..verdicts.claims import PAPERS, row_ref, short_source
from .chapter import CHAPTERS
from .front import verdicts_export
from .tables import SYMBOL, claim_text, metric_name, paper_value

#: the columns a reader filters on (a search pane each)
FILTERS = ["paper", "verdict", "data set", "metric"]
#: where a record's link points: FER_REPO_URL (e.g. https://github.com/<owner>/<repo>, set by the
#: publishing workflow) with /tree/<FER_REPO_REF, default main>/<record> (the commit the book is built
#: from: a record is committed after the code commit it names), else the record's folder in this
#: checkout, relative to a chapter's page in book/_build/html/executed/
LOCAL_PREFIX = "../../../../"


def record_link(record: str, base: str | None = None) -> str:
    base = base if base is not None else os.environ.get("FER_REPO_URL", "").rstrip("/")
    href = f"{base}/tree/{os.environ.get('FER_REPO_REF') or 'main'}/{record}" if base else LOCAL_PREFIX + record
    return f'<a href="{html_text.escape(href)}">{html_text.escape(Path(record).name)}</a>'


def command(c: pd.Series) -> str:
    """The command that makes (or reads back) the runs a claim rests on, three seeds as the book's rows have."""
    refs = [c["row"]] + [v for v in str(c["versus"]).split(";") if v]
    by_plan: dict[str, list[str]] = {}
    for ref in refs:
        plan, variant = row_ref(c["paper"], ref)
        by_plan.setdefault(plan, []).append(variant)
    return "; ".join(f"python -m fer_core run --paper {plan} --rows {','.join(dict.fromkeys(rows))} --seeds 0-2 "
                     f"--data-dir DATA" for plan, rows in by_plan.items())


def queue_hours(folder: str | Path | None = None) -> pd.DataFrame:
    """The saved queue statuses' items: queue, item, slice, hours left (at most, on the machine
    that saved it), the day it was estimated."""
    folder = Path(folder) if folder is not None else project_path(BENCH)
    tables = []
    for path in sorted(folder.glob("queue_*.csv")):
        t = pd.read_csv(path, dtype={"slice": str})
        t["queue"] = path.stem[len("queue_"):]
        tables.append(t)
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(
        columns=["queue", "item", "slice", "hours left (at most)", "estimated"])


def hours_text(c: pd.Series, items: pd.DataFrame) -> str:
    """The queue items that make a claim's rows, with their hours left; or that none holds them."""
    out = []
    for ref in [c["row"]] + [v for v in str(c["versus"]).split(";") if v]:
        plan, variant = row_ref(c["paper"], ref)
        for _, it in items.iterrows():
            head, _, rest = str(it["slice"]).partition(": ")
            rows = rest.split(" ", 1)[0].split(",")
            if head == plan and variant in rows:
                out.append(f"{it['queue']} queue item {it['item']} ({it['slice']}): "
                           f"{float(it['hours left (at most)']):.1f} h left at most, as of {it.get('estimated', '?')}")
    return "<br>".join(dict.fromkeys(html_text.escape(o) for o in out)) or "in no saved queue status"


def details(c: pd.Series, items: pd.DataFrame) -> str:
    """What a row opens to."""
    def esc(x) -> str:
        return html_text.escape("" if pd.isna(x) else str(x))
    records = [r for r in str(c["records"] or "").split(";") if r and r != "nan"]
    runs = ", ".join(record_link(r) for r in records) or "none published"
    if records:
        runs += f" (made by code commit {esc(c['commits'])})"
    parts = [f"<b>The paper</b>: “{esc(c['quote'])}” ({esc(short_source(c['source']))}; full source: "
             f"{esc(c['source'])}), tested in <a href=\"{CHAPTERS[c['paper']]}.html\">chapter "
             f"{CHAPTERS[c['paper']][:2]}</a>",
             f"<b>Protocol</b>: {esc(c['note']) or 'as the claims file states'}",
             f"<b>Why this verdict</b>: {esc(c['reason'])}"]
    if c.get("readings") and not pd.isna(c["readings"]):
        parts.append(f"<b>Under each reading</b>: {esc(c['readings'])}")
    if str(c["metric"]).startswith("model:"):  # counted from the registered model: no run
        parts.append("<b>Re-make</b>: <code>python -m fer_core.book verdicts</code> (counted, no training)")
    else:
        parts += [f"<b>Runs</b> ({len(records)}): {runs}",
                  f"<b>Re-make</b>: <code>{esc(command(c))}</code>",
                  f"<b>Hours on this CPU</b>: {hours_text(c, items)}"]
    return f"<details><summary>open</summary>{'<br>'.join(parts)}</details>"


def explorer_table(published_dir: str | Path | None = None, queues: str | Path | None = None) -> pd.DataFrame:
    """One row per claim (as ``results/verdicts.csv``), the columns a reader filters and sorts on,
    and ``details`` (HTML) that opens to the rest."""
    ex = verdicts_export(published_dir)
    ex = ex.iloc[sorted(range(len(ex)), key=lambda i: ex["verdict"].iloc[i] == "not tested")]  # tested first
    items = queue_hours(queues)
    return pd.DataFrame({
        "paper": [PAPERS[p].split(",")[0] for p in ex["paper"]],
        "claim": ex["label"],
        "data set": ex["dataset"],
        "metric": [metric_name(m) for m in ex["metric"]],
        "measured as": [claim_text(c) for _, c in ex.assign(value=0.0).iterrows()],
        "paper's value": [paper_value(c) for _, c in ex.rename(columns={"paper_value": "value_text"}).iterrows()],
        "ours": [f"{o} [{s}]" if isinstance(s, str) and s else o for o, s in zip(ex["ours"], ex["per_seed"])],
        "n": ex["ours_n"],
        "verdict": ex["verdict"].map(SYMBOL),
        "details": [details(c, items) for _, c in ex.iterrows()],
    }).reset_index(drop=True)


def show(table: pd.DataFrame):
    """The explorer in a notebook: search panes on FILTERS above the table, search and sort, every
    row, the DataTables library embedded (no request leaves the page)."""
    import itables

    itables.init_notebook_mode(all_interactive=False, connected=False)  # only this table: the others stay static
    panes = [table.columns.get_loc(c) for c in FILTERS]
    return itables.show(table, table_id="claim-explorer", allow_html=True, paging=False, scrollY="70vh", scrollX=True,
                        scrollCollapse=True, classes="display compact claim-explorer",
                        layout={"top1": "searchPanes"},
                        searchPanes={"columns": panes, "layout": "columns-4", "cascadePanes": True,
                                     "initCollapsed": False},
                        order=[], maxBytes=0, showIndex=False)
