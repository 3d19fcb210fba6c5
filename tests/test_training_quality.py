"""Does training learn? Measured on this 2-core CPU; margins are stated beside each assertion."""
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from fer_core.data import load
from fer_core.runs.runner import train

MAJORITY_PRIVATE_TEST = 879 / 3589  # 'happy' in PrivateTest: 24.5%


@pytest.mark.slow
def test_synthetic_set_is_harder_for_a_linear_classifier_than_for_a_cnn(tiny_cfg):
    """Measured: logistic regression on pixels ~0.32, simple_cnn (width 16, 5 epochs) 0.53.
    Required: the CNN beats the linear model by at least 15 points."""
    data = load("synthetic")
    tr, te = data.select("train"), data.select("test")
    linear = make_pipeline(StandardScaler(), LogisticRegression(C=0.01, max_iter=300))
    linear.fit(tr.images.reshape(len(tr), -1) / 255.0, tr.targets)
    linear_acc = linear.score(te.images.reshape(len(te), -1) / 255.0, te.targets)
    cnn = train(tiny_cfg("run=cnn-vs-linear", "data.subset=null", "data.synthetic_size=[3500, 700, 700]",
                         "model.kwargs.width=16", "train.epochs=5", "train.scheduler.name=cosine",
                         "eval.tta=[]", "eval.attention=0"))
    print(f"linear {linear_acc:.3f}  cnn {cnn.metrics['accuracy']:.3f}")
    assert linear_acc < 0.45
    assert cnn.metrics["accuracy"] > linear_acc + 0.15


@pytest.mark.slow
@pytest.mark.realdata
def test_small_cnn_learns_real_fer2013_on_cpu(tiny_cfg, fer2013):
    """simple_cnn (width 16) on 8,000 training faces, 2 epochs of AdamW (the smoke profile's),
    under a minute here. Measured: 0.42 PrivateTest accuracy. Required: at least 10 points above
    the majority-class rate (24.5%), i.e. above 0.345, with at least four classes predicted."""
    rec = train(tiny_cfg("run=real-fer2013", "data.source=fer2013", "data.subset={train: 8000}",
                         "model.kwargs.width=16", "train.epochs=2", "train.batch_size=128",
                         "train.scheduler.name=cosine", "eval.tta=[]", "eval.attention=0"), data=fer2013)
    acc = rec.metrics["accuracy"]
    print(f"PrivateTest accuracy {acc:.4f} (majority {MAJORITY_PRIVATE_TEST:.4f})")
    assert rec.metrics["n"] == 3589 and rec.provenance["data"]["fingerprint"] == fer2013.fingerprint
    assert rec.metrics["note"] is None
    assert acc > MAJORITY_PRIVATE_TEST + 0.10
    # it is not predicting one class: at least four classes get predicted for real
    assert (np.array(rec.metrics["confusion_matrix"]).sum(0) > 20).sum() >= 4
