"""Accuracy against wall-clock time: the tables of the chapter "FER2013 on two CPU cores".

The ``cpu`` plan (``params/papers/cpu.yaml``) trains small models under a wall-clock budget
(``train.budget``). These functions read its run records, nothing else: each run's validation
curve on a time axis, the selected test accuracy per model and budget beside the chapter's
targets, the CK+ folds, and the published figures the numbers are read beside (no verdicts: these
are not a paper's claims).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..data import duplicates
from ..paths import bench_file, project_path
from ..runs import ledger
from ..train import stats
from .claims import PAPERS, read_claims
from .rule import Estimate

# Targets of the chapter (params/papers/cpu.yaml, protocol): best PrivateTest accuracy in % within
# a budget of so many seconds. Printed beside the runs, never asserted in a test.
TARGETS = {300: 58.0, 1800: 64.0}

# Published figures to read the runs beside: (paper, label, metric) of book/claims.csv, whose value
# and source line are read from there; the name shown, and how each was measured.
CONTEXT = [
    ("pham", "Human Accuracy [22]", "accuracy", "people", "people, as cited by Pham et al."),
    ("du", "Improved ResNet50", "last:val_acc", "Du's improved ResNet-50",
     "48x48, last epoch's validation accuracy"),
    ("qin", "Base", "accuracy", "Qin's base classifier", "Qin's own protocol (see chapter 05)"),
    ("pham", "Resnet18", "accuracy_tta_random_views", "ResNet-18", "224x224, ImageNet-pretrained, 10-view TTA"),
    ("pham", "ResMaskingNet", "accuracy_tta_random_views", "ResMaskingNet",
     "224x224, ImageNet-pretrained, 10-view TTA"),
    ("qin", "Base+STN+SR", "accuracy", "Qin's STN + SR + classifier", "Qin's own protocol (see chapter 05)"),
    ("shen_li", "Res34-MaskingReconstrucionNet-Ours", "accuracy_tta_random_views",
     "Shen & Li's Res34 reconstruction net", "224x224, Pham et al.'s recipe, 10-view TTA"),
    ("yu", "Our (Yu's separable Xception)", "accuracy", "Yu's separable Xception",
     "Yu's own protocol (see chapter 04)"),
]
ARRIAGA = {"source": "Arriaga et al. 2017, arXiv:1710.07557, abstract", "model": "mini-Xception",
           "dataset": "fer2013", "split": "their own random 20% of the training images (validation)",
           "accuracy (%)": 66.0, "how": "64x64 faces; not PrivateTest, so not comparable one to one"}


def _runs(runs: pd.DataFrame, dataset: str) -> pd.DataFrame:
    return runs[(runs["paper"] == "cpu") & (runs["dataset"] == dataset)].reset_index(drop=True)


def _accuracy(runs: pd.DataFrame) -> pd.Series:
    """The test accuracy of each run as its record states it (never the ledger's copy of it)."""
    return pd.Series([float(ledger.record_at(p).metrics["accuracy"]) for p in runs["record"]], index=runs.index,
                     dtype=float)


def budget_of(record) -> float:
    """The run's wall-clock budget in seconds (``train.budget``)."""
    return float(record.config["train"]["budget"])


def curves(runs: pd.DataFrame) -> pd.DataFrame:
    """Every FER2013 run's validation accuracy per epoch, placed on the wall clock: model, variant,
    budget (minutes), epoch, minutes spent at the end of the epoch, validation accuracy (%)."""
    frames = []
    for _, run in _runs(runs, "fer2013").iterrows():
        rec = ledger.record_at(run["record"])
        h = rec.history
        frames.append(pd.DataFrame({
            "model": run["model"], "variant": run["variant"], "budget (min)": budget_of(rec) / 60,
            "epoch": h["epoch"], "minutes": h["elapsed_s"] / 60, "val_acc (%)": h["val_acc"] * 100}))
    cols = ["model", "variant", "budget (min)", "epoch", "minutes", "val_acc (%)"]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=cols)


def _epochs_trained(history: pd.DataFrame) -> float:
    """Passes over the training split, the last (cut by the budget) counted by its share."""
    return float(history["epoch_share"].sum()) if "epoch_share" in history else float(len(history))


def budget_table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per FER2013 run: model, budget, epochs trained, training images/s (faces seen over
    the training wall time, validation included), the selected epoch's validation accuracy, the
    PrivateTest accuracy and macro F1 of that epoch (tested once), and the target for the budget."""
    rows = []
    for _, run in _runs(runs, "fer2013").iterrows():
        rec = ledger.record_at(run["record"])
        budget, h = budget_of(rec), rec.history
        train_images = int(rec.provenance.get("data", {}).get("sizes", {}).get("train", 0)) or np.nan
        epochs = _epochs_trained(h)
        target = TARGETS.get(int(budget))
        m = rec.metrics  # the record's numbers, not the ledger's copy of them
        acc = float(m["accuracy"]) * 100
        low, high = stats.accuracy_interval(m["accuracy"], m["n"])
        dup = duplicates.read(rec.path)
        rows.append({
            "model": run["model"], "budget (min)": budget / 60, "epochs trained": round(epochs, 2),
            "images/s (training)": round(epochs * train_images / float(h["elapsed_s"].iloc[-1]), 1),
            "selected epoch": int(rec.metrics["selected_epoch"]),
            "PublicTest (%)": round(float(m["best_val_acc"]) * 100, 2), "PrivateTest (%)": round(acc, 2),
            "95% interval (Wilson)": f"{low * 100:.2f}–{high * 100:.2f}",
            "macro F1 (%)": round(float(m["macro"]["f1"]) * 100, 2),
            "PrivateTest without twins (%)": round(dup["duplicate_free"]["accuracy"] * 100, 2) if dup else None,
            "macro F1 without twins (%)": round(dup["duplicate_free"]["macro_f1"] * 100, 2) if dup else None,
            "wall time (min)": round(float(run["wall_time_s"]) / 60, 1),
            "target (%)": target, "meets it": "—" if target is None else ("yes" if acc >= target else "no")})
    return pd.DataFrame(rows).sort_values(["budget (min)", "PrivateTest (%)"], ascending=[True, False]) \
        .reset_index(drop=True) if rows else pd.DataFrame(rows)


def paired_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Every two FER2013 runs of the same budget, on the same PrivateTest faces: their accuracies,
    the faces only one gets right, McNemar's exact p and the wording it allows."""
    fer = _runs(runs, "fer2013")
    rows = []
    for budget, group in fer.groupby(fer["variant"].str.extract(r"-(\d+m)$")[0], sort=False):
        recs = [(r["model"], ledger.record_at(r["record"]).predictions) for _, r in group.iterrows()]
        for i, (name_a, a) in enumerate(recs):
            for name_b, b in recs[i + 1:]:
                t = stats.mcnemar(a["pred"] == a["target"], b["pred"] == b["target"])
                better = {"A better": f"{name_a} better", "B better": f"{name_b} better"}.get(t.verdict, t.verdict)
                rows.append({"budget": budget, "A": name_a, "B": name_b, "A (%)": round(t.accuracy_a * 100, 2),
                             "B (%)": round(t.accuracy_b * 100, 2), "only A right": t.only_a,
                             "only B right": t.only_b, "McNemar p": round(t.p, 4), "on these faces": better})
    return pd.DataFrame(rows)


def targets_summary(table: pd.DataFrame) -> list[str]:
    """One line per budget: the best PrivateTest accuracy within it against its target."""
    lines = []
    for budget_s, target in TARGETS.items():
        within = table[table["budget (min)"] == budget_s / 60] if len(table) else table
        if not len(within):
            lines.append(f"{budget_s / 60:g} min: no run published (target >= {target:g}%)")
            continue
        best = within.loc[within["PrivateTest (%)"].idxmax()]
        met = "met" if best["PrivateTest (%)"] >= target else "missed"
        lines.append(f"{budget_s / 60:g} min: best PrivateTest accuracy {best['PrivateTest (%)']:.2f}% "
                     f"({best['model']}), target >= {target:g}%: {met}")
    return lines


def ckplus_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per model on CK+: folds run, accuracy and macro F1 over the folds with the 95% interval of
    their mean (%), epochs per fold."""
    ck = _runs(runs, "ckplus")
    rows = []
    for model, folds in ck.groupby("model", sort=False):
        metrics = [ledger.record_at(p).metrics for p in folds["record"]]  # the records' numbers, not the ledger's
        rows.append({"model": model, "folds": len(folds),
                     "accuracy (%)": Estimate.of([m["accuracy"] * 100 for m in metrics]).text(2),
                     "macro F1 (%)": Estimate.of([m["macro"]["f1"] * 100 for m in metrics]).text(2),
                     "epochs per fold": Estimate.of(folds["epochs_run"].astype(float)).text(1)})
    return pd.DataFrame(rows)


def context_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Published figures beside this chapter's best run per dataset (with its 95% interval): the
    papers' numbers (value and source line from ``book/claims.csv``) and mini-Xception's own."""
    claims = read_claims()
    rows = []
    for paper, label, metric, name, how in CONTEXT:
        found = claims[(claims["paper"] == paper) & (claims["label"] == label) & (claims["metric"] == metric)
                       & (claims["relation"] == "=")].drop_duplicates(["dataset", "value"])
        if not len(found):
            raise KeyError(f"book/claims.csv has no {paper} claim {label!r} of {metric}: fix budgets.CONTEXT")
        for _, c in found.iterrows():
            rows.append({"source": f"{PAPERS[paper].split(',')[0]} ({c['source']})", "model": name,
                         "dataset": c["dataset"], "split": c["split"], "accuracy (%)": float(c["value"]), "how": how})
    rows.append(ARRIAGA)
    for dataset, split in (("fer2013", "test (PrivateTest)"), ("ckplus", "cv (10 folds)")):
        mine = _runs(runs, dataset)
        if not len(mine):
            continue
        mine = mine.assign(accuracy=_accuracy(mine))
        if dataset == "fer2013":
            best = mine.loc[mine["accuracy"].idxmax()]
            n = ledger.record_at(best["record"]).metrics["n"]
            low, high = stats.accuracy_interval(best["accuracy"], n)
            acc, model = float(best["accuracy"]) * 100, f"{best['model']}, {best['variant'].rsplit('-', 1)[-1]}"
            interval = f"{low * 100:.2f}–{high * 100:.2f} (Wilson)"
        else:
            means = mine.groupby("model")["accuracy"].mean()
            folds = mine[mine["model"] == means.idxmax()]["accuracy"] * 100
            est = Estimate.of(folds)
            acc, model = float(means.max()) * 100, f"{means.idxmax()} (mean over folds)"
            interval = f"{est.interval()[0]:.2f}–{est.interval()[1]:.2f} (over folds)"
        rows.append({"source": "this book, 2 CPU cores", "model": model, "dataset": dataset, "split": split,
                     "accuracy (%)": round(acc, 2), "95% interval": interval,
                     "how": "48x48, from scratch, wall-clock budget"})
    return (pd.DataFrame(rows).fillna({"95% interval": "— (none given)"}).sort_values(["dataset", "accuracy (%)"])
            .reset_index(drop=True))


def best_variant(runs: pd.DataFrame) -> str | None:
    """The FER2013 row with the best PrivateTest accuracy (None without FER2013 runs)."""
    fer = _runs(runs, "fer2013")
    return None if not len(fer) else str(fer.loc[_accuracy(fer).idxmax(), "variant"])


def train_bench(path: str | None = None) -> pd.DataFrame | None:
    """The CPU training benchmark (``results/bench/train_cpu.csv``, written by ``python -m
    fer_core.schedule.bench train --device cpu``): the chapter's three models and every model the CPU queue
    trains, each at the batch size it was measured at; None where none is published."""
    path = project_path(path) if path else bench_file("train_cpu")
    if not path.exists():
        return None
    bench = pd.read_csv(path)
    if "batch" in bench:  # the training batch; an evaluation row names its own in its loop
        bench["batch"] = bench["batch"].astype("Int64").mask(bench["loop"].str.startswith("evaluation"))
    cols = [c for c in ("case", "model", "input", "batch", "loop", "images_per_s", "tflops", "share_of_peak", "cpu",
                        "device", "torch") if c in bench]
    return bench[cols].drop(columns=["model", "input"] if "case" in bench else []).reset_index(drop=True)


def queue_speed(runs: pd.DataFrame) -> pd.DataFrame:
    """The CPU queue's published paper runs, per row: runs, precision, and the training images/s
    each run reached (epochs x training faces over its training wall clock, validation included):
    median and range. The queue runs beside other work at low priority, so these are what a
    shared machine gave, below the benchmark's idle-machine figures; with ``queue --workers 2`` each
    run had one of the two cores (its torch threads), and the machines' CPUs differ between sessions."""
    rows = []
    queue = runs[(runs["paper"] != "cpu") & (runs["device"].astype(str) == "cpu")] if len(runs) else runs
    for (paper, variant), group in queue.groupby(["paper", "variant"], sort=False):
        speeds, precisions, threads, cpus = [], set(), set(), set()
        for path in group["record"]:
            rec = ledger.record_at(path)
            h, sizes = rec.history, rec.provenance.get("data", {}).get("sizes", {})
            if len(h) and sizes.get("train") and h["elapsed_s"].iloc[-1] > 0:
                speeds.append(_epochs_trained(h) * sizes["train"] / float(h["elapsed_s"].iloc[-1]))
            precisions.add(rec.provenance.get("precision", {}).get("autocast") or "float32")
            threads.add(str(rec.provenance.get("torch_threads", "not recorded")))
            cpus.add(str(rec.provenance.get("cpu", "not recorded")))
        rows.append({"paper": paper, "row": variant, "model": group["model"].iloc[0], "runs": len(group),
                     "precision": " + ".join(sorted(precisions)),
                     "torch threads": ", ".join(sorted(threads)), "CPU": "; ".join(sorted(cpus)),
                     "training images/s (median)": round(float(np.median(speeds)), 1) if speeds else None,
                     "range": f"{min(speeds):.0f}–{max(speeds):.0f}" if speeds else "—"})
    return pd.DataFrame(rows)


def provenance(runs: pd.DataFrame) -> pd.DataFrame:
    """Per run of the chapter: where and when it ran (device, CPU threads, torch, commit, data)."""
    rows = []
    for _, run in runs[runs["paper"] == "cpu"].iterrows():
        p = ledger.record_at(run["record"]).provenance
        rows.append({"run": run["record"].rsplit("/", 1)[-1], "device": run["device"],
                     "torch threads": p.get("torch_threads"), "CPU cores": p.get("cpu_count"),
                     "torch": p.get("packages", {}).get("torch"), "wall time (s)": run["wall_time_s"],
                     "finished": run["finished"],
                     "resumed": "; ".join(f"from epoch {r['from_epoch']} ({r['elapsed_s']:.0f} s)"
                                          for r in p.get("resumes", [])) or "no",
                     "commit": str(run["commit"])[:8] + (" (+ changes)" if p.get("dirty") else ""),
                     "data": run["data_fingerprint"]})
    return pd.DataFrame(rows)
