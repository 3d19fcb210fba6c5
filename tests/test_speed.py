"""Hours before running: a run's cost on this machine from the measured speed of the book's loop."""
import pandas as pd
import pytest

from fer_core import speed
from fer_core.cli import main as cli


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
