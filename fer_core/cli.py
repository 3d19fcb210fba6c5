"""``python -m fer_core``: train, evaluate, inspect data, list models."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

import pandas as pd

from .config import TTA_MODES, ConfigError, load_config, parse_duration
from .data import SOURCES, DataError, duplicates, load
from .train.hardware import nice_the_session_too

EPILOG = "Real data: --data-dir or FER_DATA_DIR; with neither, the embedded synthetic set is used."


def _cmd_train(args) -> int:
    from .runs.runner import train

    cfg = load_config(args.params, args.set)
    if cfg.tags.profile is None:  # filed in the ledger under the params file's name
        cfg = cfg.model_copy(update={"tags": cfg.tags.model_copy(update={"profile": Path(args.params).stem})})
    record = train(cfg, resume=args.resume)
    m = record.metrics
    line = f"{record.path}: test accuracy {m['accuracy']:.4f} (epoch {m['selected_epoch']} by val accuracy " \
           f"{m['best_val_acc']:.4f})"
    for mode, t in m.get("tta", {}).items():
        line += f", with TTA {mode} {t['accuracy']:.4f}"
    print(line + (f"  [{m['note']}]" if m.get("note") else ""))
    return 0


def _cmd_evaluate(args) -> int:
    from .runs.runner import evaluate_run

    out = evaluate_run(args.run_dir, tta=args.tta, split=args.split)
    if args.json:
        print(json.dumps(out, indent=1))
    else:
        mode = f", TTA {args.tta}" if args.tta else ""
        print(f"{out['run']} [{out['split']}{mode}]: accuracy {out['accuracy']:.4f}, "
              f"macro F1 {out['macro']['f1']:.4f}, weighted F1 {out['weighted']['f1']:.4f}, "
              f"macro AUC {out['auc_macro']:.4f}" + (f"  [{out['note']}]" if out.get("note") else ""))
    return 0


def _cmd_evaluate_weights(args) -> int:
    from .runs.released import evaluate_weights

    out = evaluate_weights(args.model, args.weights, data_dir=args.data_dir, dataset=args.dataset, split=args.split,
                           convention=args.convention, input_size=args.input_size, name=args.name, source=args.source,
                           port=args.port)
    free = (out.get("duplicate_free") or {}).get("duplicate_free")
    low, high = out["accuracy_95"]
    print(f"{args.weights} in {out['model']} ({out['input_size']}x{out['input_size']}, scaling {out['convention']}) "
          f"on {out['data']['source']} {out['data']['split']} (n={out['data']['n']}): accuracy "
          f"{100 * out['accuracy']:.2f}% (95% {100 * low:.2f}-{100 * high:.2f})"
          + (f", duplicate-free {100 * free['accuracy']:.2f}% (n={free['n']})" if free else "")
          + (f"  [{out['data']['note']}]" if out["data"]["note"] else "") + f"\n-> {out['path']}")
    return 0


def _cmd_run(args) -> int:
    from .schedule import slices
    from .train.engine import TimeLimitReached

    overrides = list(args.set) + ([f"output.results_dir={args.results_dir}"] if args.results_dir else [])
    papers = args.paper.split(",")
    if len(papers) > 1 and args.rows:
        print("error: --rows names rows of one paper; give one --paper with it", file=sys.stderr)
        return 2
    rows_, seeds, folds = args.rows.split(",") if args.rows else None, slices.parse_range(args.seeds) or [0], \
        slices.parse_range(args.folds)
    parts = [slices.Slice(p, args.profile, rows_, seeds, folds, args.data_dir, overrides, args.allow_dirty)
             for p in papers]
    if args.executor == "ray":
        return _run_on_ray(parts, args)
    if args.list:
        if args.measure:
            from .schedule.bench import measure

            measure(parts, args.data_dir)
        table = pd.concat([slices.listing(sl) for sl in parts], ignore_index=True)
        with pd.option_context("display.width", 200, "display.max_rows", 500):
            print(table.to_string(index=False))
        rest = table[table["status"] != "finished"]
        device, hours = slices.hours_column(table)[len("hours here ("):].split(",")[0], slices.hours_left(table)
        left = (f", about {hours:.1f} hours here at most ({device}, speed from results/bench; re-measure with "
                f"--measure)" if hours is not None
                else ", hours unknown: no benchmark (python -m fer_core.schedule.bench train, or --measure)")
        print(f"{len(table)} run(s), {len(table) - len(rest)} finished; at most "
              f"{rest['cost (PMAC, at most)'].sum():.3f} PMAC (multiply-accumulates x 10^15, forward and backward) "
              f"to train the rest{left}")
        return 0
    limit = _time_limit(args.time_limit)
    _yield_to_other_work()
    try:
        deadline = time.monotonic() + limit if limit else None
        left = (lambda: None) if deadline is None else (lambda: max(1e-3, deadline - time.monotonic()))
        rows = pd.concat([slices.execute(sl, time_limit=left()) for sl in parts], ignore_index=True)
    except TimeLimitReached as e:
        print(f"resume me: {e}")
        return slices.EXIT_RESUME
    for _, r in rows.iterrows():
        fold = "" if r["fold"] is None or r["fold"] != r["fold"] else f" fold {int(r['fold'])}"
        print(f"{r['variant']:28s} seed {r['seed']}{fold}: accuracy {r['accuracy']:.4f}  {r['record']}")
    return 0


def _yield_to_other_work() -> None:
    """A run started at low priority (``nice``) in a session of its own stays low beside other sessions."""
    niceness = nice_the_session_too()
    if niceness is not None:
        print(f"low priority: nice {niceness}, for this session's scheduling group too (Linux autogroup)")


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return int(text)


def _time_limit(text: str | None) -> float | None:
    """``--time-limit`` in seconds (None: no limit); 0 or less is an error, never "no limit"."""
    limit = parse_duration(text)
    if limit is not None and limit <= 0:
        raise ValueError(f"--time-limit {text!r} must be a positive duration (9m, 2h40m); leave it out for no limit")
    return limit


ALLOW_DIRTY = ("a 'paper'-profile run from uncommitted code changes (refused otherwise; the record names the "
               "changed files and the diff's hash)")


def _cmd_queue(args) -> int:
    import torch

    from .schedule import queues, slices

    overrides = list(args.set) + ([f"output.results_dir={args.results_dir}"] if args.results_dir else [])
    items = queues.read_queue(args.name, data_dir=args.data_dir, overrides=overrides, allow_dirty=args.allow_dirty)
    if args.measure and not args.status:
        print("error: --measure goes with --status (queue <name> --status --measure)", file=sys.stderr)
        return 2
    if args.status:
        if args.measure:
            from .schedule.bench import measure

            measure([item.slice for item in items], args.data_dir, repeats=1, images=128)
        table = queues.status(items)
        started = table[queues.STARTED]
        with pd.option_context("display.width", 200, "display.max_colwidth", 90):
            print(table.drop(columns=[queues.STARTED, queues.EARLIER]).to_string(index=False))
        for item, runs, shared in zip(table["item"], started, table[queues.EARLIER]):
            for run in filter(None, runs.split(queues.RUNS_APART)):
                print(f"item {item}, in progress: {run}")
            if shared:
                print(f"item {item}, made and counted by an earlier item: {shared}")
        hours = table["hours left (at most)"]
        print(f"{table['runs'].sum()} run(s): {table['finished'].sum()} finished "
              f"({table['hours taken'].sum():.1f} hours taken), {table['in progress'].sum()} in "
              f"progress, {table['left'].sum()} not started; "
              + (f"about {hours.sum():.1f} hours left here at most" if hours.notna().all()
                 else "hours unknown (no benchmark: python -m fer_core.schedule.bench train)"))
        if args.save:
            print(f"saved {queues.save_status(table, args.name)}")
        return 0
    limit = _time_limit(args.time_limit)
    _yield_to_other_work()
    if args.workers > 1:
        return _queue_workers(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = queues.run(items, time_limit=limit, share=args.share)
    others = rows.attrs.get(slices.LEFT_TO_OTHERS, [])
    print(f"queue {args.name}: done here, {len(rows)} run(s) with a record"
          + (f"; left to other processes or machines, {len(others)} run(s):" if others else ""))
    for line in slices.left_summary(others):
        print(f"  {line}")
    return 0


def _queue_workers(args) -> int:
    """``queue --workers N``: N processes of this queue, each with the cores divided among them
    (:func:`fer_core.schedule.queues.run_workers`)."""
    from .schedule.queues import run_workers

    threads = args.threads or max(1, (os.cpu_count() or 1) // args.workers)
    argv = [sys.executable, "-m", "fer_core", "queue", args.name, "--share", "--threads", str(threads),
            *(f"--set={s}" for s in args.set), *(["--time-limit", args.time_limit] if args.time_limit else []),
            *(["--data-dir", args.data_dir] if args.data_dir else []),
            *(["--results-dir", args.results_dir] if args.results_dir else []),
            *(["--allow-dirty"] if args.allow_dirty else [])]
    print(f"queue {args.name}: {args.workers} workers of {threads} thread(s) each", flush=True)
    return run_workers(argv, args.workers, args.name)


def _run_on_ray(parts, args) -> int:
    from .schedule.executors import execute_ray

    if args.time_limit or args.list:
        print("error: --time-limit and --list are for the serial executor (one process)", file=sys.stderr)
        return 2
    rows, summary = execute_ray(parts, address=args.address, gpus_per_run=args.gpus_per_run,
                                cpus_per_run=args.cpus_per_run)
    with pd.option_context("display.width", 200, "display.max_colwidth", 80):
        print(summary.to_string(index=False))
    failed = (summary["status"] == "failed").sum()
    print(f"{len(summary)} run(s): {len(rows)} with a record, {failed} failed; "
          f"wall time {summary.attrs.get('wall_time_s', 0):.0f} s")
    return 1 if failed else 0


def _cmd_bundle(args) -> int:
    from .schedule.bundle import BundleError, build

    try:
        sizes = build(args.out, python=args.python, platform=args.platform,
                      data=args.data.split(",") if args.data else [], skip=args.skip.split(",") if args.skip else [],
                      data_dir=args.data_dir)
    except BundleError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for part, size in sizes.items():
        print(f"{part:8s} {size / 2**20:8.1f} MB")
    total = sum(sizes.values()) / 2**20
    print(f"{'total':8s} {total:8.1f} MB  -> {args.out}" + ("   (over 64 MB: leave out what the node has with --skip)"
                                                             if total > 64 else ""))
    print(f"on the node: {args.out}/run.sh --paper <paper> [--rows ...] [--seeds ...] [--time-limit 9m]")
    return 0


def _cmd_attention(args) -> int:
    from .runs.runner import recompute_attention

    path = recompute_attention(args.run_dir, n=args.faces)
    print(f"{path}: written from the run's selected checkpoint")
    return 0


def _cmd_ledger(args) -> int:
    """``ledger seal|check|rebuild``: the published view of a results folder (fer_core.runs.ledger.scan)."""
    from .runs import ledger, records

    root = Path(args.results_dir)
    if args.action == "seal":
        folders = [Path(f) for f in args.records] or sorted(d.parent for d in root.glob(f"*/*/{records.FINISHED}"))
        sealed = 0
        for folder in folders:
            if (folder / records.MANIFEST).is_file():
                continue
            wrong = records.RunRecord.read(folder).problems()
            if wrong:
                print(f"  not sealed {folder}: {'; '.join(wrong)}")
                continue
            records.seal(folder)
            sealed += 1
            print(f"  sealed {folder}")
        print(f"{sealed} record(s) sealed; a sealed record is never sealed again (its manifest is the check)")
        return 0
    if args.action == "rebuild":
        path, refused = ledger.rebuild(root)
        print(f"{path}: {len(ledger.read_ledger(root))} valid record(s)")
    else:
        runs, refused = ledger.scan(root)
        print(f"{root}: {len(runs)} valid record(s)")
    for r in refused.itertuples():
        print(f"  refused {r.record}: {r.problems}")
    return 1 if len(refused) and args.action == "check" else 0


def _cmd_data(args) -> int:
    data = load(args.source, args.data_dir, n_folds=args.folds)
    summary = data.summary()
    if args.json:
        print(json.dumps(summary, indent=1))
    else:
        print(f"{summary['source']} ({summary['location'] or 'generated'}), fingerprint {summary['fingerprint']}")
        for s, v in summary["splits"].items():
            print(f"  {s:5s} {v['total']:6d}  " + ", ".join(f"{k} {n}" for k, n in v["per_class"].items()))
        if summary.get("note"):
            print(f"  note: {summary['note']}")
    return 0


def _cmd_duplicates(args) -> int:

    data = load(args.source, args.data_dir)
    if not duplicates.applies(data):
        print(f"error: {data.source} ({data.location or 'generated'}) is not FER2013 with its training split; give "
              f"--data-dir with fer2013/ or fer2013.csv", file=sys.stderr)
        return 2
    twins = duplicates.training_twins(data)
    print(f"{data.source} ({data.location}), fingerprint {data.fingerprint}; method: {duplicates.METHOD}")
    counts = twins.counts(data.class_names)
    for split, part in counts.groupby(level="split"):
        total = int((data.split == split).sum())
        print(f"  {split:5s} {int(part['twins'].sum()):4d} of {total} faces have a training twin "
              f"({int(part['same_label'].sum())} with its label): " +
              ", ".join(f"{c} {n}" for (_, c), n in part["twins"].items()))
    for _, r in twins.table.head(args.show).iterrows():
        print(f"  {r['file']} = {r['twin_file']}")
    if args.records:
        from .runs.ledger import add_duplicate_free

        for line in add_duplicate_free(args.records, data, twins):
            print(f"  {line}")
    return 0


def _cmd_models(args) -> int:
    from .models import REGISTRY, count_parameters, create_model

    rows = []
    for name, spec in sorted(REGISTRY.items()):
        rows.append({"name": name, "parameters": count_parameters(create_model(name, num_classes=args.classes)),
                     "input_size": spec.input_size, "in_channels": spec.in_channels, "paper": spec.paper,
                     "summary": spec.summary})
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        for r in rows:
            shape = f"{r['in_channels']}x{r['input_size']}x{r['input_size']}"
            print(f"{r['name']:20s} {r['parameters'] / 1e6:8.2f}M  {shape}  {r['paper']:18s} {r['summary']}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fer_core", description=__doc__, epilog=EPILOG)
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train one run from a params file")
    t.add_argument("--params", required=True, help="params/<profile>.yaml")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a field (repeatable)")
    t.add_argument("--resume", action="store_true", help="continue an unfinished run from its last checkpoint")
    t.set_defaults(fn=_cmd_train)

    e = sub.add_parser("evaluate", help="re-evaluate a finished run from its best checkpoint")
    e.add_argument("run_dir")
    e.add_argument("--tta", default=None, choices=list(TTA_MODES),
                   help="test-time augmentation: tencrop, or random_views (Pham et al.'s 10 augmented views)")
    e.add_argument("--split", default="test", choices=["train", "val", "test"])
    e.add_argument("--json", action="store_true")
    e.set_defaults(fn=_cmd_evaluate)

    w = sub.add_parser("evaluate-weights", help="score released weights (PyTorch or Keras HDF5) on the book's "
                                               "protocol: results/released/<name>/evaluation.json")
    w.add_argument("--model", required=True, help="a registered model (python -m fer_core models)")
    w.add_argument("--weights", required=True, help="a state dict (.pt) or a Keras model file (.h5, .hdf5)")
    w.add_argument("--data-dir", default=None, help="data directory (default: FER_DATA_DIR, else synthetic)")
    w.add_argument("--dataset", default="fer2013", help="data.source (default fer2013)")
    w.add_argument("--split", default="test", choices=["train", "val", "test"])
    w.add_argument("--convention", default=None, choices=["book", "minus_one_to_one"],
                   help="input scaling (default: minus_one_to_one for Keras files, the authors' [-1, 1]; else book)")
    w.add_argument("--input-size", type=int, default=None, help="default: the Keras file's, else the model's")
    w.add_argument("--name", default=None, help="folder name under results/released (default: the file's stem)")
    w.add_argument("--source", default="", help="where the weights come from (kept in the evaluation)")
    w.add_argument("--port", default="exact", choices=["exact", "earlier"],
                   help="earlier: a Keras file's weights in the book's port before its Keras semantics (to "
                        "measure that difference; not a result)")
    w.set_defaults(fn=_cmd_evaluate_weights)

    r = sub.add_parser("run", help="run a slice of a paper's plan (rows, seeds, folds) through the one engine")
    r.add_argument("--paper", required=True,
                   help="params/papers/<paper>.yaml: pham, shen_li, du, yu, qin (comma-separated: several, in turn)")
    r.add_argument("--profile", default="paper", help="paper (the recipe, for a GPU) or a CPU profile (smoke, test)")
    r.add_argument("--rows", default=None, help="comma-separated rows of the plan (default: the profile's)")
    r.add_argument("--seeds", default="0", help="seeds, e.g. 0,1,2 or 0-2")
    r.add_argument("--folds", default=None, help="CK+ folds, e.g. 0-9 (default: the profile's)")
    r.add_argument("--data-dir", default=None, help="data directory (default: FER_DATA_DIR, else synthetic)")
    r.add_argument("--results-dir", default=None,
                   help="where the run records and the ledger go (default: the profile's)")
    r.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override for every run")
    r.add_argument("--time-limit", default=None, help="e.g. 9m: stop after the epoch that reaches it, exit status 75")
    r.add_argument("--list", action="store_true", help="print the slice's runs, their cost, estimated hours and "
                                                       "status; run nothing")
    r.add_argument("--measure", action="store_true", help="with --list: first measure the speed of the slice's "
                                                          "models here (results/bench/train_<device>.csv)")
    r.add_argument("--allow-dirty", action="store_true", help=ALLOW_DIRTY)
    r.add_argument("--executor", default="serial", choices=["serial", "ray"],
                   help="serial: one run after the other here; ray: every run a Ray task")
    r.add_argument("--address", default=None,
                   help="ray: a cluster to join (auto, ray://host:port); none: start one here")
    r.add_argument("--gpus-per-run", type=float, default=None, help="ray: GPUs per run (default: 1 when CUDA is here)")
    r.add_argument("--cpus-per-run", type=int, default=1, help="ray: CPU cores (and torch threads) per run")
    r.set_defaults(fn=_cmd_run)

    q = sub.add_parser("queue", help="run a queue of plan slices in order (params/queues/<name>.yaml), for hours")
    q.add_argument("name", help="params/queues/<name>.yaml (cpu, gpu) or a path")
    q.add_argument("--status", action="store_true", help="done / in progress / left per item, with hours; run nothing")
    q.add_argument("--save", action="store_true", help="with --status: keep the table in "
                                                   "results/bench/queue_<name>.csv (the front chapter reads the GPU "
                                                   "queue's)")
    q.add_argument("--measure", action="store_true", help="with --status: first measure the speed of the queue's "
                                                          "models here, one timed epoch of ~128 images each "
                                                          "(results/bench/train_<device>.csv)")
    q.add_argument("--time-limit", default=None, help="e.g. 2h40m: stop after the epoch that reaches it, exit "
                                                      "status 75; the same command continues")
    q.add_argument("--data-dir", default=None, help="data directory (default: FER_DATA_DIR, else synthetic)")
    q.add_argument("--results-dir", default=None, help="where the records and the ledger go (default: the profile's)")
    q.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override for every run (settings that change a result make other runs)")
    q.add_argument("--allow-dirty", action="store_true", help=ALLOW_DIRTY)
    q.add_argument("--workers", type=_positive, default=1,
                   help="processes working through the queue together, each on the next run no other holds, the "
                        "cores divided among them (default 1)")
    q.add_argument("--share", action="store_true", help="one of several processes on this queue (what --workers "
                                                        "starts): leave the runs another process holds to it")
    q.add_argument("--threads", type=_positive, default=None, help="torch threads of this process (default: all "
                                                                   "cores, divided among --workers)")
    q.set_defaults(fn=_cmd_queue)

    b = sub.add_parser("bundle", help="a folder a GPU node without internet can run a slice from (run.sh)")
    b.add_argument("out", help="a new (or empty) folder")
    b.add_argument("--python", default=f"{sys.version_info.major}.{sys.version_info.minor}",
                   help="the node's Python, e.g. 3.12 (default: this one's)")
    b.add_argument("--platform", default="manylinux_2_28_x86_64", help="the node's platform tag")
    b.add_argument("--data", default=None, help="data sets to pack: fer2013,ckplus")
    b.add_argument("--data-dir", default=None, help="where they are (default: FER_DATA_DIR)")
    b.add_argument("--skip", default=None, help="packages the node already has, e.g. numpy,pandas,scipy")
    b.set_defaults(fn=_cmd_bundle)

    a = sub.add_parser("attention", help="recompute a finished run's attention.npz from its checkpoint")
    a.add_argument("run_dir")
    a.add_argument("--faces", type=int, default=None, help="test faces to explain (default: the run's eval.attention)")
    a.set_defaults(fn=_cmd_attention)

    d = sub.add_parser("data", help="split sizes and per-class counts of a source", epilog=EPILOG)
    d.add_argument("--source", default="auto", choices=list(SOURCES))
    d.add_argument("--data-dir", default=None)
    d.add_argument("--folds", type=int, default=10, help="CK+ cross-validation folds")
    d.add_argument("--json", action="store_true")
    d.set_defaults(fn=_cmd_data)

    u = sub.add_parser("duplicates", help="FER2013's validation and test faces that are also training faces; "
                                          "with --records, each FER2013 record's scores without them")
    u.add_argument("--source", default="fer2013", choices=[s for s in SOURCES if s.startswith("fer2013")])
    u.add_argument("--data-dir", default=None)
    u.add_argument("--show", type=int, default=5, help="pairs to print")
    u.add_argument("--records", default=None, metavar="RESULTS_DIR",
                   help="write duplicate_free.json into every FER2013 record of this ledger that has none")
    u.set_defaults(fn=_cmd_duplicates)

    g = sub.add_parser("ledger", help="the published view of a results folder: 'check' lists valid and refused "
                                      "records, 'rebuild' writes ledger.csv from the valid ones, 'seal' writes the "
                                      "manifest of finished records that have none")
    g.add_argument("action", choices=["check", "rebuild", "seal"])
    g.add_argument("records", nargs="*", help="seal: these record folders (default: every unsealed one)")
    g.add_argument("--results-dir", default="results")
    g.set_defaults(fn=_cmd_ledger)

    m = sub.add_parser("models", help="every registered model with its parameter count and input size")
    m.add_argument("--classes", type=int, default=7)
    m.add_argument("--json", action="store_true")
    m.set_defaults(fn=_cmd_models)

    args = p.parse_args(argv)
    from .runs.locks import RunLockedError
    from .runs.preflight import PreflightError
    from .runs.records import DirtyTreeError, RunExistsError
    from .schedule.queues import QueueError
    from .schedule.slices import EXIT_RESUME
    from .train.checkpoints import CheckpointError
    from .train.engine import DivergedError, TimeLimitReached

    try:
        return args.fn(args)
    except TimeLimitReached as e:
        print(f"resume me: {e}", file=sys.stderr)
        return EXIT_RESUME
    except KeyboardInterrupt:
        print("interrupted: every finished epoch is checkpointed; the same command with --resume (run, queue: "
              "the same command) continues from the last one", file=sys.stderr)
        return 130
    except (ConfigError, DataError, RunExistsError, CheckpointError, RunLockedError, PreflightError, QueueError,
            DirtyTreeError, DivergedError, FileNotFoundError, KeyError, ValueError) as e:  # LedgerError: a ValueError
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"error: {msg}", file=sys.stderr)
        return 2
    except OSError as e:  # a full or read-only disk: a run's checkpoints are whole (written atomically)
        print(f"error: {e.strerror or e} ({e.filename or 'a file'}): free space or fix the permissions, then run the "
              f"same command again: a started run resumes from its last checkpoint and a record cut off while "
              f"written is written again", file=sys.stderr)
        return 74


if __name__ == "__main__":
    warnings.simplefilter("default")
    sys.exit(main())
