"""Run the paper notebooks with papermill and build the HTML book.

    python -m fer_core.book run --profile smoke [--papers 00,01] [--seeds N] [--data-dir DIR] [--jobs 2]
                                [--set key=value ...]
    python -m fer_core.book build
    python -m fer_core.book all --profile smoke      # what `make book` does

``run`` executes every ``notebooks/NN_*.ipynb`` (or those named by ``--papers``), each in its own
papermill process, into ``book/executed/``; it goes on past a failed notebook, keeps the failed
executed notebook (its traceback is in it), and ends with a summary. ``build`` compiles the
executed notebooks into ``book/_build/html`` with jupyter-book and prints the index.html path.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import yaml

from .paths import ROOT

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


def execute(nb: Path, out_dir: Path, parameters: dict, timeout: int | None = None) -> Outcome:
    """One notebook in its own papermill process, executed with the project root as cwd."""
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / nb.name
    cmd = [sys.executable, "-m", "papermill", str(nb), str(out), "--cwd", str(ROOT), "--no-progress-bar",
           "--kernel", "python3", "-y", yaml.safe_dump(parameters)]
    if timeout:
        cmd += ["--execution-timeout", str(timeout)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    secs = time.perf_counter() - t0
    if proc.returncode == 0:
        return Outcome(nb.stem, True, secs, out)
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    return Outcome(nb.stem, False, secs, out, "\n".join(lines[-6:]) or f"papermill exit code {proc.returncode}")


def run(profile: str, papers: list[str] | None = None, jobs: int = 1, overrides: list[str] = (),
        out_dir: Path = EXECUTED, folder: Path = NOTEBOOKS, timeout: int | None = None,
        seeds: int | None = None, data_dir: str | None = None) -> list[Outcome]:
    """Execute the notebooks; every one gets the parameters ``profile``, ``overrides`` and
    ``progress=False``, and ``seeds`` / ``data_dir`` when given."""
    notebooks = discover(papers, folder)
    params = {"profile": profile, "overrides": list(overrides), "progress": False}
    if seeds is not None:
        params["seeds"] = seeds
    if data_dir is not None:
        params["data_dir"] = str(data_dir)
    print(f"Running {len(notebooks)} notebook(s) in profile {profile!r} with {jobs} job(s) -> {out_dir}", flush=True)
    outcomes: list[Outcome] = []
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {pool.submit(execute, nb, out_dir, params, timeout): nb for nb in notebooks}
        for i, fut in enumerate(as_completed(futures), 1):
            o = fut.result()
            outcomes.append(o)
            print(f"[{i}/{len(notebooks)}] {'ok    ' if o.ok else 'FAILED'} {o.notebook} ({o.seconds:.0f} s)", flush=True)
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
        s.add_argument("--jobs", type=int, default=1, help="notebooks run at once")
        s.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override for every run")
        s.add_argument("--timeout", type=int, default=None, help="seconds per cell")
    sub.add_parser("build", help="build the HTML book from book/executed")
    args = p.parse_args(argv)
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
