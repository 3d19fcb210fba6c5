"""Uncertainty of one accuracy and paired comparisons of two models on the same faces (scipy).

- :func:`wilson`: the 95% Wilson score interval of an accuracy of k right out of n faces
  (``scipy.stats.binomtest(...).proportion_ci(method="wilson")``);
- :func:`mcnemar`: the exact McNemar test of two models scored on the same faces: of the faces one
  gets right and the other wrong (b one way, c the other), is b against c a coin toss?
  (``scipy.stats.binomtest(b, b + c, 0.5)``, two-sided). Below :data:`ALPHA` the two are
  *distinguishable* on these faces; otherwise the book says *not distinguishable*.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import binomtest

ALPHA = 0.05


def wilson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of the proportion k / n."""
    ci = binomtest(int(k), int(n)).proportion_ci(confidence_level=level, method="wilson")
    return float(ci.low), float(ci.high)


def accuracy_interval(accuracy: float, n: int, level: float = 0.95) -> tuple[float, float]:
    """The Wilson interval of an accuracy measured on ``n`` faces."""
    return wilson(round(float(accuracy) * n), n, level)


@dataclass(frozen=True)
class Paired:
    """Two models on the same faces: accuracies, discordant counts and McNemar's exact p."""

    n: int
    accuracy_a: float
    accuracy_b: float
    only_a: int  # faces A gets right and B wrong
    only_b: int
    p: float

    @property
    def verdict(self) -> str:
        if self.p >= ALPHA:
            return "not distinguishable"
        return "A better" if self.only_a > self.only_b else "B better"


def mcnemar(correct_a, correct_b) -> Paired:
    """The exact McNemar test of two boolean vectors of per-face correctness (same faces, same order)."""
    a, b = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    if a.shape != b.shape:
        raise ValueError(f"the two models were scored on different faces ({a.shape} against {b.shape})")
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    p = binomtest(only_a, only_a + only_b, 0.5).pvalue if only_a + only_b else 1.0
    return Paired(len(a), float(a.mean()), float(b.mean()), only_a, only_b, float(p))
