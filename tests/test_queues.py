"""A queue of plan slices: read with clear errors, its status with hours, run in order, resumed
across time limits to the records of one straight call."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from fer_core.cli import main as cli
from fer_core.runs.ledger import read_ledger
from fer_core.runs.locks import RunLockedError, run_lock
from fer_core.runs.records import RunPaths, RunRecord
from fer_core.schedule import queues, slices, speed
from fer_core.train import hardware


def _queue(tmp_path, text: str):
    path = tmp_path / "q.yaml"
    path.write_text(text)
    return str(path)


def test_the_cpu_queue_names_existing_rows_in_order():
    items = queues.read_queue("cpu")
    assert [i.slice.paper for i in items[:4]] == ["qin", "qin", "du", "yu"]
    assert items[0].slice.rows == ["base-ckplus", "stn-ckplus"] and items[0].slice.folds == list(range(10))
    assert all(i.slice.profile == "paper" for i in items)
    assert items[-1].slice.seeds == [1, 2]


@pytest.mark.parametrize("text, message", [
    ("items: []", r"'items' must be a list"),
    ("items: [{rows: [a]}]", r"item 1: each item is a mapping with at least 'paper'"),
    ("items: [{paper: qin, rows: [base-ckplus], colour: red}]", r"item 1: unknown field\(s\) \['colour'\]"),
    ("items: [{paper: qin, rows: [nope]}]", r"item 1: .*nope"),
    ("items: [{paper: qin, rows: [base-ckplus], seeds: 'x'}]", r"item 1: 'x' is not a list of numbers"),
    ("items: [{paper: qin\n", r"is not valid YAML"),
])
def test_a_bad_queue_file_is_named_with_the_item_and_field(tmp_path, text, message):
    path = _queue(tmp_path, text)
    with pytest.raises(queues.QueueError, match=message):
        queues.read_queue(path)
    assert cli(["queue", path, "--status"]) == 2


def test_an_unknown_queue_lists_the_known_ones():
    with pytest.raises(queues.QueueError, match=r"does not exist; known queues: .*cpu"):
        queues.read_queue("nope")


@pytest.mark.slow
def test_a_time_limited_queue_continues_to_the_records_of_one_straight_call(tmp_path, capsys, monkeypatch):
    text = ("profile: test\nitems:\n  - {paper: du, rows: [resnet50], seeds: 0-1}\n"
            "  - {paper: qin, rows: [digits-cnn], seeds: 0}\n")
    path = _queue(tmp_path, text)
    base = ["queue", path, "--set", "train.progress=false", "--set", "train.device=cpu", "--set",
            "data.synthetic_size=[70, 35, 35]", "--set", "data.subset=null", "--set", "eval.attention=0",
            "--set", "eval.tta=[]", "--set", "train.epochs=2"]
    assert cli([*base, "--results-dir", str(tmp_path / "straight"), "--set",
                f"output.checkpoint_dir={tmp_path / 'c1'}"]) == 0
    resumed = [*base, "--results-dir", str(tmp_path / "resumed"), "--set", f"output.checkpoint_dir={tmp_path / 'c2'}"]
    assert cli([*resumed, "--status"]) == 0
    assert "3 run(s): 0 finished (0.0 hours taken), 0 in progress, 3 not started" in capsys.readouterr().out
    calls, code = 0, None
    while code != 0:
        code = cli([*resumed, "--time-limit", "0.01s"])
        calls += 1
        assert code in (0, 75) and calls < 12
        if calls == 1:  # one epoch of the first run's two: the status names it, its hours count the other
            assert cli([*resumed, "--status"]) == 0
            out = capsys.readouterr().out
            assert "item 1, in progress: resnet50-synthetic-s0-" in out and "(epoch 1 of 2; validation " in out
            assert re.search(r"validation \d+\.\d\*; [\d.]+ h left at most\)", out)  # its curve, the best starred
            assert "1 in progress" in out
            slow = pd.DataFrame([{"model": "resnet50", "case": "resnet50@48", "gmacs_per_image": 1.0,
                                  "images_per_s": 0.001, "tflops": 1e-6}])  # hours large enough to compare
            monkeypatch.setattr(speed, "measured", lambda device: slow)
            sets = [a for a, flag in zip(resumed[1:], resumed) if flag == "--set"]
            item = queues.read_queue(path, overrides=[*sets, f"output.results_dir={tmp_path / 'resumed'}"])[0]
            table = slices.listing(item.slice)
            hours = table[slices.hours_column(table)]
            assert list(table["epochs done"]) == [1, 0] and hours[1] > 1 and hours[0] == pytest.approx(hours[1] / 2)
            assert table["hours taken"].isna().all()  # only a finished run has taken its hours
            monkeypatch.undo()
    assert calls > 3  # each call stopped after an epoch
    assert cli([*resumed, "--status"]) == 0
    assert "3 run(s): 3 finished (0.0 hours taken), 0 in progress, 0 not started" in capsys.readouterr().out
    done = slices.listing(item.slice)  # the hours each finished run took: its record's wall time
    walls = [RunRecord.read(tmp_path / "resumed" / "du" / run).provenance["wall_time_s"] for run in done["run"]]
    assert done["hours taken"].tolist() == [round(w / 3600, 2) for w in walls] and all(w > 0 for w in walls)
    a, b = read_ledger(tmp_path / "straight"), read_ledger(tmp_path / "resumed")
    cols = ["paper", "variant", "seed", "accuracy", "macro_f1"]
    pd.testing.assert_frame_equal(a[cols].sort_values(cols[:3]).reset_index(drop=True),
                                  b[cols].sort_values(cols[:3]).reset_index(drop=True))
    assert cli([*resumed, "--time-limit", "0"]) == 2


def test_a_started_run_is_finished_before_a_new_one_starts_whatever_its_item(tmp_path):
    """A queue file reordered (or a second worker) leaves a run of a later item half-made: the next
    call resumes it before it starts the first item's run."""
    items = ("  - {paper: du, rows: [resnet50], seeds: 0}\n", "  - {paper: qin, rows: [digits-cnn], seeds: 0}\n")
    later = _queue(tmp_path, "profile: test\nitems:\n" + items[1])
    both = str(tmp_path / "both.yaml")
    Path(both).write_text("profile: test\nitems:\n" + "".join(items))
    common = ["--set", "train.progress=false", "--set", "train.device=cpu", "--set", "data.synthetic_size=[70, 35, 35]",
              "--set", "data.subset=null", "--set", "eval.attention=0", "--set", "eval.tta=[]", "--set",
              "train.epochs=2", "--results-dir", str(tmp_path / "r"),
              "--set", f"output.checkpoint_dir={tmp_path / 'c'}"]
    assert cli(["queue", later, *common, "--time-limit", "0.01s"]) == 75  # one epoch of qin's run of two
    sets = [a for a, flag in zip(common[1:], common) if flag == "--set"] + [f"output.results_dir={tmp_path / 'r'}"]
    first, second = queues.read_queue(both, overrides=sets)
    du, qin = slices.runs_of(first.slice)[0], slices.runs_of(second.slice)[0]
    assert (du.status, qin.status) == ("not started", "started")
    assert cli(["queue", both, *common, "--time-limit", "0.01s"]) == 75
    assert du.status == "not started" and slices.listing(second.slice)["epochs done"].tolist() == [2]  # resumed first
    assert cli(["queue", both, *common, "--time-limit", "0.01s"]) == 75  # its test, then the limit
    assert (du.status, qin.status) == ("not started", "finished")
    assert cli(["queue", both, *common]) == 0 and du.status == "finished"


def test_a_paper_profile_run_refuses_uncommitted_code_and_names_the_files(monkeypatch, tmp_path):
    import fer_core.runs.records as records
    from fer_core.schedule import slices

    monkeypatch.setattr(records, "git_commit", lambda: {"commit": "abc", "dirty": True,
                                                        "changed_files": ["fer_core/engine.py"], "diff_sha256": "f00"})
    sl = slices.Slice("qin", "paper", ["digits-cnn"], [0], None, None,  # train.amp set: made on any CPU
                      [f"output.results_dir={tmp_path / 'r'}", f"output.checkpoint_dir={tmp_path / 'c'}",
                       "train.amp=false"])
    with pytest.raises(records.DirtyTreeError, match=r"uncommitted changes \(fer_core/engine\.py\).*--allow-dirty"):
        slices.execute(sl)
    assert not (tmp_path / "r").exists()  # refused before anything ran
    assert cli(["queue", _queue(tmp_path, "items: [{paper: qin, rows: [digits-cnn]}]"), "--results-dir",
                str(tmp_path / "r"), "--set", f"output.checkpoint_dir={tmp_path / 'c'}", "--set",
                "train.amp=false"]) == 2


def test_a_dirty_tree_is_named_in_the_provenance(tmp_path):
    import subprocess

    from fer_core.runs.records import git_commit

    def git(*args):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path, check=True,
                       capture_output=True)
    (tmp_path / "results").mkdir()
    (tmp_path / "code.py").write_text("a = 1\n")
    (tmp_path / "results" / "ledger.csv").write_text("x\n")
    git("init", "-q")
    git("add", ".")
    git("commit", "-qm", "c")
    (tmp_path / "results" / "ledger.csv").write_text("x\ny\n")  # a record appended: still clean code
    assert git_commit(tmp_path)["dirty"] is False
    (tmp_path / "code.py").write_text("a = 2\n")
    info = git_commit(tmp_path)
    assert info["dirty"] and info["changed_files"] == ["code.py"] and len(info["diff_sha256"]) == 16
    (tmp_path / "code.py").write_text("a = 3\n")
    assert git_commit(tmp_path)["diff_sha256"] != info["diff_sha256"]


def test_a_saved_status_says_when_where_and_from_which_code_and_the_front_chapter_reads_it(tmp_path):
    import pandas as pd

    from fer_core.book.front import gpu_wait
    from fer_core.schedule import queues

    table = pd.DataFrame([{"item": 1, "slice": "pham: resmaskingnet seeds 0", "runs": 1, "finished": 0,
                           "in progress": 0, "left": 1, "hours left (at most)": 240.0}])
    path = queues.save_status(table, "gpu", tmp_path / "queue_gpu.csv")
    saved = pd.read_csv(path)
    assert {"estimated", "commit", "machine", "basis"} <= set(saved.columns) and saved["queue"].iloc[0] == "gpu"
    wait = gpu_wait(path)
    assert wait.loc[1, "days here (at most)"] == 10.0 and gpu_wait(tmp_path / "none.csv") is None
    assert "speed from" not in wait  # a status saved before the column: read all the same
    assert wait.attrs["caption"].startswith(f"Estimated {saved['estimated'].iloc[0]} on {saved['machine'].iloc[0]}")
    path = queues.save_status(table.assign(**{"speed from": "measured (resmaskingnet@224)"}), "gpu", path)
    assert gpu_wait(path).loc[1, "speed from"] == "measured: resmaskingnet@224"  # the chapter says what it read
    bases = "measured (resmaskingnet@224); measured (resnet34@224); scaled from resnet18@96 on Intel (amx_bf16)"
    path = queues.save_status(table.assign(**{"speed from": bases}), "gpu", path)
    assert gpu_wait(path).loc[1, "speed from"] == ("measured: resmaskingnet@224, resnet34@224; scaled from "
                                                   "resnet18@96 on Intel (amx_bf16)")


@pytest.mark.skipif(not os.path.exists("/proc/self/autogroup"), reason="the kernel has no autogroup scheduling")
def test_a_low_priority_session_leader_lowers_its_scheduling_group_and_a_terminal_command_does_not():
    probe = ("import importlib.util as u, json; "  # fer_core.train.hardware alone: no torch to import, twice
             f"s = u.spec_from_file_location('hardware', {str(Path(hardware.__file__))!r}); "
             "m = u.module_from_spec(s); s.loader.exec_module(m); "
             "print(json.dumps([m.nice_the_session_too(), open('/proc/self/autogroup').read().split()[-1:]]))")
    # the file's last word is the group's nice; it reads empty in the kernel's default group (a CI container's)
    alone = subprocess.run(["setsid", "--wait", "nice", "-n", "7", sys.executable, "-c", probe],
                           capture_output=True, text=True, check=True)
    assert json.loads(alone.stdout) == [7, ["7"]]  # its own session: the group is lowered with it
    inside = subprocess.run(["nice", "-n", "7", sys.executable, "-c", probe], capture_output=True, text=True,
                            check=True)
    before = open("/proc/self/autogroup").read().split()[-1:]
    assert json.loads(inside.stdout) == [None, before]  # the caller's group: left as it was


def test_a_shared_slice_leaves_a_held_run_and_the_runs_waiting_for_its_sr_net_to_their_holder(tmp_path, run_sets):
    sl = slices.Slice("qin", "test", ["edsr-l1", "stn_sr-ckplus", "digits-cnn"], [0], overrides=[
        *run_sets, "eval.attention=0", "eval.tta=[]", "train.epochs=1", "data.subset={train: 64, val: 32, test: 32}"])
    specs = slices.runs_of(sl)
    edsr = next(s for s in specs if s.variant == "edsr-l1")
    paths = RunPaths.of(edsr.cfg)
    with run_lock(edsr.cfg.run_name, paths.results, paths.checkpoints):  # another worker trains the SR net
        with pytest.raises(RunLockedError, match="edsr-l1"):
            slices.execute(sl)  # alone, a held run is an error
        rows = slices.execute(sl, share=True)
    assert rows["variant"].tolist() == ["digits-cnn"]  # the one run that neither is held nor waits
    left = rows.attrs[slices.LEFT_TO_OTHERS]
    assert len(left) == 2 and left[0][0] == edsr.cfg.run_name and f"held: process {os.getpid()}" in left[0][1]
    assert left[1][0].startswith("stn_sr-ckplus") and left[1][1] == f"waits for {edsr.cfg.run_name}"
    assert [line.split(" run(s) ")[0] for line in slices.left_summary(left + [("x", left[1][1])], names=1)] == \
        ["1", "2"] and slices.left_summary(left + [("x", left[1][1])], names=1)[1].endswith("and 1 more")


@pytest.mark.slow
def test_two_workers_share_a_queue_to_the_records_of_one_process_alone(tmp_path, capsys):
    path = _queue(tmp_path, "profile: test\nitems:\n  - {paper: qin, rows: [digits-cnn], seeds: 0-2}\n")
    base = ["queue", path, "--set", "train.progress=false", "--set", "train.device=cpu", "--set", "eval.attention=0",
            "--set", "eval.tta=[]", "--set", "train.epochs=1", "--set", "data.subset={train: 300, val: 100, test: 100}"]
    assert cli([*base, "--threads", "1", "--results-dir", str(tmp_path / "alone"),
                "--set", f"output.checkpoint_dir={tmp_path / 'c1'}"]) == 0
    shared = [*base, "--results-dir", str(tmp_path / "shared"), "--set", f"output.checkpoint_dir={tmp_path / 'c2'}"]
    proc = subprocess.run([sys.executable, "-m", "fer_core", *shared, "--workers", "2"], capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "2 workers of 1 thread(s) each" in proc.stdout and "exit status 0, 0" in proc.stdout
    a, b = read_ledger(tmp_path / "alone"), read_ledger(tmp_path / "shared")
    cols = ["variant", "seed", "accuracy", "macro_f1", "cross_entropy", "best_val_acc"]
    assert len(b) == 3  # each run once: none trained twice, none left out
    pd.testing.assert_frame_equal(a[cols].sort_values("seed").reset_index(drop=True),
                                  b[cols].sort_values("seed").reset_index(drop=True))
    threads = {RunRecord.read(tmp_path / "shared" / "qin" / Path(r).name).provenance["torch_threads"]
               for r in b["record"]}
    assert threads == {1}


def test_a_killed_worker_is_replaced_and_the_queue_says_to_run_again(tmp_path, monkeypatch, capsys):
    """kill -9 of one of two workers: its run would be left to nobody (the other saw it held) and the
    parent exited 247; now a new worker takes it over, and a queue whose workers were killed ends
    with 75 ("resume me") and the line that says so."""
    from fer_core import cli as cli_module
    path = _queue(tmp_path, "profile: test\nitems:\n  - {paper: qin, rows: [digits-cnn], seeds: 0}\n")
    codes = iter([-9, 0, 0])
    started = []

    class Worker:
        def __init__(self, argv):
            self.returncode, self.pid = next(codes), 1000 + len(started)
            started.append(argv)

        def poll(self):
            return self.returncode

    from types import SimpleNamespace
    monkeypatch.setattr(queues, "subprocess", SimpleNamespace(Popen=Worker))
    monkeypatch.setattr(queues, "time", SimpleNamespace(sleep=lambda s: None))
    monkeypatch.setattr(cli_module, "_yield_to_other_work", lambda: None)
    assert cli(["queue", path, "--workers", "2"]) == 0
    out = capsys.readouterr().out
    assert len(started) == 3 and "was killed by signal 9; its run resumes from its last checkpoint" in out
    codes = iter([-9] * 6)  # killed again and again: two replacements per worker, then the queue stops
    started.clear()
    assert cli(["queue", path, "--workers", "2"]) == 75
    assert len(started) == 6 and "run the same command again" in capsys.readouterr().out


def test_a_started_run_is_named_in_progress_by_its_row_from_the_saved_status(tmp_path, monkeypatch):
    """The chapter's table marks a row with an unfinished queue run (no verdict reads it)."""
    from fabricated import fabricate

    from fer_core.book.chapter import Chapter
    from fer_core.runs.ledger import read_ledger as ledger_rows
    from fer_core.schedule.plans import read_plan
    entry = ("resmaskingnet-fer2013-s0-0a1b2c3d (epoch 3 of 50; validation 41.0 52.3* 50.9; within epoch 4 at step "
             "120; 130.5 h left at most)")
    pd.DataFrame({"item": [11], "slice": ["pham: resmaskingnet seeds 0"], slices.STARTED: [entry],
                  "estimated": ["2026-12-07"]}).to_csv(tmp_path / "queue_cpu.csv", index=False)
    found = slices.in_progress("pham", read_plan("pham").variants(), tmp_path)
    assert list(found) == ["resmaskingnet"] and found["resmaskingnet"][0].startswith(entry)
    assert "as of 2026-12-07 (cpu queue)" in found["resmaskingnet"][0]
    fabricate(tmp_path / "pub", "pham", "resnet34", accuracy=0.7, n=100)
    monkeypatch.setattr("fer_core.book.tables.in_progress", lambda p, v: slices.in_progress(p, v, tmp_path))
    table = Chapter("pham", "paper", read_plan("pham"), ledger_rows(tmp_path / "pub"), None).results()
    assert table.loc["resmaskingnet", "accuracy (%)"] == "not run"
    assert table.loc["resmaskingnet", "in progress"].startswith("resmaskingnet-fer2013-s0-0a1b2c3d (epoch 3 of 50")
    assert table.loc["resnet34", "in progress"] == ""


def test_the_gpu_queue_reads_and_a_fold_item_trains_the_sr_net_its_rows_take_once():
    from fer_core.schedule import queues

    items = queues.read_queue("gpu")
    sr_ckplus = next(i for i in items if i.label.startswith("qin: sr-ckplus"))
    variants = [s.variant for s in slices.runs_of(sr_ckplus.slice)]
    assert variants.count("edsr-l1") == 1 and variants.count("sr-ckplus") == 10


def test_a_run_two_items_hold_is_counted_once_in_the_first_and_named_in_the_next(tmp_path, capsys, monkeypatch):
    path = _queue(tmp_path, "profile: test\nitems:\n  - {paper: qin, rows: [sr-ckplus], folds: 0, seeds: 0}\n"
                            "  - {paper: qin, rows: [edsr-l1, edsr-l2], seeds: 0}\n")
    monkeypatch.setattr(speed, "run_hours", lambda *a, **k: (1.5, "measured (one and a half hours a run)"))
    table = queues.status(queues.read_queue(path))
    assert table["runs"].tolist() == [2, 1]  # the SR net alone, trained for the +SR row first: one run, once
    assert table["hours left (at most)"].tolist() == [3.0, 1.5]  # and its hours once
    assert table.loc[0, queues.EARLIER] == ""
    assert re.fullmatch(r"edsr-l1-\S+ \(item 1\)", table.loc[1, queues.EARLIER])
    assert cli(["queue", path, "--status"]) == 0
    assert re.search(r"item 2, made and counted by an earlier item: edsr-l1-\S+ \(item 1\)", capsys.readouterr().out)
