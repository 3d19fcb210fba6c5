"""The ledger: one row per record, whatever path named it, kept relative to its checkout."""
import pandas as pd
import pytest

from fer_core.runs import ledger


def _checkout(tmp_path):
    home = tmp_path / "main"
    (home / "fer_core").mkdir(parents=True)
    (home / "pyproject.toml").write_text("")
    run = home / "results" / "qin" / "base-ckplus-fold8"
    run.mkdir(parents=True)
    return home, run


def test_a_record_is_kept_relative_to_the_checkout_that_holds_it(tmp_path):
    """A queue run from a worktree (../queue) writes into ../main/results: the row must read
    results/<plan>/<run> in any clone, not the worktree's absolute path."""
    home, run = _checkout(tmp_path)
    worktree_view = tmp_path / "queue" / ".." / "main" / "results" / "qin" / "base-ckplus-fold8"
    assert ledger.portable(worktree_view) == "results/qin/base-ckplus-fold8"
    outside = tmp_path / "elsewhere" / "run"
    outside.mkdir(parents=True)
    assert ledger.portable(outside) == str(outside.resolve())


def test_the_same_record_named_two_ways_gets_one_row(tmp_path):
    """A finished run read back by a later queue call adds no second row (it used to: the same
    record under /work/queue/../main/results/... beside /work/main/results/...)."""
    home, run = _checkout(tmp_path)
    results = home / "results"
    row = {c: "" for c in ledger.COLUMNS}
    ledger.append(results, {**row, "record": "results/qin/base-ckplus-fold8"})
    ledger.append(results, {**row, "record": str(tmp_path / "queue" / ".." / "main" / "results" / "qin"
                                                 / "base-ckplus-fold8")})
    ledger.append(results, {**row, "record": str(run)})
    assert ledger.read_ledger(results)["record"].tolist() == ["results/qin/base-ckplus-fold8"]


@pytest.mark.parametrize("damage", ["cut", "foreign", "short_row"])
def test_a_damaged_ledger_is_named_before_training_and_never_extended(tiny_cfg, damage):
    """#26 item 4: a ledger cut mid-line used to read silently and then be corrupted for good by the
    next append; one with a foreign header let a full run train, then ended with a KeyError."""
    from fer_core.runs.runner import train

    cfg = tiny_cfg("data.synthetic_size=[56, 28, 28]", "data.subset=null", "eval.attention=0", "eval.tta=[]")
    first = train(cfg)
    path = ledger.ledger_path(cfg.output.results_dir)
    text = path.read_text()
    broken = {"cut": text[:-25], "foreign": "name,score\nx,1\n",
              "short_row": text + "pham,resnet34,resnet34\n"}[damage]
    path.write_text(broken)
    line = {"cut": r"line 2 is cut off", "foreign": r"line 1 is not a ledger's header \(no paper, model",
            "short_row": r"line 3 has 3 fields where its header has"}[damage]
    with pytest.raises(ledger.LedgerError, match=rf"Ledger {path} {line}"):
        train(tiny_cfg("data.synthetic_size=[56, 28, 28]", "data.subset=null", "eval.attention=0", "eval.tta=[]",
                       "run=second"))
    with pytest.raises(ledger.LedgerError):
        ledger.append(cfg.output.results_dir, ledger.row_of(first, paper="x", variant="y", profile="z"))
    assert path.read_text() == broken  # nothing appended to a broken ledger, nothing repaired silently


def test_ledger_rows_are_deduplicated_by_record(tmp_path):
    row = {c: None for c in ledger.COLUMNS} | {"record": "results/x/y", "paper": "pham"}
    ledger.append(tmp_path, row)
    ledger.append(tmp_path, row)
    assert len(ledger.read_ledger(tmp_path)) == 1
    assert isinstance(ledger.read_ledger(tmp_path / "none"), pd.DataFrame)


def test_a_ledger_with_older_columns_is_migrated_not_corrupted(tmp_path):
    old_columns = [c for c in ledger.COLUMNS if c != "cross_entropy"]
    pd.DataFrame([{c: None for c in old_columns} | {"paper": "pham", "record": "results/old/run"}]).to_csv(
        tmp_path / "ledger.csv", index=False)
    ledger.append(tmp_path, {c: None for c in ledger.COLUMNS} | {"record": "results/new/run", "cross_entropy": 1.5})
    book = ledger.read_ledger(tmp_path)
    assert list(book.columns) == ledger.COLUMNS and book["record"].tolist() == ["results/old/run", "results/new/run"]
    assert pd.isna(book.loc[0, "cross_entropy"]) and book.loc[1, "cross_entropy"] == 1.5


def test_the_run_layer_is_the_ledgers_one_writer():
    """Only ``runs.file_record`` appends to a ledger (trained runs, read-back runs and the Ray
    driver all go through it): a second writer would have to be found by its duplicate rows."""
    import ast

    from fer_core.paths import ROOT

    writers = []
    for path in sorted((ROOT / "fer_core").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "append"
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "ledger"):
                writers.append(path.name)
    assert writers == ["runner.py"]
