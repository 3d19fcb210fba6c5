"""Run the paper notebooks with papermill and build the HTML book.

    python -m fer_core.book run --profile smoke [--papers 00,01] [--seeds N] [--data-dir DIR] [--jobs 2]
                                [--set key=value ...]
    python -m fer_core.book build
    python -m fer_core.book all --profile smoke      # what `make book` does
    python -m fer_core.book refresh [--papers 90]    # store the checked outputs in notebooks/ (and the verdicts)
    python -m fer_core.book verdicts                 # results/verdicts.csv and .json: the verdicts as data
    python -m fer_core.book toc                      # book/_toc.yml, the paper chapters from the plans
    python -m fer_core.book new-paper <paper> --number NN --name <slug> --title "..." --text <file>

``run`` executes every ``notebooks/NN_*.ipynb`` (or those named by ``--papers``), each in its own
papermill process, into ``book/executed/``; it goes on past a failed notebook, keeps the failed
executed notebook (its traceback is in it), and ends with a summary. ``build`` compiles the
executed notebooks into ``book/_build/html`` with jupyter-book and prints the index.html path.
``refresh`` runs the notebooks as the test suite does (``test`` profile, temporary folders) and
stores in ``notebooks/`` the outputs of the cells marked ``# NBVAL_CHECK_OUTPUT``, which
``pytest --nbval-lax`` compares; every other output stays out of the stored notebooks.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..paths import ROOT
from ..verdicts.papers import all_papers, forget
from .front import write_verdicts
from .new_paper import new_paper

NOTEBOOKS = ROOT / "notebooks"
BOOK = ROOT / "book"
EXECUTED = BOOK / "executed"


@dataclass
class Outcome:
    notebook: str
    ok: bool
    seconds: float
    output: Path
    error: str = ""


def discover(papers: list[str] | None = None, folder: Path = NOTEBOOKS) -> list[Path]:
    """Notebooks ``NN_name.ipynb`` in order; ``papers`` selects by number or full stem."""
    found = sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb"))
    if not papers:
        return found
    chosen = [p for p in found if p.stem[:2] in papers or p.stem in papers]
    missing = [k for k in papers if not any(p.stem[:2] == k or p.stem == k for p in found)]
    if missing:
        raise SystemExit(f"error: no notebook for {missing} in {folder}; found {[p.stem for p in found]}")
    return chosen


def reads_others(nb: Path) -> bool:
    """Whether a chapter reads the runs of the others (it then runs after them)."""
    import json

    return bool(json.loads(nb.read_text()).get("metadata", {}).get("fer_book", {}).get("after_chapters"))


def default_jobs() -> int:
    """Notebooks run at once by default: two where there are two cores or more. A chapter's
    pipeline check is small enough that a second notebook on the second core (each with its own
    torch thread) does more than one notebook's two threads, which wait on each other."""
    return min(2, os.cpu_count() or 1)


def execute(nb: Path, out_dir: Path, parameters: dict, timeout: int | None = None, threads: int | None = None
            ) -> Outcome:
    """One notebook in its own papermill process, executed with the project root as cwd; ``threads``
    (torch's and OpenMP's) unless ``OMP_NUM_THREADS`` is set already."""
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / nb.name
    cmd = [sys.executable, "-m", "papermill", str(nb), str(out), "--cwd", str(ROOT), "--no-progress-bar",
           "--kernel", "python3", "-y", yaml.safe_dump(parameters)]
    if timeout:
        cmd += ["--execution-timeout", str(timeout)]
    t0 = time.perf_counter()
    # OpenMP threads that wait passively leave the cores to a busy neighbour (a queue beside the build):
    # measured here, a ResNet-18 step beside one busy process ran 39 img/s with the default, 85 with PASSIVE
    env = {**os.environ, "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}
    if threads and "OMP_NUM_THREADS" not in env:
        env["OMP_NUM_THREADS"] = str(threads)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    secs = time.perf_counter() - t0
    if out.is_file():
        for_readers(out)
    if proc.returncode == 0:
        return Outcome(nb.stem, True, secs, out)
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    return Outcome(nb.stem, False, secs, out, "\n".join(lines[-6:]) or f"papermill exit code {proc.returncode}")


HIDDEN = {"parameters", "injected-parameters"}  # papermill's tags: the notebook's and the injected values


def for_readers(executed: Path) -> None:
    """Tag an executed notebook's plumbing for jupyter-book, so the HTML opens with prose: the
    parameter cells (the notebook's and papermill's injected one) and cells of imports alone are
    removed, the chapter's set-up cell and the checked cells (``# NBVAL_CHECK_OUTPUT``) show their
    output without their code. The notebooks in ``notebooks/`` keep everything."""
    import nbformat

    nb = nbformat.read(executed, as_version=4)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        tags = set(cell.metadata.get("tags", []))
        lines = [ln for ln in cell.source.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
        imports_only = bool(lines) and all(ln.startswith(("import ", "from ")) for ln in lines)
        if tags & HIDDEN or (imports_only and not cell.get("outputs")):
            tags.add("remove-cell")
        elif checked(cell) or "Chapter.open(" in cell.source or imports_only:
            tags.add("remove-input")
        cell.metadata["tags"] = sorted(tags)
    nbformat.write(nb, executed)


def run(profile: str, papers: list[str] | None = None, jobs: int | None = None, overrides: list[str] = (),
        out_dir: Path = EXECUTED, folder: Path = NOTEBOOKS, timeout: int | None = None,
        seeds: int | None = None, data_dir: str | None = None) -> list[Outcome]:
    """Execute the notebooks; every one gets the parameters ``profile``, ``overrides`` and
    ``progress=False``, and ``seeds`` / ``data_dir`` when given. ``jobs`` notebooks run at once
    (default: :func:`default_jobs`), each with its share of the cores as threads."""
    notebooks = discover(papers, folder)
    jobs = max(1, jobs or default_jobs())
    threads = max(1, (os.cpu_count() or 1) // jobs)
    params = {"profile": profile, "overrides": list(overrides), "progress": False}
    if seeds is not None:
        params["seeds"] = seeds
    if data_dir is not None:
        params["data_dir"] = str(data_dir)
    print(f"Running {len(notebooks)} notebook(s) in profile {profile!r}, {jobs} at once with {threads} thread(s) "
          f"each -> {out_dir}", flush=True)
    outcomes: list[Outcome] = []
    # chapters that read the other chapters' runs (notebook metadata fer_book.after_chapters) run last
    waves = [[nb for nb in notebooks if not reads_others(nb)], [nb for nb in notebooks if reads_others(nb)]]
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for wave in waves:
            futures = {pool.submit(execute, nb, out_dir, params, timeout, threads): nb for nb in wave}
            for fut in as_completed(futures):
                o = fut.result()
                outcomes.append(o)
                print(f"[{len(outcomes)}/{len(notebooks)}] {'ok    ' if o.ok else 'FAILED'} {o.notebook} "
                      f"({o.seconds:.0f} s)", flush=True)
    outcomes.sort(key=lambda o: o.notebook)
    print("\nSummary:")
    for o in outcomes:
        print(f"  {'ok    ' if o.ok else 'FAILED'} {o.notebook:32s} {o.seconds:6.0f} s  {o.output}")
        if not o.ok:
            print("         " + o.error.replace("\n", "\n         "))
    failed = [o for o in outcomes if not o.ok]
    print(f"{len(outcomes) - len(failed)} ran, {len(failed)} failed." +
          (" Failed notebooks are kept with their traceback at the paths above." if failed else ""), flush=True)
    return outcomes


def build(book: Path = BOOK) -> Path:
    """Compile the executed notebooks into HTML (plotly.js shipped in _static, no CDN)."""
    import plotly

    static = book / "_static"
    static.mkdir(exist_ok=True)
    shutil.copy(Path(plotly.__file__).parent / "package_data" / "plotly.min.js", static / "plotly.min.js")
    jb = Path(sys.executable).parent / "jupyter-book"
    if subprocess.run([str(jb), "build", str(book)]).returncode != 0:
        raise SystemExit(f"error: jupyter-book could not build {book} (its messages are above); the executed "
                         f"notebooks are in {EXECUTED}.")
    index = book / "_build" / "html" / "index.html"
    if not index.is_file():
        raise SystemExit(f"error: jupyter-book finished but {index} is missing")
    return index


#: the table of contents around the paper chapters (which come from the plans: fer_core.verdicts.papers)
TOC_PARTS = [("Overview", ["90_does_it_hold_up", "91_methods_and_deviations"]), ("Foundation", ["00_foundation"]),
             ("Without a GPU", ["07_cpu_fer2013"]), ("The papers", None), ("Across the papers", ["06_attention"])]


def toc() -> str:
    """``book/_toc.yml``: the fixed parts, and "The papers" as the plans list them."""
    lines = ["format: jb-book", "root: intro", "parts:"]
    for caption, chapters in TOC_PARTS:
        chapters = chapters if chapters is not None else [p.chapter for p in all_papers()]
        lines += [f"  - caption: {caption}", "    chapters:", *(f"      - file: executed/{c}" for c in chapters)]
    return "\n".join(lines) + "\n"


CHECK = "# NBVAL_CHECK_OUTPUT"


def checked(cell) -> bool:
    return cell.cell_type == "code" and any(line.strip() == CHECK for line in cell.source.splitlines())


def refresh(papers: list[str] | None = None, folder: Path = NOTEBOOKS) -> list[Path]:
    """Execute the notebooks in the test profile (temporary results and checkpoints) and store the
    outputs of their checked cells in ``folder``; other outputs are cleared. Returns the notebooks
    written."""
    import nbformat

    written = []
    with tempfile.TemporaryDirectory(prefix="fer-refresh-") as tmp:
        env = {"FER_PROFILE": "test", "FER_RESULTS_DIR": f"{tmp}/results", "FER_CHECKPOINT_DIR": f"{tmp}/ckpt"}
        old = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            for nb_path in discover(papers, folder):
                o = execute(nb_path, Path(tmp) / "executed", {"progress": False})
                if not o.ok:
                    raise SystemExit(f"error: {nb_path.name} failed in the test profile:\n{o.error}")
                ran = nbformat.read(o.output, as_version=4)
                source = nbformat.read(nb_path, as_version=4)
                by_id = {c.get("id"): c for c in ran.cells}
                for cell in source.cells:
                    if cell.cell_type != "code":
                        continue
                    done = by_id.get(cell.get("id")) if checked(cell) else None
                    cell.outputs = done.outputs if done is not None else []
                    cell.execution_count = done.execution_count if done is not None else None  # nbval wants one
                nbformat.write(source, nb_path)
                written.append(nb_path)
                print(f"stored the checked outputs of {nb_path.name}", flush=True)
        finally:
            for k, v in old.items():
                os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    return written


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fer_core.book", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    for name in ("run", "all"):
        s = sub.add_parser(name, help="execute the notebooks" + (" and build the book" if name == "all" else ""))
        s.add_argument("--profile", default="smoke", help="params/<profile>.yaml (smoke, paper, test)")
        s.add_argument("--papers", default=None, help="comma-separated notebook numbers, e.g. 01,03")
        s.add_argument("--seeds", type=int, default=None, help="seeds per run (default: the notebook's)")
        s.add_argument("--data-dir", default=None, help="data directory (default: FER_DATA_DIR, else synthetic)")
        s.add_argument("--jobs", type=int, default=None,
                       help="notebooks run at once, each with its share of the cores (default: 2 on 2 cores or more)")
        s.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override for every run")
        s.add_argument("--timeout", type=int, default=None, help="seconds per cell")
    sub.add_parser("build", help="build the HTML book from book/executed")
    r = sub.add_parser("refresh", help="store the outputs of the cells nbval checks (# NBVAL_CHECK_OUTPUT) and "
                                       "write results/verdicts.csv and .json")
    r.add_argument("--papers", default=None, help="comma-separated notebook numbers, e.g. 90,01")
    sub.add_parser("verdicts", help="write results/verdicts.csv and .json: the front chapter's table as data")
    sub.add_parser("toc", help="write book/_toc.yml: the paper chapters from the plans (params/papers/*.yaml)")
    n = sub.add_parser("new-paper", help="a new paper's plan skeleton and chapter from the templates, and the toc")
    n.add_argument("paper", help="its key: the plan's name, claims.csv's paper column (e.g. li2024)")
    n.add_argument("--number", required=True, help="the chapter's two-digit number, e.g. 08")
    n.add_argument("--name", required=True, help="the chapter's name after the number, e.g. attention_fer")
    n.add_argument("--title", required=True, help='"<Authors>, <Title> (<venue, year>)", as the book cites it')
    n.add_argument("--text", required=True, help="its full text's file name under ../shared/papers/")
    args = p.parse_args(argv)
    if args.command == "new-paper":
        for path in new_paper(args.paper, args.number, args.name, args.title, args.text, notebooks=NOTEBOOKS):
            print(f"wrote {path}")
        forget()  # the new plan's head
    if args.command in ("toc", "new-paper"):
        (BOOK / "_toc.yml").write_text(toc())
        print(f"wrote {BOOK / '_toc.yml'}")
        return 0
    if args.command in ("refresh", "verdicts"):
        for path in write_verdicts():
            print(f"wrote {path}")
        if args.command == "refresh":
            refresh(args.papers.split(",") if args.papers else None)
        return 0
    ok = True
    if args.command in ("run", "all"):
        papers = args.papers.split(",") if args.papers else None
        outcomes = run(args.profile, papers, args.jobs, args.set, timeout=args.timeout, seeds=args.seeds,
                       data_dir=args.data_dir)
        ok = all(o.ok for o in outcomes)
    if args.command in ("build", "all"):
        index = build()
        print(f"\nThe book: {index}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
