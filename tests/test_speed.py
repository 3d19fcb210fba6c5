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
        (batch, steps, sorted(name for name, *_ in cases), kw["merge"])))
    bench.measure([slices.Slice("qin", "paper", ["base-ckplus", "stn-ckplus"]),
                   slices.Slice("du", "paper", ["resnet50"])], None)
    assert calls == [(16, 16, ["stn_sr", "stn_sr"], True), (32, 8, ["resnet50"], True)]


INTEL, AMD = ("Intel(R) Xeon(R) Processor", "amx_bf16,avx512_bf16"), ("AMD EPYC", "avx512_bf16")


def _on(df, cpu):
    return df.assign(device="cpu (2 cores, x86_64)", cpu=cpu[0], cpu_bf16_units=cpu[1], batch=32)


def test_this_machines_own_measurement_comes_first_and_another_machines_is_named(bench_csv, monkeypatch):
    monkeypatch.setattr(speed, "cpu_info", lambda: {"cpu": AMD[0], "cpu_bf16_units": AMD[1].split(",")})
    df = pd.read_csv(bench_csv)
    intel = _on(df, INTEL)
    amd = _on(df[df["model"] == "simple_cnn"], AMD).assign(images_per_s=250.0, tflops=0.075)
    pd.concat([intel, amd], ignore_index=True).to_csv(bench_csv, index=False)
    bench = speed.measured("cpu", bench_csv)
    assert bench.attrs["here"] == "AMD EPYC (avx512_bf16)"
    # simple_cnn measured on both: this machine's speed, no host named
    assert speed.run_hours(bench, "simple_cnn", 0.05, 7200, 0, 1, batch=32) == (
        pytest.approx(7200 / 250 / 3600), "measured (simple_cnn@48)")
    # resnet18 measured on the Intel host alone: its speed, and the basis says where it was measured
    hours, basis = speed.run_hours(bench, "resnet18", 0.5, 7200, 0, 1, batch=32)
    assert hours == pytest.approx(7200 / 200 / 3600)
    assert basis == "measured (resnet18@48 on Intel(R) Xeon(R) Processor (amx_bf16,avx512_bf16))"
    # a model measured nowhere: the median TFLOP/s of this machine's own rows
    hours, basis = speed.run_hours(bench, "resnet50", 1.0, 3600, 0, 1)
    assert hours == pytest.approx(6e9 / 0.075e12) and basis == "median TFLOP/s of the benchmark"


def test_a_measurement_merged_in_replaces_the_same_machines_rows_and_keeps_another_machines(bench_csv):
    from fer_core.schedule.bench import merged

    df = pd.read_csv(bench_csv)
    intel = _on(df, INTEL)
    amd = _on(df[df["case"] == "resnet18@48"], AMD).assign(images_per_s=90.0)
    both = merged(intel, amd)
    assert len(both) == len(intel) + len(amd)  # another machine: another row, the Intel one kept
    again = merged(both, amd.assign(images_per_s=95.0))
    assert len(again) == len(both) and sorted(again.loc[again["cpu"] == AMD[0], "images_per_s"]) == [95.0, 95.0]
    assert merged(both, amd.assign(batch=48)).shape[0] == len(both) + len(amd)  # another batch size: kept too


def test_queue_status_measure_times_every_items_models_once_each_and_wants_status(monkeypatch, tmp_path, capsys):
    from fer_core.schedule import bench

    calls = []
    monkeypatch.setattr(bench, "measure", lambda parts, data_dir, repeats=None, images=256: calls.append(
        ([(p.paper, tuple(p.rows)) for p in parts], repeats, images)))
    queue = tmp_path / "q.yaml"
    queue.write_text("profile: test\nitems:\n  - {paper: du, rows: [resnet50]}\n  - {paper: qin, rows: [base-ckplus], "
                     "folds: 0-1}\n")
    assert cli(["queue", str(queue), "--measure"]) == 2 and "--measure goes with --status" in capsys.readouterr().err
    assert calls == []
    assert cli(["queue", str(queue), "--status", "--measure"]) == 0
    assert calls == [([("du", ("resnet50",)), ("qin", ("base-ckplus",))], 1, 128)]


def test_once_a_gpu_is_measured_each_run_and_queue_item_has_its_gpu_hours_and_the_front_chapter_its_minutes(
        monkeypatch, tmp_path):
    from fer_core.book.front import gpu_wait
    from fer_core.schedule import queues, slices

    cuda_csv = tmp_path / "train_cuda.csv"
    pd.DataFrame([{"model": "stn_sr", "case": "stn_sr@48", "input": 48, "gmacs_per_image": 0.0992,
                   "loop": "book (default)", "images_per_s": 1.0, "tflops": 0.0006, "device": "NVIDIA H100",
                   "cpu": "AMD EPYC", "cpu_bf16_units": "avx512_bf16", "batch": 16}]).to_csv(cuda_csv, index=False)
    cpu_path = speed.bench_path("cpu")
    monkeypatch.setattr(speed, "bench_path", lambda device: cuda_csv if device == "cuda" else cpu_path)
    sl = slices.Slice("qin", "test", ["base-ckplus"], [0], [0, 1])
    table = slices.listing(sl)
    assert slices.GPU_HOURS in table and (table[slices.GPU_HOURS] > 0).all()  # a slow GPU: the test's runs are tiny
    assert set(table["GPU speed from"]) == {"measured (stn_sr@48 on NVIDIA H100, batch 16 (this run: 64))"}  # there
    status = queues.status([queues.Item(sl, "")])
    assert status[slices.GPU_HOURS].iloc[0] == pytest.approx(table[slices.GPU_HOURS].sum(), abs=0.01)
    wait = gpu_wait(queues.save_status(status, "gpu", tmp_path / "queue_gpu.csv"))
    assert wait["GPU minutes (at most)"].iloc[0] == round(60 * status[slices.GPU_HOURS].iloc[0])
    monkeypatch.setattr(speed, "bench_path", lambda device: tmp_path / "none.csv" if device == "cuda" else cpu_path)
    assert slices.GPU_HOURS not in slices.listing(sl)  # no GPU measured: no such column, nothing guessed


def test_a_saved_measurement_keeps_the_old_file_only_where_rows_would_go(bench_csv, tmp_path):
    from fer_core.schedule.bench import save

    df = _on(pd.read_csv(bench_csv), AMD)
    path = tmp_path / "bench" / "train_cpu.csv"
    save(df[df["model"] == "resnet18"], path, merge=True)
    save(df[df["model"] == "simple_cnn"], path, merge=True)  # rows added, none replaced: no copy
    assert [p.name for p in path.parent.iterdir()] == ["train_cpu.csv"] and len(pd.read_csv(path)) == len(df)
    save(df[df["model"] == "simple_cnn"].assign(images_per_s=900.0), path, merge=True)  # one replaced: kept
    kept = [p for p in path.parent.iterdir() if p.name != "train_cpu.csv"]
    assert len(kept) == 1 and 1000.0 in set(pd.read_csv(kept[0])["images_per_s"])
    assert 900.0 in set(pd.read_csv(path)["images_per_s"]) and len(pd.read_csv(path)) == len(df)


def test_a_run_reads_the_speed_measured_with_its_own_loss_terms(bench_csv, monkeypatch):
    from fer_core.schedule import bench, slices

    df = pd.read_csv(bench_csv)
    sr = df.iloc[[0]].assign(model="edsr_x2", case="edsr_x2@48+loss:sr_l1", loss='{"sr_l1":1.0}', images_per_s=20.0)
    probe_only = sr.assign(case="edsr_x2@48", loss="{}", images_per_s=60.0)  # the SR net without a gradient
    pd.concat([df, sr, probe_only], ignore_index=True).to_csv(bench_csv, index=False)
    table = speed.measured("cpu", bench_csv)
    assert speed.run_hours(table, "edsr_x2", 0.5, 7200, 0, 1, loss={"sr_l1": 1.0}) == (
        pytest.approx(7200 / 20 / 3600), "measured (edsr_x2@48+loss:sr_l1)")
    assert speed.run_hours(table, "edsr_x2", 0.5, 7200, 0, 1)[1] == "measured (edsr_x2@48)"
    calls = []
    monkeypatch.setattr(bench, "bench_train", lambda device, cases, *args, **kw: calls.extend(cases))
    bench.measure([slices.Slice("qin", "paper", ["edsr-l1"])], None)
    assert calls == [("edsr_x2", 48, {}, {"sr_l1": 1.0})]  # measured training EDSR, as the run does


def test_a_run_that_loads_a_frozen_sr_net_reads_the_speed_measured_with_it_frozen(bench_csv, monkeypatch):
    from fer_core.schedule import bench, slices

    df = pd.read_csv(bench_csv)
    trains = df.iloc[[0]].assign(model="stn_sr", case="stn_sr@48+sr=edsr+stn=False", gmacs_per_image=12.9,
                                 kwargs='{"sr":"edsr","stn":false}', images_per_s=10.0)
    fixed = trains.assign(case="stn_sr@48+sr=edsr+sr_frozen=True+stn=False", images_per_s=30.0,
                          kwargs='{"sr":"edsr","sr_frozen":true,"stn":false}')  # the same FLOPs, a third of the work
    pd.concat([df, trains, fixed], ignore_index=True).to_csv(bench_csv, index=False)
    table = speed.measured("cpu", bench_csv)
    run = speed.bench_kwargs({"stn": False, "sr": "edsr", "sr_weights": "checkpoints/qin/edsr-l1/best.pt"})
    assert run == {"sr": "edsr", "sr_frozen": True, "stn": False}
    assert speed.run_hours(table, "stn_sr", 12.9, 7200, 0, 1, kwargs=run) == (
        pytest.approx(7200 / 30 / 3600), "measured (stn_sr@48+sr=edsr+sr_frozen=True+stn=False)")
    assert speed.run_hours(table, "stn_sr", 12.9, 7200, 0, 1, kwargs={"sr": "edsr", "stn": False})[0] == \
        pytest.approx(7200 / 10 / 3600)  # one that trains its SR net reads the row that did
    assert speed.bench_kwargs({"sr": "edsr", "sr_weights": "w.pt", "sr_frozen": False})["sr_frozen"] is False
    calls = []
    monkeypatch.setattr(bench, "bench_train", lambda device, cases, *args, **kw: calls.extend(cases))
    bench.measure([slices.Slice("qin", "paper", ["sr-ckplus"])], None)
    assert ("stn_sr", 48, {"sr": "edsr", "sr_frozen": True, "stn": False}, {}) in calls  # measured as it runs


def test_the_benchmark_writes_each_cases_kwargs_for_the_runs_to_read(tmp_path, monkeypatch):
    from fer_core.schedule import bench

    out = tmp_path / "train_cpu.csv"
    bench.bench_train("cpu", [("stn_sr", 48, {"stn": False, "sr": "bicubic"}, {})], None, 8, 1, ["default"], [],
                      str(out), None, plain=False, repeats=1)
    row = pd.read_csv(out).iloc[0]
    assert row["kwargs"] == '{"sr":"bicubic","stn":false}' and row["case"] == "stn_sr@48+sr=bicubic+stn=False"
