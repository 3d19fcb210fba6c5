"""The ledger: one row per record, whatever path named it, kept relative to its checkout."""
from fer_core import ledger


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
