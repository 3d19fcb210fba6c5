"""A wall-clock budget (``train.budget``, the ``time_one_cycle`` schedule) and the CPU chapter's
tables (``fer_core.verdicts.budgets``)."""
import math
import time

import pandas as pd
import pytest
import torch

from fer_core.runs import ledger
from fer_core.train.engine import TimeOneCycle
from fer_core.verdicts import budgets
from fer_core.verdicts.claims import read_claims


def test_time_one_cycle_warms_up_then_reaches_its_floor_exactly_at_the_budget():
    opt = torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=1.0)
    s = TimeOneCycle(opt, peak=3e-3, budget=100.0, warmup=0.1, min_lr=0.0)
    assert s.lr(0) == pytest.approx(0.04 * 3e-3)
    assert s.lr(5) == pytest.approx(3e-3 * (0.04 + 0.96 * 0.5))
    assert s.lr(10) == pytest.approx(3e-3)
    assert s.lr(55) == pytest.approx(3e-3 * 0.5)  # half-way down the cosine
    assert s.lr(100) == pytest.approx(0.0, abs=1e-15) and s.lr(500) == s.lr(100)
    later = [s.lr(t) for t in range(10, 101, 5)]
    assert all(a >= b for a, b in zip(later, later[1:]))
    s.set(55)
    assert opt.param_groups[0]["lr"] == pytest.approx(1.5e-3)


def test_a_budget_reads_minutes_and_the_time_schedule_needs_one(tiny_cfg):
    assert tiny_cfg("train.budget=5m", "train.scheduler.name=time_one_cycle").train.budget == 300
    with pytest.raises(ValueError, match="train.budget"):
        tiny_cfg("train.scheduler.name=time_one_cycle")


@pytest.fixture(scope="module")
def budgeted(tmp_path_factory):
    """The cpu plan's test row (mini-Xception, a 4-second budget, a ceiling of 50 epochs) on the
    synthetic set, run through the run layer; its ledger rows."""
    from fer_core.schedule.slices import Slice, execute

    tmp = tmp_path_factory.mktemp("cpu")
    return execute(Slice("cpu", "test", overrides=["train.progress=false", f"output.results_dir={tmp / 'results'}",
                                                   f"output.checkpoint_dir={tmp / 'ckpt'}"]))


def test_the_budget_ends_the_run_and_its_schedule(budgeted):

    (record,) = [ledger.record_at(p) for p in budgeted["record"]]
    h = record.history
    assert record.config["train"]["budget"] == 4 and len(h) < record.config["train"]["epochs"]
    # stopped by the epoch that spent it, or by the checkpoint written after it (no empty epoch is started)
    assert (h["elapsed_s"].iloc[:-1] < 4).all()
    assert (h["epoch_share"].iloc[:-1] == 1).all() and 0 < h["epoch_share"].iloc[-1] <= 1
    assert h["lr"].iloc[-1] < 0.2 * record.config["train"]["optimizer"]["lr"]  # near the end of the cosine
    assert (h["elapsed_s"].diff().dropna() > 0).all()


def test_budget_tables_read_the_records(budgeted):
    runs = budgeted.assign(dataset="fer2013")  # the tables read FER2013 and CK+ rows of the cpu plan
    curves = budgets.curves(runs)
    (record,) = [ledger.record_at(p) for p in budgeted["record"]]
    assert len(curves) == len(record.history)
    assert curves["minutes"].iloc[-1] == pytest.approx(record.history["elapsed_s"].iloc[-1] / 60)
    table = budgets.budget_table(runs)
    row = table.iloc[0]
    assert row["epochs trained"] == pytest.approx(record.history["epoch_share"].sum(), abs=0.01)
    assert row["PrivateTest (%)"] == pytest.approx(budgeted["accuracy"].iloc[0] * 100, abs=0.01)
    assert row["selected epoch"] == record.metrics["selected_epoch"] and row["meets it"] == "—"
    assert row["images/s (training)"] > 0
    assert budgets.best_variant(runs) == "mini_xception-5m"
    assert budgets.best_variant(budgeted.assign(dataset="ckplus")) is None
    ck = budgets.ckplus_table(budgeted.assign(dataset="ckplus"))
    assert ck.iloc[0]["folds"] == 1 and ck.iloc[0]["model"] == "mini_xception"
    assert budgets.provenance(runs).iloc[0]["torch threads"] == torch.get_num_threads()


def test_targets_are_printed_met_or_missed():
    table = pd.DataFrame({"model": ["a", "b", "c"], "budget (min)": [5.0, 5.0, 30.0],
                          "PrivateTest (%)": [57.0, 58.5, 63.9]})
    five, thirty = budgets.targets_summary(table)
    assert "58.50% (b)" in five and five.endswith("met")
    assert "63.90% (c)" in thirty and thirty.endswith("missed")
    assert all("no run published" in line for line in budgets.targets_summary(table.iloc[:0]))


def test_context_figures_come_from_the_claims_with_their_lines():
    table = budgets.context_table(pd.DataFrame(columns=["paper", "dataset"]))
    claims = read_claims()
    for paper, label, metric, _, _ in budgets.CONTEXT:
        values = claims[(claims["paper"] == paper) & (claims["label"] == label) & (claims["metric"] == metric)]["value"]
        assert len(values) and set(values) <= set(table["accuracy (%)"])
    assert (table["model"] == "mini-Xception").sum() == 1 and not (table["source"] == "this book, 2 CPU cores").any()
    assert all(":" in s for s in table["source"] if "(" in s)  # a source line with every claim
    assert not any(math.isnan(v) for v in table["accuracy (%)"])


def test_a_resumed_budget_run_says_so_and_keeps_its_first_start(tiny_cfg):
    """#26 item 8: the resume's start used to overwrite provenance.started and nothing marked the
    record as resumed; the CPU chapter, which treats the wall clock as the measurement, shows it."""
    from fer_core.runs.runner import train

    cfg = tiny_cfg("data.synthetic_size=[56, 28, 28]", "data.subset=null", "eval.attention=0", "eval.tta=[]",
                   "train.budget=60", "train.scheduler.name=time_one_cycle", "train.epochs=3")
    assert train(cfg, stop_after=1) is None
    time.sleep(1.1)  # the resume starts in another second
    record = train(cfg, resume=True)
    (resume,) = record.provenance["resumes"]
    assert resume["from_epoch"] == 1 and resume["at"] != record.provenance["started"]
    assert record.provenance["started"] < resume["at"]
    # each part names its machine: a resume may land on another CPU, or on one core of a queue worker
    assert resume["torch_threads"] == torch.get_num_threads() and resume["cpu"] == record.provenance["cpu"]
    assert record.provenance["started_on"]["cpu"] == record.provenance["cpu"]
    runs = ledger.read_ledger(cfg.output.results_dir).assign(paper="cpu")
    assert budgets.provenance(runs).loc[0, "resumed"].startswith("from epoch 1 (")
    fresh = train(tiny_cfg("data.synthetic_size=[56, 28, 28]", "data.subset=null", "eval.attention=0",
                           "eval.tta=[]", "run=fresh"))
    assert "resumes" not in fresh.provenance


def test_the_speed_table_shows_every_model_at_its_training_batch(tmp_path):
    path = tmp_path / "train_cpu.csv"
    pd.DataFrame([{"case": "stn_sr@48", "model": "stn_sr", "input": 48, "loop": loop, "images_per_s": ips, "batch": b}
                  for loop, ips, b in [("book (default)", 232.7, 32), ("book (default)", 98.6, 16),
                                       ("evaluation (batch 256)", 595.3, 16)]]).to_csv(path, index=False)
    table = budgets.train_bench(str(path))
    assert list(table["case"]) == ["stn_sr@48"] * 3  # a queue model, not only the chapter's three
    assert list(table["batch"].astype(object).where(table["batch"].notna(), None)) == [32, 16, None]
