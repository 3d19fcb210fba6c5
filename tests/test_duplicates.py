"""FER2013's test faces that are training faces: found by their pixels, left out of the second score."""
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from fer_core.data import duplicates, load


@pytest.fixture
def data():
    """The synthetic set posing as FER2013, with three test faces made copies of training faces:
    two exact (one under another label), one a single grey level off."""
    d = load("synthetic", synthetic_size=(40, 10, 10))
    images, labels = d.images.copy(), d.labels.copy()
    train, test = np.flatnonzero(d.split == "train"), np.flatnonzero(d.split == "test")
    images[test[0]] = images[train[0]]
    labels[test[0]] = labels[train[0]]
    images[test[1]] = images[train[1]]
    labels[test[1]] = (labels[train[1]] + 1) % 7
    images[test[2]] = images[train[2]]
    images[test[2], 0, 0] ^= 1  # a near-duplicate: not caught, as the method says
    files = np.array([f"f{i}" for i in range(len(d))])
    return replace(d, images=images, labels=labels, source="fer2013", files=files), test, train


def test_exact_copies_are_found_and_near_ones_are_not(data):
    d, test, train = data
    twins = duplicates.training_twins(d)
    found = twins.table[twins.table["split"] == "test"]
    assert found["row"].tolist() == [test[0], test[1]] and found["twin_row"].tolist() == [train[0], train[1]]
    assert (found["target"] == found["twin_target"]).tolist() == [True, False]
    assert twins.files("test") == {f"f{test[0]}", f"f{test[1]}"}
    assert "near-duplicates not caught" in duplicates.METHOD


def test_the_scores_without_twins_come_from_the_predictions(data):
    d, test, _ = data
    predictions = pd.DataFrame({"file": [f"f{i}" for i in test], "target": d.targets[test],
                                "pred": d.targets[test]})
    predictions.loc[2:, "pred"] = (predictions.loc[2:, "pred"] + 1) % 7  # right only on the two twins
    out = duplicates.for_run(d, predictions)
    assert out["dropped"] == 2 and out["full"]["n"] == len(test) and out["duplicate_free"]["n"] == len(test) - 2
    assert out["full"]["accuracy"] == pytest.approx(2 / len(test)) and out["duplicate_free"]["accuracy"] == 0.0
    assert duplicates.for_run(replace(d, source="synthetic"), predictions) is None  # FER2013 only
    tta = duplicates.for_run(d, predictions.assign(pred_tta_random_views=d.targets[test]))  # each TTA mode too
    assert tta["full"]["accuracy_tta_random_views"] == 1.0 and tta["duplicate_free"]["n"] == len(test) - 2


def test_a_record_shows_both_scores_and_old_records_without_the_file_read_as_missing(tmp_path):
    from fabricated import fabricate

    from fer_core.runs import ledger
    from fer_core.verdicts.rule import values_of

    row = fabricate(tmp_path, "du", "resnet50", accuracy=0.6, n=100)
    fabricate(tmp_path, "du", "improved_resnet50", accuracy=0.7, n=100)
    path = ledger.record_at(row["record"]).path
    (path / duplicates.FILE).write_text('{"duplicate_free": {"accuracy": 0.55, "macro_f1": 0.5, "n": 90}}')
    runs = ledger.read_ledger(tmp_path)
    values = values_of(runs, "duplicate_free:accuracy")
    assert values[0] == 0.55 and np.isnan(values[1])


def test_fer2013_has_its_known_twins_and_the_command_scores_only_records_of_the_same_data(
        fer2013, shared_data, tmp_path, capsys):
    from fabricated import fabricate

    from fer_core.cli import main

    twins = duplicates.training_twins(fer2013)
    same = twins.table["target"] == twins.table["twin_target"]
    assert twins.table.groupby("split").size().to_dict() == {"test": 288, "val": 280}
    assert same.groupby(twins.table["split"]).sum().to_dict() == {"test": 279, "val": 273}
    fabricate(tmp_path, "du", "resnet50", accuracy=0.5)  # made on other data (fingerprint "fixture")
    assert main(["duplicates", "--data-dir", str(shared_data), "--records", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "288 of 3589 faces have a training twin (279 with its label)" in out and "skipped" in out
    assert not list(tmp_path.rglob(duplicates.FILE))
