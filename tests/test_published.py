"""The records are the truth (issue 37): each finished record is sealed by a manifest (the SHA-256
of its files and its identity), the book's published view is the valid records found under
``results/`` (never the ledger, never a path outside), one per identity, and a run's identity
names its data's content, not its folder's spelling."""
import json
import shutil
import subprocess

import pandas as pd
import pytest
from fabricated import fabricate

from fer_core.book import published as book_published
from fer_core.cli import main
from fer_core.runs import ledger, records
from fer_core.runs.records import MANIFEST
from fer_core.verdicts.rule import NOT_TESTED, REPRODUCED, verdict_of

DU = {"paper": "du", "table": "T1", "label": "Improved", "row": "improved_resnet50", "versus": "", "dataset": "fer2013",
      "split": "val", "metric": "last:val_acc", "relation": "=", "value": 57.31, "unit": "%", "source": "s",
      "quote": "q", "not_comparable": "", "note": ""}


@pytest.fixture
def published(tmp_path):
    """Du's improved ResNet-50, sealed, its last validation accuracy 57.0: reproduced against 57.31."""
    fabricate(tmp_path, "du", "improved_resnet50", accuracy=0.59, n=3589, epochs=3, sizes={"val": 3589},
              history={"val_acc": [0.50, 0.58, 0.57]})
    return tmp_path


def _record(folder, paper="du"):
    return next((folder / paper).iterdir())


def _verdict(folder):
    return verdict_of(DU, book_published.published(folder))


def test_a_sound_record_counts(published):
    v = _verdict(published)
    assert v.verdict == REPRODUCED and v.ours.mean == pytest.approx(57.0)


def test_an_edited_history_is_refused_naming_the_file(published):
    hist = _record(published) / "history.csv"
    hist.write_text(hist.read_text().replace("0.57", "0.45"))  # the book's only reproduced claim flipped
    runs, refused = book_published.published_view(published)
    assert len(runs) == 0 and refused["problems"].tolist() == ["history.csv changed since the record was sealed"]
    assert _verdict(published).verdict == NOT_TESTED


def test_an_edited_duplicate_free_file_is_refused(published):
    (_record(published) / records.DUPLICATE_FREE).write_text(json.dumps({"duplicate_free": {"accuracy": 0.95}}))
    assert "duplicate_free.json was written after the record was sealed" in book_published.published_view(published)[1][
        "problems"].iloc[0]


def test_a_truncated_metrics_json_is_refused_naming_it_not_a_traceback(published):
    metrics = _record(published) / records.FINISHED
    metrics.write_text(metrics.read_text()[:40])
    problems = book_published.published_view(published)[1]["problems"].iloc[0]
    assert problems == "metrics.json changed since the record was sealed"


def test_an_unsealed_record_does_not_count(published):
    (_record(published) / MANIFEST).unlink()
    assert book_published.published_view(published)[1]["problems"].iloc[0].startswith("no manifest.json")


def test_the_ledger_is_not_read_wiped_copied_over_or_pointing_outside(published, tmp_path_factory):
    before = _verdict(published)
    node = tmp_path_factory.mktemp("node")
    fabricate(node, "pham", "vgg19", accuracy=0.7, n=100)  # a GPU node's one-row ledger, copied over ours
    shutil.copy(ledger.ledger_path(node), ledger.ledger_path(published))
    assert _verdict(published).ours.mean == before.ours.mean
    outside = tmp_path_factory.mktemp("outside")  # a self-consistent record outside, named by a ledger row
    fabricate(outside, "du", "improved_resnet50", accuracy=0.59, n=3589, seed=1, sizes={"val": 3589},
              history={"val_acc": [0.3, 0.3, 0.3]})
    rows = pd.concat([ledger.read_ledger(published), ledger.read_ledger(outside)])
    rows.to_csv(ledger.ledger_path(published), index=False)
    assert _verdict(published).ours.n == 1 and _verdict(published).ours.mean == before.ours.mean
    ledger.ledger_path(published).write_text("")  # wiped
    assert _verdict(published).ours.mean == before.ours.mean


def test_a_second_record_of_one_run_is_an_error_naming_both(published):
    original = _record(published)
    shutil.copytree(original, original.with_name(original.name + "-copy"))
    with pytest.raises(ledger.LedgerError, match=r"Two records of one run .*fixture and .*fixture-copy"):
        book_published.published_view(published)


def test_ledger_rebuild_writes_the_index_from_the_valid_records(published, capsys):
    ledger.ledger_path(published).write_text("")
    assert main(["ledger", "rebuild", "--results-dir", str(published)]) == 0
    rows = ledger.read_ledger(published)
    assert rows["variant"].tolist() == ["improved_resnet50"] and "1 valid record(s)" in capsys.readouterr().out
    (_record(published) / "roc.json").write_text("{}")
    assert main(["ledger", "check", "--results-dir", str(published)]) == 1
    assert "refused" in capsys.readouterr().out


def test_seal_writes_a_manifest_only_for_a_record_that_recomputes(published, capsys):
    folder = _record(published)
    (folder / MANIFEST).unlink()
    metrics = json.loads((folder / records.FINISHED).read_text())
    (folder / records.FINISHED).write_text(json.dumps({**metrics, "accuracy": 0.99}))
    assert main(["ledger", "seal", "--results-dir", str(published)]) == 0
    assert not (folder / MANIFEST).exists() and "not sealed" in capsys.readouterr().out


def test_overwrite_moves_the_old_record_out_of_the_published_view_and_files_the_new_one(tiny_cfg, tmp_path):
    from fer_core.runs.runner import run
    first = run(tiny_cfg("train.epochs=1"))
    second = run(tiny_cfg("train.epochs=1", "output.overwrite=true", "seed=0"), reuse=False)
    rows = ledger.read_ledger(tmp_path / "r")
    assert len(rows) == 1 and rows["finished"].iloc[0] == second.provenance["finished"]
    aside = list((tmp_path / "r" / "superseded" / "replaced").glob("*/*.replaced-*"))
    assert len(aside) == 1 and (aside[0] / records.FINISHED).is_file() and first.path != aside[0]
    assert len(ledger.scan(tmp_path / "r")[0]) == 1


def test_recomputed_attention_is_sealed_anew(published):
    folder = _record(published)
    (folder / records.ATTENTION).write_bytes(b"x")  # what the attention command's rewrite would leave unsealed
    assert "attention.npz was written after" in records.verify(folder)[0]
    records.seal(folder)
    assert records.verify(folder) == []


@pytest.mark.parametrize("spelling", ["../shared/data", "{abs}", "{abs}/", "../shared/../shared/data"])
def test_published_records_are_found_from_any_spelling_of_the_data_folder(shared_data, spelling):
    from fer_core.paths import ROOT
    from fer_core.schedule.plans import config_for, read_plan

    name = config_for(read_plan("qin"), "stn-ckplus", "paper", fold=3,
                      data_dir=spelling.format(abs=shared_data.resolve())).run_name
    assert (ROOT / "results" / "qin" / name / MANIFEST).is_file(), name


def test_a_new_runs_name_hashes_the_datas_content_not_its_path(tmp_path):
    """The same fer2013.csv in two folders gives one run name; a changed face gives another."""
    from fer_core.data import _fingerprint_cached
    from fer_core.data.synthetic import make_synthetic
    from fer_core.schedule.plans import config_for, read_plan

    syn = make_synthetic(7, 7, 7, seed=0)
    usage = [{"train": "Training", "val": "PublicTest", "test": "PrivateTest"}[s] for s in syn["split"]]
    table = pd.DataFrame({"emotion": syn["labels"], "pixels": [" ".join(map(str, im.ravel())) for im in syn["images"]],
                          "Usage": usage})
    for where in ("a", "b"):
        (tmp_path / where).mkdir()
        table.to_csv(tmp_path / where / "fer2013.csv", index=False)

    def name(where):
        return config_for(read_plan("du"), "resnet50", "paper", data_dir=str(tmp_path / where),
                          overrides=["data.source=fer2013-csv"]).run_name
    assert name("a") == name("b")
    table.assign(emotion=(table["emotion"] + 1) % 7).to_csv(tmp_path / "b" / "fer2013.csv", index=False)
    _fingerprint_cached.cache_clear()
    assert name("b") != name("a")


def test_an_untracked_file_makes_the_tree_dirty(tmp_path):
    def git(*a):
        subprocess.run(["git", *a], cwd=tmp_path, check=True, capture_output=True)
    git("init", "-q")
    (tmp_path / "code.py").write_text("x = 1\n")
    git("add", ".")
    git("-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "c")
    assert records.git_commit(tmp_path)["dirty"] is False
    (tmp_path / "new_plan.yaml").write_text("paper: new\n")
    state = records.git_commit(tmp_path)
    assert state["dirty"] is True and state["changed_files"] == ["new_plan.yaml"]
    (tmp_path / ".gitignore").write_text("new_plan.yaml\n")
    git("add", ".gitignore")
    git("-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "ignore")
    assert records.git_commit(tmp_path)["dirty"] is False
