"""Run records on disk (fer_core.runs.records): written whole with metrics.json last, read back, and
checked against their own predictions."""
import json

import pandas as pd
import pytest
from fabricated import fabricate

from fer_core.runs import ledger, records
from fer_core.runs.records import FILES, FINISHED, RunPaths, RunRecord


def test_metrics_json_is_the_last_file_written_then_the_manifest_seals_the_record(tmp_path, monkeypatch):
    written = []
    replace = records.os.replace
    monkeypatch.setattr(records.os, "replace", lambda a, b: (written.append(str(b)), replace(a, b)))
    paths = RunPaths(tmp_path / "run", tmp_path / "ckpt")
    records.write(paths, {"run": "x"}, [{"epoch": 1}], {"accuracy": 1.0}, {}, pd.DataFrame({"target": [0]}), {})
    assert written[-2].endswith(FINISHED) and written[-1].endswith(records.MANIFEST) and paths.finished
    assert FILES[-2:] == (FINISHED, records.MANIFEST)  # the order a Ray driver writes a returned record in, too
    assert records.verify(paths.results) == []


def test_a_returned_record_is_written_file_by_file_and_reads_back(tmp_path):
    row = fabricate(tmp_path / "made", "pham", "resnet34", accuracy=0.6, n=20)
    source = RunPaths(ledger.record_at(row["record"]).path, tmp_path / "none")
    files = records.read_files(source)
    assert set(files) == set(FILES) - {records.ATTENTION, records.DUPLICATE_FREE}
    target = RunPaths(tmp_path / "copy", tmp_path / "none")
    records.write_files(target, {**files, "stray.txt": b"not a record file"})
    copy = RunRecord.read(target.results)
    assert copy.metrics == json.loads(files[FINISHED]) and not (target.results / "stray.txt").exists()
    assert copy.problems() == []


def test_a_record_whose_metrics_do_not_recompute_is_named(tmp_path):
    row = fabricate(tmp_path, "pham", "resnet34", accuracy=0.6, n=20)
    path = ledger.record_at(row["record"]).path
    metrics = json.loads((path / FINISHED).read_text())
    (path / FINISHED).write_text(json.dumps({**metrics, "accuracy": 0.95}))
    assert RunRecord.read(path).problems() == ["accuracy 0.9500 in metrics.json, 0.6000 from predictions.csv"]


def test_an_unfinished_folder_is_not_a_record(tmp_path):
    with pytest.raises(FileNotFoundError, match="is not a finished run"):
        RunRecord.read(tmp_path)
