"""Slices of a plan run without notebooks: listed with their cost, resumed across time limits."""
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from fer_core.cli import main as cli
from fer_core.config import parse_duration
from fer_core.runs import ledger
from fer_core.schedule import slices


def test_ranges_and_durations_parse():
    assert slices.parse_range("0-2,5") == [0, 1, 2, 5] and slices.parse_range("3") == [3]
    assert slices.parse_range(None) is None
    with pytest.raises(ValueError, match="not a list of numbers"):
        slices.parse_range("0..9")
    with pytest.raises(ValueError, match=r"5-2 is an empty range; write the lower number first \(2-5\)"):
        slices.parse_range("5-2")
    assert parse_duration("9m") == 540 and parse_duration("1h30m") == 5400 and parse_duration("45s") == 45
    assert parse_duration("12.5") == 12.5 and parse_duration(None) is None
    with pytest.raises(ValueError, match="write it as 9m"):
        parse_duration("nine minutes")


def test_the_slice_follows_the_plan_and_brings_in_the_sr_net_it_needs():
    sl = slices.Slice("qin", "paper", ["stn_sr-ckplus", "base-fer2013"], [0, 1], [0, 3], "/data")
    runs = slices.runs_of(sl)
    assert [(r.variant, r.seed, r.fold) for r in runs[:5]] == [
        ("edsr-l1", 0, None), ("edsr-l1", 1, None), ("stn_sr-ckplus", 0, 0), ("stn_sr-ckplus", 0, 3),
        ("stn_sr-ckplus", 1, 0)]
    assert len(runs) == 2 + 4 + 2 and all(r.status == "not started" for r in runs)
    assert len(slices.runs_of(slices.Slice("pham", "paper"))) == 12  # every row of the table


@pytest.mark.parametrize("args, message", [
    (["--time-limit", "0"], "--time-limit '0' must be a positive duration"),
    (["--seeds", "5-2"], "5-2 is an empty range"),
])
def test_a_zero_time_limit_and_an_empty_range_are_errors_not_defaults(args, message, capsys):
    assert cli(["run", "--paper", "qin", "--profile", "test", "--rows", "digits-cnn", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_list_shows_every_run_with_its_cost_and_status(capsys):
    assert cli(["run", "--paper", "yu", "--profile", "test", "--folds", "0-1", "--list"]) == 0
    out = capsys.readouterr().out
    assert "xception_separable" in out and "not started" in out and "GMAC/image" in out
    assert "2 run(s), 0 finished" in out


@pytest.mark.slow
def test_a_time_limited_slice_resumes_to_the_metrics_of_one_straight_call(tmp_path):
    """A small CNN on the digits (the queue's test resumes ResNet-50s): the mechanism, not the model."""
    base = ["run", "--paper", "qin", "--profile", "test", "--rows", "digits-cnn", "--seeds", "0,1",
            "--set", "train.progress=false", "--set", "train.device=cpu",
            "--set", "data.subset={train: 300, val: 100, test: 100}",
            "--set", "eval.attention=0", "--set", "eval.tta=[]", "--set", "train.epochs=2"]
    assert cli([*base, "--results-dir", str(tmp_path / "straight"),
                "--set", f"output.checkpoint_dir={tmp_path / 'c1'}"]) == 0
    calls, code = 0, None
    while code != 0:
        code = cli([*base, "--results-dir", str(tmp_path / "limited"),
                    "--set", f"output.checkpoint_dir={tmp_path / 'c2'}", "--time-limit", "0.001"])
        calls += 1
        assert code in (0, slices.EXIT_RESUME) and calls < 12
    assert calls >= 4  # two runs of two epochs: an epoch a call at most
    cols = ["variant", "seed", "accuracy", "macro_f1", "cross_entropy", "best_val_acc", "epochs_run"]
    a, b = (ledger.read_ledger(tmp_path / d)[cols].sort_values(["seed"]).reset_index(drop=True)
            for d in ("straight", "limited"))
    assert len(a) == len(b) == 2
    pd.testing.assert_frame_equal(a, b)
    # every epoch's losses too: the test metrics alone come from the selected epoch, maybe the first
    histories = [[pd.read_csv(h).drop(columns="elapsed_s") for h in sorted((tmp_path / d).glob("qin/*/history.csv"))]
                 for d in ("straight", "limited")]
    assert len(histories[1]) == 2
    for straight, limited in zip(*histories):
        pd.testing.assert_frame_equal(straight, limited)


def _node_site(folder):
    """A folder that holds torch and torchvision and what they pull in, nothing else: the
    preinstalled PyTorch of a GPU node, for a fresh virtual environment to see."""
    from importlib import metadata

    from fer_core.schedule.bundle import NODE_PROVIDES, requirements

    folder.mkdir()
    for name in requirements(NODE_PROVIDES, f"{sys.version_info.major}.{sys.version_info.minor}"):
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        tops = {Path(str(f)).parts[0] for f in dist.files or [] if not str(f).startswith("..")}
        for top in tops:
            src = Path(dist.locate_file(top))
            if src.exists() and not (folder / top).exists() and top != "__pycache__":
                (folder / top).symlink_to(src)
    return folder


@pytest.mark.slow
def test_the_bundle_runs_a_slice_in_a_fresh_environment_with_the_network_unused(tmp_path, shared_data):
    out = tmp_path / "bundle"
    assert cli(["bundle", str(out), "--data", "ckplus", "--data-dir", str(shared_data)]) == 0
    wheels = {p.name.split("-")[0].lower() for p in (out / "wheels").glob("*.whl")}
    assert {"captum", "timm", "pandas", "pydantic"} <= wheels and not wheels & {"torch", "torchvision"}
    assert (out / "data" / "ckplus.tar.gz").is_file() and (out / "src" / "fer_core" / "train" / "engine.py").is_file()
    venv = tmp_path / "node-venv"
    subprocess.run([sys._base_executable, "-m", "venv", str(venv)], check=True)
    site = next(venv.glob("lib/python*/site-packages"))
    (site / "node-torch.pth").write_text(str(_node_site(tmp_path / "node-site")) + "\n")
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "PYTHON": str(venv / "bin" / "python"),
           "PIP_CONFIG_FILE": os.devnull, "PIP_NO_INDEX": "1", "FER_CACHE_DIR": str(tmp_path / "cache")}
    args = ["--paper", "yu", "--profile", "test", "--folds", "0", "--set", "train.device=cpu",
            "--set", "train.progress=false", "--set", "eval.attention=2"]
    proc = subprocess.run(["unshare", "-n", str(out / "run.sh"), *args], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    book = ledger.read_ledger(out / "src" / "build" / "results")
    assert book["dataset"].tolist() == ["ckplus"] and book["variant"].tolist() == ["xception_separable"]


# -- Ray: the same slice fanned out over workers --------------------------------------------------
RAY_SETS = ["train.progress=false", "train.device=cpu", "eval.attention=2", "eval.tta=[]",
            "data.subset={train: 120, val: 60, test: 60}", "train.epochs=1"]


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield ray
    ray.shutdown()


@pytest.mark.slow
def test_ray_runs_a_slice_to_the_serial_numbers_and_reports_a_failure(tmp_path, local_ray):
    import torch

    from fer_core.schedule.executors import execute_ray

    rows = ["digits-cnn", "digits-stn-cnn"]
    sl = slices.Slice("qin", "test", rows, [0, 1], overrides=[*RAY_SETS, f"output.results_dir={tmp_path / 'ray'}",
                                                               f"output.checkpoint_dir={tmp_path / 'c1'}"])
    got, summary = execute_ray(sl, progress=False)
    assert (summary["status"] == "finished").all() and len(got) == 4
    assert len(ledger.read_ledger(tmp_path / "ray")) == 4 and all(
        (tmp_path / "ray" / "qin" / r.split("/")[-1] / "attention.npz").is_file() for r in got["record"])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each Ray task (one CPU each)
    try:
        serial = slices.execute(slices.Slice("qin", "test", rows, [0, 1], overrides=[
            *RAY_SETS, f"output.results_dir={tmp_path / 'serial'}", f"output.checkpoint_dir={tmp_path / 'c2'}"]))
    finally:
        torch.set_num_threads(threads)
    cols = ["variant", "seed", "accuracy", "macro_f1", "cross_entropy", "best_val_acc"]
    pd.testing.assert_frame_equal(got[cols].reset_index(drop=True), serial[cols].reset_index(drop=True))

    again, summary = execute_ray(sl, progress=False)  # everything finished: nothing scheduled
    assert (summary["status"] == "finished before").all() and len(again) == 4

    broken = slices.Slice("qin", "test", ["edsr-l1", "digits-cnn"], [2], overrides=[
        *RAY_SETS, "model.kwargs.sr_frozen=true", f"output.results_dir={tmp_path / 'broken'}",
        f"output.checkpoint_dir={tmp_path / 'c3'}"])  # edsr_x2 takes no sr_frozen: that run fails
    got, summary = execute_ray(broken, progress=False)
    by_run = summary.set_index("run")
    failed = by_run[by_run["status"] == "failed"]
    assert len(failed) == 1 and failed.index[0].startswith("edsr-l1") and failed["attempts"].iloc[0] == 2
    assert "do not fit 'edsr_x2'" in failed["error"].iloc[0]
    assert got["variant"].tolist() == ["digits-cnn"]  # the other run went on


@pytest.mark.slow
def test_a_ray_worker_killed_mid_run_is_reported_and_the_other_records_stay(tmp_path, local_ray, monkeypatch):
    """A worker process dies (SIGKILL) inside the first epoch of one run, both times it is tried:
    the driver reports that run as failed, with the cause, and files the other run whole."""
    from fer_core.runs.records import RunRecord
    from fer_core.schedule import executors

    real = executors._train_remotely

    def killed_in_training(spec, *args):  # runs in the worker: its own fer_core.train.engine is patched
        import os
        import signal

        import fer_core.train.engine

        if spec.seed == 1:
            fer_core.train.engine.train_one_epoch = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)
        return real(spec, *args)
    monkeypatch.setattr(executors, "_train_remotely", killed_in_training)
    sl = slices.Slice("qin", "test", ["digits-cnn"], [0, 1], overrides=[
        *RAY_SETS, f"output.results_dir={tmp_path / 'r'}", f"output.checkpoint_dir={tmp_path / 'c'}"])
    got, summary = executors.execute_ray(sl, progress=False)
    by_run = summary.set_index("run")
    failed = by_run[by_run["status"] == "failed"]
    assert len(failed) == 1 and "-s1-" in failed.index[0] and failed["attempts"].iloc[0] == 2
    assert "WorkerCrashedError" in failed["error"].iloc[0] or "died" in failed["error"].iloc[0]
    assert got["seed"].tolist() == [0] and len(ledger.read_ledger(tmp_path / "r")) == 1
    assert RunRecord.read(ledger.record_at(got["record"].iloc[0]).path).problems() == []
    assert not (tmp_path / "r" / "qin" / failed.index[0]).exists()  # nothing half-written by the driver


def test_a_machine_whose_default_precision_differs_from_a_rows_published_runs_leaves_its_new_runs(tmp_path,
                                                                                                   monkeypatch):
    """A CPU without bf16 units trains float32 by default: it must not add float32 runs to a row whose
    published runs are bf16 (the row would get no verdict); it leaves them, saying why."""
    from fabricated import fabricate

    import fer_core.train.build as build
    sl = slices.Slice("du", "paper", ["resnet50"], [0, 1], overrides=[f"output.results_dir={tmp_path}"])
    spec = slices.runs_of(sl)[1]
    fabricate(tmp_path, "du", "resnet50", accuracy=0.59, n=100, seed=0, dataset=spec.cfg.data.source,
              autocast="bfloat16")
    monkeypatch.setattr(build, "cpu_bf16_units", lambda: [])
    clash = slices.precision_clash(spec, {})
    assert clash.startswith("left for a machine that trains in bfloat16") and "default is float32" in clash
    monkeypatch.setattr(build, "cpu_bf16_units", lambda: ["amx_bf16"])
    assert slices.precision_clash(spec, {}) == ""
    other = slices.runs_of(slices.Slice("du", "paper", ["improved_resnet50"], [0],
                                        overrides=[f"output.results_dir={tmp_path}"]))[0]
    assert slices.precision_clash(other, {}) == ""  # a row with no published run: bf16 here, as every CPU run
    monkeypatch.setattr(build, "cpu_bf16_units", lambda: [])
    # ... but a CPU without bf16 units would begin the row in float32 (and keep it so when resumed elsewhere)
    assert slices.precision_clash(other, {}).startswith("left for a CPU with bf16 units")
    chosen = slices.runs_of(slices.Slice("du", "paper", ["improved_resnet50"], [0],
                                         overrides=[f"output.results_dir={tmp_path}", "train.amp=false"]))[0]
    assert slices.precision_clash(chosen, {}) == ""  # float32 chosen in so many words: made here


def test_a_queue_in_a_worktree_reads_the_records_of_the_checkout_it_writes_into(tmp_path, monkeypatch):
    """The queue runs from ../queue and writes into ../main/results, whose ledger names each record
    relative to ../main. Its precision check read them relative to its own checkout: a run it had
    just made is not there, and every worker ended with 'is not a finished run' (2026-12-07)."""
    from fabricated import fabricate

    import fer_core.train.build as build
    main = tmp_path / "main"  # another checkout of the project than the one this code runs from
    (main / "fer_core").mkdir(parents=True)
    (main / "pyproject.toml").write_text("")
    results = main / "results"
    sl = slices.Slice("du", "paper", ["resnet50"], [0, 1], overrides=[f"output.results_dir={results}"])
    spec = slices.runs_of(sl)[1]
    fabricate(results, "du", "resnet50", accuracy=0.59, n=100, seed=0, dataset=spec.cfg.data.source,
              autocast="bfloat16")
    (row,) = ledger.scan(results)[0].to_dict("records")
    assert row["record"].startswith("results/du/")  # relative to ../main, as committed
    assert ledger.record_dir(row["record"], results) == results / "du" / Path(row["record"]).name
    monkeypatch.setattr(build, "cpu_bf16_units", lambda: [])
    assert slices.precision_clash(spec, {}).startswith("left for a machine that trains in bfloat16")
