"""Classification metrics against hand-computed cases (fer_core.train.metrics)."""

import numpy as np
import pytest

from fer_core.train.metrics import classification_metrics


# -- metrics ------------------------------------------------------------------------------------
def test_metrics_on_a_hand_computed_case():
    y = np.array([0, 0, 1, 1, 2, 2])
    probs = np.eye(3)[[0, 1, 1, 1, 2, 0]] * 0.8 + 0.2 / 3
    m = classification_metrics(y, probs, ["a", "b", "c"])
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    # class a: precision 1/2, recall 1/2; b: 2/3, 1; c: 1, 1/2
    assert m["per_class"]["b"]["precision"] == pytest.approx(2 / 3) and m["per_class"]["b"]["recall"] == 1
    assert m["macro"]["precision"] == pytest.approx((1 / 2 + 2 / 3 + 1) / 3)
    assert m["macro"]["f1"] == pytest.approx((1 / 2 + 0.8 + 2 / 3) / 3)
    # AUC of b: positives (rows 2, 3) beat 3 of 4 negatives and tie row 1 (a tie counts 1/2) -> 7/8
    assert m["auc"]["b"] == pytest.approx(7 / 8) and m["auc"]["c"] == pytest.approx(6 / 8)
