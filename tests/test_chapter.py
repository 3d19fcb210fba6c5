"""What a chapter draws from published records: per row its curves beside the paper's per-epoch
values, its folds and its pooled confusion matrix."""
import numpy as np
import pytest
from fabricated import fabricate

from fer_core.book import plots
from fer_core.book.chapter import Chapter
from fer_core.runs import ledger
from fer_core.schedule.plans import read_plan


def test_row_figures_draw_every_run_beside_the_papers_epochs(tmp_path, monkeypatch, capsys):
    drawn = []
    monkeypatch.setattr(plots, "show", lambda fig: drawn.append(fig))
    for seed in (0, 1):
        fabricate(tmp_path, "du", "improved_resnet50", accuracy=0.55, seed=seed,
                  history={"val_acc": [0.40, 0.55, 0.571], "val_loss": [5.3, 1.3, 1.16]})
    for fold in range(10):
        fabricate(tmp_path, "yu", "xception_separable", accuracy=0.9, fold=fold, dataset="ckplus")
    runs = ledger.read_ledger(tmp_path)
    du = Chapter("du", "paper", read_plan("du"), runs, None)
    assert du.paper_points("improved_resnet50") == {"val_loss": [(30, 1.15563), (1, 5.3601)],
                                                    "val_acc": [(30, 57.31), (1, 41.73)]}
    du.row_figures("improved_resnet50", "resnet50")
    assert "no run shown of resnet50" in capsys.readouterr().out
    curves, confusion = drawn
    lines = [t for t in curves.data if t.mode == "lines"]
    assert len(lines) == 4 and {t.name for t in lines} == {"seed 0", "seed 1"}  # loss and accuracy, per run
    stars = [t for t in curves.data if t.mode == "markers"]
    assert sorted(stars[1].y) == [41.73, 57.31] and sorted(stars[1].x) == [1, 30]
    assert "pooled over 2 run(s), 100 test faces" in confusion.layout.title.text
    drawn.clear()
    Chapter("yu", "paper", read_plan("yu"), runs, None).row_figures("xception_separable")
    assert [f.layout.title.text.split(":")[1].strip().split(" ")[0] for f in drawn] == ["validation", "test",
                                                                                        "confusion"]


def test_a_published_record_from_uncommitted_code_is_flagged(tmp_path):
    import json

    from fer_core.book.prose import banner_text

    row = fabricate(tmp_path, "du", "resnet50", accuracy=0.44)
    fabricate(tmp_path, "du", "improved_resnet50", accuracy=0.57)
    runs = ledger.read_ledger(tmp_path)
    ch = Chapter("du", "paper", read_plan("du"), runs, None)
    assert "uncommitted" not in banner_text(ch)
    prov = ledger.record_at(row["record"]).path / "provenance.json"
    p = json.loads(prov.read_text())
    prov.write_text(json.dumps({**p, "dirty": True, "changed_files": ["fer_core/engine.py"], "diff_sha256": "ab12"}))
    text = banner_text(ch)
    assert "1 of them were made from uncommitted code" in text and "fer_core/engine.py" in text


def test_the_queue_speed_table_reads_each_runs_own_clock_and_precision(tmp_path):
    import json

    from fer_core.verdicts import budgets

    for fold in range(2):
        row = fabricate(tmp_path, "qin", "base-ckplus", accuracy=0.8, fold=fold, dataset="ckplus", model="stn_sr",
                        history={"elapsed_s": [10.0, 20.0, 30.0]})
        prov = ledger.record_at(row["record"]).path / "provenance.json"
        p = json.loads(prov.read_text())
        p["data"]["sizes"] = {"train": 800}
        p["precision"] = {"autocast": "bfloat16" if fold else None}
        p["torch_threads"], p["cpu"] = 2 - fold, "AMD EPYC"  # the second run: one of two queue workers
        prov.write_text(json.dumps(p))
    runs = ledger.read_ledger(tmp_path).assign(device="cpu")
    t = budgets.queue_speed(runs)
    assert t.loc[0, "runs"] == 2 and t.loc[0, "training images/s (median)"] == 80.0  # 3 epochs x 800 / 30 s
    assert t.loc[0, "precision"] == "bfloat16 + float32"
    assert t.loc[0, "torch threads"] == "1, 2" and t.loc[0, "CPU"] == "AMD EPYC"


def test_an_edited_ledger_changes_nothing_and_an_edited_record_is_refused_and_named(tmp_path):
    """#26 item 3 and #37: a ledger accuracy edited to 0.99 used to show as 99.0%; the book no
    longer reads the ledger. A metrics.json edited to 0.98 no longer matches its manifest: the
    record counts nowhere, and the chapter's banner names it."""
    import json

    from fer_core.book.prose import banner_text
    from fer_core.book.published import published_view
    from fer_core.verdicts.rule import verdict_of

    for seed in (0, 1):
        fabricate(tmp_path, "du", "resnet50", accuracy=0.44, seed=seed, n=200)
    path = tmp_path / "ledger.csv"
    lines = path.read_text().splitlines()
    head = lines[0].split(",")
    row = lines[1].split(",")
    row[head.index("accuracy")] = "0.99"
    path.write_text("\n".join([lines[0], ",".join(row), *lines[2:]]) + "\n")
    runs, refused = published_view(tmp_path)
    assert runs["accuracy"].tolist() == [0.44, 0.44] and len(refused) == 0
    metrics = ledger.record_at(runs.loc[1, "record"]).path / "metrics.json"
    m = json.loads(metrics.read_text())
    metrics.write_text(json.dumps({**m, "accuracy": 0.98}))
    runs, refused = published_view(tmp_path)
    assert len(runs) == 1 and refused["problems"].tolist() == ["metrics.json changed since the record was sealed"]
    claim = {"paper": "du", "row": "resnet50", "versus": "", "dataset": "fer2013", "metric": "accuracy",
             "relation": "=", "value": 44.0, "unit": "%", "note": ""}
    assert verdict_of(claim, runs).ours.n == 1  # the refused record is no sample
    text = banner_text(Chapter("du", "paper", read_plan("du"), runs, None, refused))
    assert "1 record(s) fail their check" in text and "metrics.json changed since the record was sealed" in text


def test_the_cpu_chapter_shows_the_records_numbers_not_the_ledgers(tmp_path):
    from fer_core.verdicts import budgets

    row = fabricate(tmp_path, "cpu", "simple_cnn-5m", accuracy=0.62, n=200, model="simple_cnn",
                    history={"elapsed_s": [100.0, 200.0, 300.0]})
    cfg = ledger.record_at(row["record"]).path / "config.yaml"
    cfg.write_text(cfg.read_text() + "train: {budget: 300}\n")
    runs = ledger.read_ledger(tmp_path).assign(accuracy=0.99)
    assert budgets.budget_table(runs).loc[0, "PrivateTest (%)"] == 62.0


def test_a_control_is_compared_paired_over_the_folds_both_rows_ran(tmp_path):
    gains = np.array([6.0, 8.0] * 5)  # bicubic above base by 6 or 8 points per fold; unpaired, the folds'
    for fold in range(10):  # own spread (0.80 to 0.89) would hide it
        fabricate(tmp_path, "qin", "base-ckplus", accuracy=0.80 + fold / 100, fold=fold, dataset="ckplus", n=100,
                  model="stn_sr")
        fabricate(tmp_path, "qin", "bicubic-ckplus", accuracy=0.80 + (fold + gains[fold]) / 100, fold=fold,
                  dataset="ckplus", n=100, model="stn_sr")
    fabricate(tmp_path, "qin", "stn-ckplus", accuracy=0.9, fold=0, dataset="ckplus", n=100, model="stn_sr")
    ch = Chapter("qin", "paper", read_plan("qin"), ledger.read_ledger(tmp_path), None)
    table = ch.differences(("bicubic-ckplus", "base-ckplus"), ("stn-ckplus", "base-ckplus"),
                           ("sr-ckplus", "bicubic-ckplus"))
    control = table.loc["bicubic-ckplus − base-ckplus"]
    half = 2.262157 * gains.std(ddof=1) / 10 ** 0.5  # t9 times the standard error of the per-fold gains
    assert control["accuracy (points)"] == f"7.00 ± {half:.2f} (95%, 1 seed × 10 folds, t9)"
    assert control["paired"] == "yes: over the seeds and folds both ran"
    assert control["zero outside the 95% interval"] == "yes: bicubic-ckplus higher"
    short = table.loc["stn-ckplus − base-ckplus"]  # one fold against ten: paired on that fold, said to be partial
    assert short["paired"] == "yes: over the seeds and folds both ran"
    assert short["accuracy (points)"].startswith("10.00 ± ")  # fold 0: 90 against 80
    assert short["accuracy (points)"].endswith("partial: stn-ckplus: seed 0: 1 of 10 folds")
    assert table.loc["sr-ckplus − bicubic-ckplus", "accuracy (points)"] == "not run: sr-ckplus"


def test_a_seed_short_of_folds_is_named_and_left_out_of_the_mean_where_the_row_has_full_seeds(tmp_path):
    """The bicubic control with seed 0's ten folds and seed 1's first three, against Base's three full
    seeds: the table's estimate is seed 0's, the control is paired with Base over seed 0 (the seeds
    and folds both ran), and seed 1 is named as left out; three folds are other faces than ten."""
    for seed in range(3):
        for fold in range(10):
            fabricate(tmp_path, "qin", "base-ckplus", accuracy=0.80 + fold / 100, fold=fold, seed=seed,
                      dataset="ckplus", n=100, model="stn_sr")
    for seed, folds in ((0, range(10)), (1, range(3))):
        for fold in folds:
            fabricate(tmp_path, "qin", "bicubic-ckplus", accuracy=0.86 + fold / 100 + (0.05 if seed else 0.0),
                      fold=fold, seed=seed, dataset="ckplus", n=100, model="stn_sr")
    ch = Chapter("qin", "paper", read_plan("qin"), ledger.read_ledger(tmp_path), None)
    row = ch.results().loc["bicubic-ckplus"]
    assert row["runs"] == 13
    assert row["accuracy (%)"].startswith("90.50 ± ") and "(95%, 1 seed × 10 folds, t9)" in row["accuracy (%)"]
    assert row["accuracy (%)"].endswith("partial: seed 1: 3 of 10 folds (not in the mean)")
    control = ch.differences(("bicubic-ckplus", "base-ckplus")).loc["bicubic-ckplus − base-ckplus"]
    assert control["accuracy (points)"].startswith("6.00 ± 0.00 (95%, 1 seed × 10 folds, t9), partial: bicubic-ckplus")
    assert control["paired"] == "yes: over the seeds and folds both ran"


def test_the_committed_verdicts_are_what_the_front_chapter_shows(tmp_path):
    """results/verdicts.csv and .json are the front chapter's table as data (python -m fer_core.book
    verdicts, which refresh runs): written by the same code from the same records."""
    from collections import Counter

    import pandas as pd

    from fer_core.book.front import VERDICTS_FILE, overview, write_verdicts
    from fer_core.book.tables import SYMBOL
    committed = VERDICTS_FILE.with_suffix(".csv")
    fresh = write_verdicts(path=tmp_path / "verdicts", readme=None)
    assert committed.read_text() == fresh[0].read_text(), "run python -m fer_core.book verdicts (or refresh)"
    assert VERDICTS_FILE.with_suffix(".json").read_text() == fresh[1].read_text()
    table = pd.read_csv(committed, keep_default_na=False)
    shown = overview()[1]
    assert Counter(zip(shown["claim"], shown["verdict"])) == Counter(zip(table["label"], table["verdict"].map(SYMBOL)))
    tested = table[table["verdict"].isin(["reproduced", "not reproduced"]) & (table["metric"] != "model:parameters_m")]
    assert (tested["records"] != "").all() and (tested["commits"] != "").all()


def test_the_readmes_answers_are_written_from_the_committed_verdicts(tmp_path):
    """The README's answers in short are the verdicts file's, written by the same code (python -m
    fer_core.book verdicts): an answer edited by hand, or left behind by new records, fails here."""
    import pandas as pd

    from fer_core.book.front import ANSWERS_BEGIN, ANSWERS_END, README, VERDICTS_FILE, answers_markdown
    from fer_core.book.front import write_readme_answers
    table = pd.read_csv(VERDICTS_FILE.with_suffix(".csv"), keep_default_na=False)
    block = README.read_text().split(ANSWERS_BEGIN)[1].split(ANSWERS_END)[0]
    assert block.strip() == answers_markdown(table).strip(), "run python -m fer_core.book verdicts"
    for _, c in table[table["verdict"] != "not tested"].iterrows():  # every answered claim, with ours where measured
        assert f"{c['label']} (" in block and (not c["ours_n"] or f"ours {c['ours']} against" in block)
    copy = tmp_path / "README.md"
    copy.write_text(README.read_text().replace(ANSWERS_END, "- **Du** (edited by hand)\n" + ANSWERS_END))
    write_readme_answers(table, copy)
    assert copy.read_text() == README.read_text()  # rewritten, everything around the block kept
    (tmp_path / "bare.md").write_text("# no markers\n")
    with pytest.raises(SystemExit, match="bare.md lacks the markers"):
        write_readme_answers(table, tmp_path / "bare.md")


def test_the_claim_explorer_is_the_verdicts_file_with_each_rows_records_and_command(tmp_path):
    """The explorer's rows are results/verdicts.csv's (tested first); a tested row opens to a link to
    each record it rests on and the command that re-makes them; the hours come from the saved statuses."""
    from collections import Counter

    import pandas as pd

    from fer_core.book.explorer import explorer_table
    from fer_core.book.front import VERDICTS_FILE
    from fer_core.book.tables import SYMBOL

    table = pd.read_csv(VERDICTS_FILE.with_suffix(".csv"), keep_default_na=False)
    (tmp_path / "queue_cpu.csv").write_text("item,slice,hours left (at most),estimated\n"
                                            "3,\"du: resnet50,improved_resnet50 seeds 1,2\",9.5,2026-12-07\n")
    ex = explorer_table(queues=tmp_path)
    assert Counter(zip(ex["claim"], ex["verdict"])) == Counter(zip(table["label"], table["verdict"].map(SYMBOL)))
    tested = ex["verdict"] != SYMBOL["not tested"]
    assert not tested.iloc[tested.sum():].any()  # every tested claim before the first untested one
    table = table.iloc[sorted(range(len(table)), key=lambda i: table["verdict"].iloc[i] == "not tested")]
    assert list(ex["claim"]) == list(table["label"])  # the same rows, in the explorer's order
    for (_, row), (_, claim) in zip(ex.iterrows(), table.iterrows()):
        if claim["records"] and not claim["metric"].startswith("model:"):
            for record in claim["records"].split(";"):
                assert f'href="../../../../{record}"' in row["details"]
            assert f"python -m fer_core run --paper {claim['paper']} --rows " in row["details"]
    du = ex[ex["claim"] == "ResNet50"]["details"].iloc[0]
    assert "cpu queue item 3 (du: resnet50,improved_resnet50 seeds 1,2): 9.5 h left at most" in du


def test_the_answer_in_short_and_the_table_flag_a_difference_the_runs_do_not_tell_from_none(tmp_path):
    """Qin's +7.2 for the STN on CK+ against a gain of about 0.7 whose tolerance holds 0 as well."""
    from fer_core.book.prose import summary_markdown
    from fer_core.book.tables import verdict_table
    from fer_core.verdicts.claims import claims_of

    for fold in range(10):
        base = (0.78, 0.86)[fold % 2]
        fabricate(tmp_path, "qin", "base-ckplus", accuracy=base, fold=fold, dataset="ckplus", model="stn_sr", n=100)
        fabricate(tmp_path, "qin", "stn-ckplus", accuracy=base + (0.08, -0.06)[fold % 3 == 0], fold=fold,
                  dataset="ckplus", model="stn_sr", n=100)
    runs = ledger.read_ledger(tmp_path)
    text = summary_markdown(claims_of("qin"), runs)
    after = text.split("\n\nReproduced, but the runs would pass no difference as well")[1].splitlines()[2:]
    items = [line for line in after[:after.index("")] if line] if "" in after else after
    assert len(items) == 1 and items[0].startswith("- +STN over Base, ") and "paper 7.2 points" in items[0]
    table = verdict_table(claims_of("qin"), runs)
    row = table[(table["claim"] == "+STN over Base") & table["measured as"].str.startswith("ckplus")].iloc[0]
    assert row["verdict"] == "✔ reproduced" and row["ours against the paper"].endswith("; 0 would pass too")
    assert (table["ours against the paper"].str.contains("0 would pass").sum() == 1)


def test_the_answer_in_short_shows_ours_beside_a_claim_it_cannot_compare_and_why(tmp_path):
    from fer_core.book.prose import summary_markdown
    from fer_core.verdicts.claims import claims_of

    for fold in range(10):
        fabricate(tmp_path, "yu", "xception_separable", accuracy=(0.84, 0.92)[fold % 2], fold=fold, dataset="ckplus",
                  n=100)
    text = summary_markdown(claims_of("yu"), ledger.read_ledger(tmp_path))
    assert "not comparable" in text.splitlines()[0]
    line = next(s for s in text.splitlines() if s.startswith("- ") and "paper 95.1 %" in s)
    # t9 2.262 x s 4.22 / sqrt(10)
    assert "ours 88.00 ± 3.02 (95%, 1 seed × 10 folds, t9)" in line and "7.10 points below" in line
    assert "neutral where CK+48 has contempt" in line
    assert "reference only" in text and "largest misses" not in text  # a reference, never a miss
    assert "\n\nNot comparable, ours beside" in text  # its own paragraph, not the end of a list item
    assert "reference only" not in summary_markdown(claims_of("yu"), ledger.read_ledger(tmp_path / "none"))
