"""What a chapter draws from published records: per row its curves beside the paper's per-epoch
values, its folds and its pooled confusion matrix."""
from fer_core import ledger, plots
from fer_core.chapter import Chapter
from fer_core.experiments import read_plan
from fixtures import fabricate


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

    from fer_core.chapter import banner_text

    row = fabricate(tmp_path, "du", "resnet50", accuracy=0.44)
    fabricate(tmp_path, "du", "improved_resnet50", accuracy=0.57)
    runs = ledger.read_ledger(tmp_path)
    ch = Chapter("du", "paper", read_plan("du"), runs, None)
    assert "uncommitted" not in banner_text(ch)
    prov = ledger.record(row["record"]).path / "provenance.json"
    p = json.loads(prov.read_text())
    prov.write_text(json.dumps({**p, "dirty": True, "changed_files": ["fer_core/engine.py"], "diff_sha256": "ab12"}))
    text = banner_text(ch)
    assert "1 of them were made from uncommitted code" in text and "fer_core/engine.py" in text


def test_the_queue_speed_table_reads_each_runs_own_clock_and_precision(tmp_path):
    import json

    from fer_core import budgets

    for fold in range(2):
        row = fabricate(tmp_path, "qin", "base-ckplus", accuracy=0.8, fold=fold, dataset="ckplus", model="stn_sr",
                        history={"elapsed_s": [10.0, 20.0, 30.0]})
        prov = ledger.record(row["record"]).path / "provenance.json"
        p = json.loads(prov.read_text())
        p["data"]["sizes"] = {"train": 800}
        p["precision"] = {"autocast": "bfloat16" if fold else None}
        prov.write_text(json.dumps(p))
    runs = ledger.read_ledger(tmp_path).assign(device="cpu")
    t = budgets.queue_speed(runs)
    assert t.loc[0, "runs"] == 2 and t.loc[0, "training images/s (median)"] == 80.0  # 3 epochs x 800 / 30 s
    assert t.loc[0, "precision"] == "bfloat16 + float32"
