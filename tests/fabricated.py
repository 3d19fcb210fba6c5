"""Helpers of the tests: images on disk, and fabricated run records, never results, always marked
so, never under results/.

``fabricate(folder, paper, variant, ...)`` writes a complete-looking run record (metrics,
history, predictions, ROC, config, provenance) whose provenance says ``fixture: FABRICATED`` and
whose device is ``FIXTURE (fabricated by the test suite)``, and adds its row to ``folder``'s ledger
as a paper-profile run, so that the verdicts and the chapters can be tested on known numbers.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fer_core.runs import ledger, records
from fer_core.runs.records import RunPaths, RunRecord

MARK = "FABRICATED by the test suite: not a result"
DEVICE = "FIXTURE (fabricated by the test suite)"
CLASSES = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]


def write_png(path: Path, array: np.ndarray) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array.astype(np.uint8)).save(path)


def fabricate(folder: Path, paper: str, variant: str, *, accuracy: float, seed: int = 0, fold: int | None = None,
              dataset: str = "fer2013", profile: str = "paper", tta: float | None = None, macro_f1: float = 0.5,
              epochs: int = 3, history: dict | None = None, extra_metrics: dict | None = None,
              model: str | None = None, n: int = 50, autocast: str | None = "bfloat16",
              sizes: dict | None = None) -> dict:
    """Write one fabricated run record (its test split: ``n`` faces; trained under ``autocast``,
    None for float32) and its ledger row; returns the row."""
    run = (f"{variant}-{dataset}{'' if fold is None else f'-fold{fold}'}-s{seed}"
           f"{'' if profile == 'paper' else '-' + profile}-fixture")
    path = Path(folder) / paper / run
    path.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    target = rng.integers(0, len(CLASSES), n)
    pred = np.where(np.arange(n) < round(accuracy * n), target, (target + 1) % len(CLASSES))
    probs = np.full((n, len(CLASSES)), 0.05)
    probs[np.arange(n), pred] = 0.7
    per_class = {c: {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": int((target == i).sum())}
                 for i, c in enumerate(CLASSES)}
    block = {"n": n, "accuracy": accuracy, "cross_entropy": 1.0,
             "macro": {"precision": 0.5, "recall": 0.5, "f1": macro_f1},
             "weighted": {"precision": 0.5, "recall": 0.5, "f1": macro_f1}, "per_class": per_class,
             "confusion_matrix": np.eye(len(CLASSES), dtype=int).tolist(), "auc": {c: 0.9 for c in CLASSES},
             "auc_macro": 0.9}
    metrics = {"split": "test", "selected_epoch": epochs, "best_val_acc": accuracy, "epochs_run": epochs,
               "parameters": 1_000_000, "note": MARK, **block, **(extra_metrics or {})}
    if tta is not None:
        metrics["tta"] = {"random_views": {**block, "accuracy": tta, "macro": {**block["macro"], "f1": macro_f1}}}
    hist = {"epoch": list(range(1, epochs + 1)), "lr": [1e-3] * epochs, "train_loss": [1.5] * epochs,
            "train_ce": [1.5] * epochs, "train_acc": [0.5] * epochs, "val_loss": [1.2] * epochs,
            "val_acc": [accuracy] * epochs, **(history or {})}
    config = {"experiment": paper, "run": run, "seed": seed, "tags": {"paper": paper, "variant": variant,
                                                                      "profile": profile},
              "data": {"source": dataset, "fold": fold or 0, "cv": fold is not None},
              "model": {"name": model or variant}}
    prov = {"commit": "f1x7u4e0", "dirty": False, "fixture": MARK, "device": DEVICE, "gpu": DEVICE,
            "data": {"source": dataset, "location": "(fabricated)", "fingerprint": "fixture", "sizes": sizes or {}},
            "precision": {"autocast": autocast, "losses_and_metrics": "float32"},
            "note": MARK, "packages": {}, "wall_time_s": 1.0, "started": "2026-01-01T00:00:00",
            "finished": "2026-01-01T00:01:00", "command": "tests/fabricated.py", "checkpoint": "(none: fabricated)"}
    predictions = pd.DataFrame({"file": np.arange(n), "target": target, "pred": pred,
                                **{f"prob_{c}": probs[:, i] for i, c in enumerate(CLASSES)}})
    roc = {c: {"fpr": [0.0, 0.1, 1.0], "tpr": [0.0, 0.8, 1.0], "auc": 0.9} for c in CLASSES}
    records.write(RunPaths(path, path / "no-checkpoints"), config, pd.DataFrame(hist).to_dict("records"), metrics,
                  {"plain": roc}, predictions, prov)
    row = ledger.row_of(RunRecord.read(path), paper=paper, variant=variant, profile=profile)
    ledger.append(folder, row)
    return row
