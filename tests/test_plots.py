"""The book's figures and tables (fer_core.book.plots), on fabricated records with known numbers."""
import pandas as pd
from fabricated import fabricate

from fer_core.book import plots
from fer_core.runs import ledger
from fer_core.train.stats import wilson


def test_the_evaluation_summary_gives_every_accuracy_its_wilson_interval(tmp_path):
    row = fabricate(tmp_path, "pham", "resnet34", accuracy=0.7, tta=0.72, n=3589)
    table = plots.evaluation_summary(ledger.record_at(row["record"]).metrics)
    low, high = wilson(round(0.7 * 3589), 3589)
    assert table.loc["single crop", "95% interval (Wilson)"] == f"{low:.4f}–{high:.4f}"
    assert 0.67 < low < 0.7 < high < 0.72 and "test-time augmentation: random_views" in table.index


def test_paper_beside_ours_keeps_rows_without_a_run(tmp_path):
    table = pd.DataFrame({"row": ["a", "b"], "paper": [74.1, 72.0], "ours": [70.2, None], "ours_ci95": [1.5, None]})
    fig = plots.paper_vs_ours(table, "Table", "a note")
    paper, ours = fig.data
    assert list(paper.y) == [74.1, 72.0] and list(ours.x) == ["a", "b"] and "a note" in fig.layout.title.text


def test_the_per_class_table_ends_with_the_averages(tmp_path):
    row = fabricate(tmp_path, "pham", "resnet34", accuracy=0.7, n=70)
    table = plots.per_class_table(ledger.record_at(row["record"]).metrics)
    assert list(table.index[-2:]) == ["macro avg", "weighted avg"] and table.loc["weighted avg", "support"] == 70


def test_every_verdict_has_its_own_colour_in_the_counts_figure():
    from fer_core.book.tables import SYMBOL

    counts = pd.DataFrame({label: [1] for label in SYMBOL.values()}, index=["Yu"]).assign(claims=4)
    fig = plots.verdict_counts(counts)
    colours = [bar.marker.color for bar in fig.data]
    assert len(fig.data) == len(SYMBOL) and None not in colours and len(set(colours)) == len(colours)
