"""Classification metrics (scikit-learn): accuracy, precision / recall / F1 per class and
macro / weighted, the confusion matrix, and one-vs-rest ROC curves with AUC."""
from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, auc, confusion_matrix, log_loss, precision_recall_fscore_support, roc_curve

from .augment import STD


def classification_metrics(y_true: np.ndarray, probs: np.ndarray, class_names: list[str]) -> dict:
    """All scalar metrics of one evaluation, JSON-ready (ROC curves: :func:`roc_curves`)."""
    labels = np.arange(len(class_names))
    y_pred = probs.argmax(1)
    out: dict = {"n": int(len(y_true)), "accuracy": float(accuracy_score(y_true, y_pred)),
                 "cross_entropy": float(log_loss(y_true, np.clip(probs, 1e-12, 1), labels=labels))}
    for avg in ("macro", "weighted"):
        p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, labels=labels, average=avg, zero_division=0)
        out[avg] = {"precision": float(p), "recall": float(r), "f1": float(f)}
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, average=None, zero_division=0)
    out["per_class"] = {name: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]),
                               "support": int(s[i])} for i, name in enumerate(class_names)}
    out["confusion_matrix"] = confusion_matrix(y_true, y_pred, labels=labels).tolist()
    curves = roc_curves(y_true, probs, class_names)
    out["auc"] = {name: c["auc"] for name, c in curves.items()}
    present = [v for v in out["auc"].values() if v is not None]
    out["auc_macro"] = float(np.mean(present)) if present else None
    return out


def roc_curves(y_true: np.ndarray, probs: np.ndarray, class_names: list[str]) -> dict:
    """One-vs-rest ROC curve per class (``fpr``, ``tpr``, ``auc``); None where a class is absent."""
    out = {}
    for i, name in enumerate(class_names):
        positive = y_true == i
        if positive.all() or not positive.any():
            out[name] = {"fpr": [], "tpr": [], "auc": None}
            continue
        fpr, tpr, _ = roc_curve(positive, probs[:, i])
        out[name] = {"fpr": np.round(fpr, 5).tolist(), "tpr": np.round(tpr, 5).tolist(), "auc": float(auc(fpr, tpr))}
    return out


def psnr(mse_normalised: float) -> float:
    """Peak signal-to-noise ratio (dB, pixels in [0, 1]) of a mean squared error measured on the
    normalised model input ``(pixel - MEAN) / STD`` (what the ``sr_l2`` loss term reports)."""
    mse = float(mse_normalised) * STD ** 2
    return float("inf") if mse <= 0 else float(10 * np.log10(1.0 / mse))
