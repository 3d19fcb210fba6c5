"""Hours before running: a run's cost on this machine from the measured speed of the book's loop."""
import pandas as pd
import pytest

from fer_core.cli import main as cli
from fer_core.schedule import speed


@pytest.fixture
def bench_csv(tmp_path):
    path = tmp_path / "train_cpu.csv"
    pd.DataFrame([
        {"model": "resnet18", "case": "resnet18@48", "input": 48, "gmacs_per_image": 0.5, "loop": "book (default)",
         "images_per_s": 200.0, "tflops": 0.6},
        {"model": "resnet18", "case": "resnet18@48", "input": 48, "gmacs_per_image": 0.5, "loop": "book (before)",
         "images_per_s": 100.0, "tflops": 0.3},
        {"model": "resnet18", "case": "resnet18@96", "input": 96, "gmacs_per_image": 2.0, "loop": "book (default)",
         "images_per_s": 40.0, "tflops": 0.48},
        {"model": "simple_cnn", "case": "simple_cnn@48", "input": 48, "gmacs_per_image": 0.05,
         "loop": "book (default)", "images_per_s": 1000.0, "tflops": 0.3},
    ]).to_csv(path, index=False)
    return path


def test_hours_come_from_the_same_model_at_the_nearest_input(bench_csv):
    bench = speed.measured("cpu", bench_csv)
    assert set(bench["loop"]) == {"book (default)"}  # the engine's own precision, not the loop before it
    hours, basis = speed.run_hours(bench, "resnet18", 0.5, train_images=7200, val_images=0, epochs=10)
    assert hours == pytest.approx(10 * 7200 / 200 / 3600) and basis == "measured (resnet18@48)"
    hours, basis = speed.run_hours(bench, "resnet18", 1.0, 7200, 0, 10)  # between the two: nearest, scaled
    assert hours == pytest.approx(10 * 7200 / 100 / 3600) and basis.startswith("scaled from resnet18@")
    hours, _ = speed.run_hours(bench, "resnet18", 0.5, 7200, 3 * 720, 10)  # validation at 3x the speed
    assert hours == pytest.approx(10 * (7200 + 720) / 200 / 3600)


def test_the_runs_own_batch_size_is_read_where_measured_and_named_where_not(bench_csv):
    df = pd.read_csv(bench_csv).assign(batch=32)
    df = pd.concat([df, df.iloc[[0]].assign(batch=16, images_per_s=120.0, tflops=0.36)], ignore_index=True)
    df.to_csv(bench_csv, index=False)
    bench = speed.measured("cpu", bench_csv)
    assert speed.run_hours(bench, "resnet18", 0.5, 7200, 0, 10, batch=16) == (
        pytest.approx(10 * 7200 / 120 / 3600), "measured (resnet18@48)")
    assert speed.run_hours(bench, "resnet18", 0.5, 7200, 0, 10, batch=32)[0] == pytest.approx(10 * 7200 / 200 / 3600)
    hours, basis = speed.run_hours(bench, "resnet18", 0.5, 7200, 0, 10, batch=64)  # not measured: said
    assert hours == pytest.approx(10 * 7200 / 200 / 3600) and basis == "measured (resnet18@48, batch 32 (this run: 64))"


def test_a_checkpoints_epochs_are_read_without_its_weights_and_a_bad_one_counts_none(tmp_path):
    import torch

    from fer_core.train import checkpoints

    assert checkpoints.epochs_done(tmp_path) == 0
    checkpoints.save({"model": {"w": torch.ones(3)}, "state": {"epoch": 7}}, tmp_path / checkpoints.LAST)
    assert checkpoints.epochs_done(tmp_path) == 7
    (tmp_path / checkpoints.LAST).write_bytes(b"not a checkpoint")
    assert checkpoints.epochs_done(tmp_path) == 0


def test_an_unmeasured_model_gets_the_median_tflops_and_no_benchmark_says_so(bench_csv, tmp_path):
    bench = speed.measured("cpu", bench_csv)
    hours, basis = speed.run_hours(bench, "resnet50", 1.0, 3600, 0, 1)
    assert hours == pytest.approx(6e9 / 0.48e12 / 1) and "median" in basis
    assert speed.measured("cpu", tmp_path / "none.csv") is None
    assert speed.run_hours(None, "resnet50", 1.0, 3600, 0, 1)[0] is None


def test_list_prints_hours_per_run_and_for_the_rest(capsys):
    assert cli(["run", "--paper", "qin", "--profile", "test", "--rows", "base-ckplus", "--folds", "0-1", "--list"]) == 0
    out = capsys.readouterr().out
    assert "hours here (cpu, at most)" in out and "speed from" in out
    assert "2 run(s), 0 finished" in out and ("hours here at most" in out or "hours unknown" in out)


def test_measure_takes_each_model_at_the_batch_size_its_runs_train_at(monkeypatch):
    from fer_core.schedule import bench, slices

    calls = []
    monkeypatch.setattr(bench, "bench_train", lambda device, cases, size, batch, steps, *args, **kw: calls.append(
        (batch, steps, sorted(name for name, _, _ in cases), kw["merge"])))
    bench.measure([slices.Slice("qin", "paper", ["base-ckplus", "stn-ckplus"]),
                   slices.Slice("du", "paper", ["resnet50"])], None)
    assert calls == [(16, 16, ["stn_sr", "stn_sr"], True), (32, 8, ["resnet50"], True)]
