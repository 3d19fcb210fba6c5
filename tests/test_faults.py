"""Faults and bad input: nothing lost, every error one line that names its origin and the fix."""
import os
import subprocess
import sys
import time

import pytest
import torch

from fer_core.cli import main as cli
from fer_core.config import ConfigError, load_config
from fer_core.paths import params_file
from fer_core.runs import ledger
from fer_core.runs.locks import RunLockedError
from fer_core.runs.preflight import PreflightError
from fer_core.runs.records import RunExistsError, RunPaths
from fer_core.runs.runner import evaluate_run, train
from fer_core.train.checkpoints import CheckpointError

FAST = ["data.synthetic_size=[56, 28, 28]", "data.subset=null", "eval.attention=0", "eval.tta=[]"]


# 1. one process per run ----------------------------------------------------------------------------
def test_a_second_process_on_the_same_run_stops_at_once_naming_the_holder(tiny_cfg):
    cfg = tiny_cfg(*FAST)
    paths = RunPaths.of(cfg)
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from pathlib import Path; from fer_core.runs.locks import run_lock\n"
        f"with run_lock('x', Path({str(paths.results)!r}), Path({str(paths.checkpoints)!r})):\n"
        "    print('held', flush=True); time.sleep(60)")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        t0 = time.monotonic()
        with pytest.raises(RunLockedError, match=rf"Run {cfg.run_name} is being trained by process {holder.pid} on"):
            train(cfg)
        assert time.monotonic() - t0 < 10 and not paths.finished
    finally:
        holder.kill()
        holder.wait()
    assert train(cfg).metrics["n"] == 28  # the dead holder's lock file does not block the run


# 2. a resume checks what it resumes ---------------------------------------------------------------
def test_a_resume_with_other_settings_is_refused_naming_each_key(tiny_cfg, tmp_path):
    cfg = tiny_cfg(*FAST, "train.epochs=3")
    assert train(cfg, stop_after=1) is None
    changed = tiny_cfg(*FAST, "train.epochs=3", "train.optimizer.lr=0.5", "train.optimizer.name=adam")
    with pytest.raises(ConfigError, match=r"train\.optimizer\.lr: 0\.003 in the checkpoint, 0\.5 now") as e:
        train(changed, resume=True)
    assert "train.optimizer.name: 'adamw' in the checkpoint, 'adam' now" in str(e.value)
    neutral = tiny_cfg(*FAST, "train.epochs=3", "train.eval_batch_size=17", "train.time_limit=1h")
    record = train(neutral, resume=True)  # display, time limit and evaluation batch: allowed, and recorded
    assert record.provenance["resumed_with_changes"]["train.eval_batch_size"] == [256, 17]
    assert record.config["train"]["optimizer"]["lr"] == 0.003


# 3. broken checkpoints are named ------------------------------------------------------------------
@pytest.mark.parametrize("damage", ["empty", "truncated", "random", "best_over_last"])
def test_a_broken_last_checkpoint_is_named_with_the_fix(tiny_cfg, damage):
    cfg = tiny_cfg(*FAST, "train.epochs=3")
    train(cfg, stop_after=2)
    ckpt = RunPaths.of(cfg).checkpoints
    last = ckpt / "last.pt"
    assert (ckpt / "last.prev.pt").is_file()  # the epoch before is kept
    if damage == "empty":
        last.write_bytes(b"")
    elif damage == "truncated":
        last.write_bytes(last.read_bytes()[:1000])
    elif damage == "random":
        last.write_bytes(os.urandom(5000))
    else:
        last.write_bytes((ckpt / "best.pt").read_bytes())
    with pytest.raises(CheckpointError, match=rf"Checkpoint {last} .*move last\.prev\.pt to last\.pt") as e:
        train(cfg, resume=True)
    assert "\n" not in str(e.value) and "Traceback" not in str(e.value)


def test_a_kill_inside_the_checkpoint_write_resumes_from_a_complete_checkpoint(tiny_cfg, monkeypatch):
    """Killed at the rename that installs the new last.pt (#26 item 2): last.pt is the epoch before,
    whole, and the resumed run ends where a straight one does (it used to start again from epoch 1,
    exit 0, beside a complete last.tmp and last.prev.pt)."""
    from fer_core.train import checkpoints

    straight = train(tiny_cfg(*FAST, "train.epochs=3", "run=straight", "train.checkpoint_every=0"))
    cfg = tiny_cfg(*FAST, "train.epochs=3", "run=killed", "train.checkpoint_every=0")
    real, calls = os.replace, []

    def killed(src, dst):
        if os.path.basename(src) == "last.tmp":
            calls.append(dst)
            if len(calls) == 2:  # the write of epoch 2's last.pt, cut where it installs the new file
                raise KeyboardInterrupt("killed")
        return real(src, dst)
    monkeypatch.setattr(checkpoints.os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        train(cfg)
    monkeypatch.setattr(checkpoints.os, "replace", real)
    ckpt = RunPaths.of(cfg).checkpoints
    assert (ckpt / "last.pt").is_file() and torch.load(ckpt / "last.pt", weights_only=True)["state"]["epoch"] == 1
    resumed = train(cfg, resume=True)
    assert resumed.metrics["accuracy"] == straight.metrics["accuracy"]
    assert resumed.history.drop(columns="elapsed_s").equals(straight.history.drop(columns="elapsed_s"))


def test_a_checkpoint_folder_without_last_but_with_leftovers_is_refused_naming_them(tiny_cfg):
    """What older code left when killed between its two renames: no last.pt, a last.prev.pt."""
    cfg = tiny_cfg(*FAST, "train.epochs=3")
    train(cfg, stop_after=2)
    ckpt = RunPaths.of(cfg).checkpoints
    (ckpt / "last.pt").replace(ckpt / "last.tmp")
    with pytest.raises(RunExistsError, match=r"no last\.pt but last\.prev\.pt and last\.tmp .* move last\.prev\.pt "
                                             r"to last\.pt"):
        train(cfg, resume=True)


def test_a_diverging_run_stops_at_its_first_non_finite_loss_keeping_the_last_finite_checkpoint(tiny_cfg, capsys):
    """lr = 1e6 (#26 item 1): it used to train every epoch, then die at the test with "Input contains
    NaN" and no record; now one line names the epoch, the step, the term and the cause."""
    from fer_core.train.engine import DivergedError

    cfg = tiny_cfg(*FAST, "train.epochs=4", "train.checkpoint_every=0", "train.optimizer.lr=1e6")
    with pytest.raises(DivergedError, match=r"diverged: the (loss \(ce\)|weights) became non-finite (at|in) "
                                            r"epoch \d.*learning rate [0-9.e+]+\. Likely cause: a learning rate "
                                            r"too high") as e:
        train(cfg)
    assert "\n" not in str(e.value)
    ckpt = RunPaths.of(cfg).checkpoints / "last.pt"
    if ckpt.is_file():  # what was saved is finite
        state = torch.load(ckpt, weights_only=True)["model"]
        assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())
    assert not RunPaths.of(cfg).finished


def test_weights_with_nan_are_refused_at_load_naming_the_keys(tmp_path):
    from fer_core.models import create_model, load_weights

    model = create_model("simple_cnn")
    state = model.state_dict()
    first = next(k for k, v in state.items() if v.is_floating_point())
    state[first] = torch.full_like(state[first], float("nan"))
    torch.save(state, tmp_path / "nan.pth")
    with pytest.raises(ValueError, match=rf"nan\.pth \(model\.weights\) holds non-finite values .*{first}"):
        load_weights(create_model("simple_cnn"), tmp_path / "nan.pth")


def test_a_full_disk_names_the_folder_and_removes_the_partial_file(tmp_path, monkeypatch):
    """#26 item 6: a full disk gave a torch traceback and left a partial last.tmp filling it."""
    from fer_core.runs import preflight
    from fer_core.train import checkpoints

    last = tmp_path / "last.pt"
    checkpoints.save({"model": {"w": torch.ones(3)}}, last)
    real = torch.save

    def full(obj, f, *a, **k):
        with open(f, "wb") as out:
            out.write(b"partial")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0")
    monkeypatch.setattr(checkpoints.torch, "save", full)
    with pytest.raises(CheckpointError, match=rf"Checkpoint {last} could not be written \(\[enforce fail.*MB free in "
                                              rf"{tmp_path}; the partial file was removed") as e:
        checkpoints.save({"model": {"w": torch.zeros(3)}}, last, keep_previous=True)
    assert "\n" not in str(e.value) and not (tmp_path / "last.tmp").exists()
    monkeypatch.setattr(checkpoints.torch, "save", real)
    assert torch.load(last, weights_only=True)["model"]["w"].sum() == 3  # the checkpoint before is intact
    # the estimate counts the temporary copy a write makes: 3 copies of weights + Adam's 2 slots, and best
    assert preflight.checkpoint_bytes(1000, 2) == 4 * 1000 * (3 * 3 + 1)


def test_a_broken_best_checkpoint_is_named_at_evaluation(tiny_cfg, capsys):
    cfg = tiny_cfg(*FAST)
    record = train(cfg)
    (RunPaths.of(cfg).checkpoints / "best.pt").write_bytes(b"\x00" * 100)
    with pytest.raises(CheckpointError, match="best.pt cannot be read .*train the run again"):
        evaluate_run(record.path)
    assert cli(["evaluate", str(record.path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: Checkpoint")


# 4. preflight ---------------------------------------------------------------------------------------
@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only folders")
def test_a_read_only_results_folder_is_found_before_training(tiny_cfg, tmp_path):
    results = tmp_path / "ro"
    results.mkdir()
    results.chmod(0o500)
    try:
        with pytest.raises(PreflightError, match=rf"results folder {results}.* is not writable"):
            train(tiny_cfg(*FAST, f"output.results_dir={results}"))
    finally:
        results.chmod(0o700)


def test_a_folder_that_cannot_be_written_is_found_before_training(tiny_cfg, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    cfg = tiny_cfg(*FAST, f"output.results_dir={blocker / 'results'}")
    t0 = time.monotonic()
    with pytest.raises(PreflightError, match=r"results folder .*a_file/results.* is not writable"):
        train(cfg)
    assert time.monotonic() - t0 < 20 and not RunPaths.of(cfg).checkpoints.exists()


def test_too_little_disk_space_is_warned_with_the_figures(tiny_cfg, monkeypatch):
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10, 10, 1000))
    with pytest.warns(UserWarning, match=r"0\.0 GB free, the run's checkpoints take about"):
        train(tiny_cfg(*FAST))


# 5. bad input, right place -------------------------------------------------------------------------
def test_a_blank_emotion_cell_names_its_row(tmp_path):
    from fer_core.data import DataError, load

    rows = ["emotion,pixels,Usage"] + [f"3,{' '.join(['7'] * 2304)},Training"] * 20
    rows[15] = f",{' '.join(['7'] * 2304)},Training"  # row 15 of the file's data
    (tmp_path / "fer2013.csv").write_text("\n".join(rows) + "\n")
    with pytest.raises(DataError, match=r"row 15 \(line 16\): emotion is blank"):
        load("fer2013-csv", tmp_path / "fer2013.csv", use_cache=False)


@pytest.mark.parametrize("n", [0, -3])
def test_an_empty_or_negative_subset_is_refused_naming_the_key(n):
    with pytest.raises(ConfigError, match=rf"data\.subset\.train: .*greater than or equal to 1 \(got {n}\) "
                                          rf"\(from --set data\.subset\.train={n}\)"):
        load_config(params_file("test"), [f"data.subset.train={n}"])


def test_auto_on_a_half_fer2013_folder_says_what_is_missing(tmp_path):
    from fer_core.data import DataError, resolve

    (tmp_path / "train" / "happy").mkdir(parents=True)
    with pytest.raises(DataError, match=r"train/ found, test/ missing.*fer2013\.csv.*not found"):
        resolve("auto", tmp_path)


def test_cuda_without_a_gpu_and_a_refused_pickle_are_one_line_each(tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("a GPU is here")
    assert cli(["train", "--params", str(params_file("test")), "--set", "train.device=cuda",
                "--set", f"output.results_dir={tmp_path}"]) == 2
    assert capsys.readouterr().err.strip().count("\n") == 0

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))
    torch.save({"w": Evil()}, tmp_path / "evil.pt")
    assert cli(["train", "--params", str(params_file("test")), "--set", f"model.weights={tmp_path / 'evil.pt'}",
                "--set", f"output.results_dir={tmp_path}"]) == 2
    out = capsys.readouterr()
    assert "pwned" not in out.out and out.err.strip().count("\n") == 0 and "refused" in out.err


# 6. errors name their origin -----------------------------------------------------------------------
def test_an_override_error_names_the_override_and_a_file_error_the_file(tmp_path):
    with pytest.raises(ConfigError, match=r"train\.optimizer\.lr: .* \(from --set train\.optimizer\.lr=-1\)") as e:
        load_config(params_file("test"), ["train.optimizer.lr=-1"])
    assert "test.yaml" not in str(e.value)
    bad = tmp_path / "bad.yaml"
    bad.write_text("base: " + str(params_file("test")) + "\ntrain: {epochs: 0}\n")
    with pytest.raises(ConfigError, match=r"train\.epochs: .* \(in .*bad\.yaml\)"):
        load_config(bad)


# 7. every finished run lands in its ledger ----------------------------------------------------------
def test_a_cli_run_lands_in_its_results_folders_ledger(tmp_path):
    assert cli(["train", "--params", str(params_file("test")), "--set", "data.source=synthetic",
                "--set", "train.progress=false", "--set", f"output.results_dir={tmp_path / 'r'}",
                "--set", f"output.checkpoint_dir={tmp_path / 'c'}", *[f"--set={s}" for s in FAST]]) == 0
    book = ledger.read_ledger(tmp_path / "r")
    assert len(book) == 1 and book.loc[0, "profile"] == "test" and book.loc[0, "variant"] == "simple_cnn"


# round 2: damaged files a user may hand over --------------------------------------------------------
def test_an_empty_weights_file_is_named_not_a_traceback(tmp_path):
    from fer_core.models import create_model

    empty = tmp_path / "w.pth"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match=rf"Weights file {empty} \(model.weights\) is empty \(0 bytes\)"):
        create_model("simple_cnn", weights=str(empty))


def test_a_truncated_attention_record_names_the_file_and_the_fix(tmp_path):
    from fer_core.explain.attention import Attention

    path = tmp_path / "run" / "attention.npz"
    path.parent.mkdir()
    path.write_bytes(b"PK\x03\x04 cut off")
    with pytest.raises(ValueError, match=rf"Attention record {path} cannot be read .*python -m fer_core attention "
                                         rf"{path.parent}") as e:
        Attention.read(path)
    assert "\n" not in str(e.value)


def test_a_bundle_inside_what_it_copies_is_refused_before_anything_is_written(capsys):
    from fer_core.paths import ROOT

    out = ROOT / "params" / "bundle-here"
    assert cli(["bundle", str(out)]) == 2
    err = capsys.readouterr().err
    assert "is inside the project's params, which the bundle copies" in err and err.count("\n") == 1
    assert not out.exists()


def test_a_resume_after_the_plan_changed_a_row_keeps_the_old_run_and_says_so(tmp_path, monkeypatch, run_sets):
    """A run of a row is killed after epoch 1; the plan file then changes the row (its learning
    rate). The slice cannot resume the old run under the new settings: it starts the new recipe's
    run from epoch 1, warns naming the old run, and leaves the old run's checkpoint as it was."""
    import shutil

    import yaml

    from fer_core.schedule import plans, slices

    shutil.copy(plans.PAPERS_DIR / "qin.yaml", tmp_path / "qin.yaml")
    monkeypatch.setattr(plans, "PAPERS_DIR", tmp_path)
    sl = slices.Slice("qin", "test", ["digits-cnn"], overrides=[*run_sets, "train.epochs=2", *FAST[2:]])
    (old,) = slices.runs_of(sl)
    assert train(old.cfg, stop_after=1) is None  # killed after epoch 1
    last = RunPaths.of(old.cfg).checkpoints / "last.pt"
    before = last.read_bytes()
    plan = yaml.safe_load((tmp_path / "qin.yaml").read_text())
    row = next(r for r in plan["rows"] if r.get("variant") == "digits-cnn")
    row["set"] = {"train": {"optimizer": {"lr": 0.01}}}
    (tmp_path / "qin.yaml").write_text(yaml.safe_dump(plan, sort_keys=False))
    (new,) = slices.runs_of(sl)
    assert new.cfg.run_name != old.cfg.run_name and new.status == "not started"
    with pytest.warns(slices.PlanChangedWarning, match=rf"changed since run {old.cfg.run_name} was started.*"
                                                       rf"{new.cfg.run_name} starts from epoch 1"):
        (ran,) = slices.execute(sl).to_dict("records")
    assert ran["record"].endswith(new.cfg.run_name) and ran["epochs_run"] == 2
    assert last.read_bytes() == before and not RunPaths.of(old.cfg).finished  # the old run untouched


# round 3 (issue 37): faults that ended in a traceback or a loss ----------------------------------------
def test_an_empty_ledger_takes_its_first_row_with_a_header(tmp_path):
    from fabricated import fabricate
    ledger.ledger_path(tmp_path).parent.mkdir(parents=True, exist_ok=True)
    ledger.ledger_path(tmp_path).write_text("")  # what a full disk leaves at an append
    ledger.check(tmp_path)
    fabricate(tmp_path, "pham", "resnet34", accuracy=0.6, n=20)
    assert ledger.read_ledger(tmp_path)["variant"].tolist() == ["resnet34"]


def test_a_truncated_or_unwritable_data_cache_costs_speed_not_the_load(tmp_path, monkeypatch):
    import numpy as np
    from fabricated import write_png

    from fer_core import data as fer_data
    root = tmp_path / "ck"
    for c, cls in enumerate(("anger", "happy")):
        for i in range(2):
            write_png(root / cls / f"S{10 + 2 * c + i:03d}_001_0000000{i}.png", np.full((48, 48), 30 * i, np.uint8))
    monkeypatch.setenv("FER_CACHE_DIR", str(tmp_path / "cache"))
    first = fer_data.load("ckplus", root, n_folds=2)
    cached = next((tmp_path / "cache").glob("ckplus-*.npz"))
    cached.write_bytes(cached.read_bytes()[:100])  # truncated: BadZipFile on every load before
    assert fer_data.load("ckplus", root, n_folds=2).fingerprint == first.fingerprint
    import errno

    def full_disk(file, **arrays):  # a full (or read-only) cache disk: half a file written, then the error
        open(file, "wb").write(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(fer_data.np, "savez", full_disk)
    monkeypatch.setenv("FER_CACHE_DIR", str(tmp_path / "full"))
    with pytest.warns(UserWarning, match="could not be cached .*No space left on device"):
        assert fer_data.load("ckplus", root, n_folds=2).fingerprint == first.fingerprint
    assert list((tmp_path / "full").glob("*")) == []  # no half-written *.tmp.npz left behind


def test_a_16_bit_face_is_scaled_not_clipped_and_a_frame_under_two_classes_is_named(tmp_path):
    import numpy as np
    from PIL import Image

    from fer_core.data import DataError, load
    root = tmp_path / "ck"
    (root / "anger").mkdir(parents=True)
    (root / "happy").mkdir()
    wide = (np.arange(48 * 48).reshape(48, 48) * 28).astype(np.uint16)  # 0 .. 64484
    Image.fromarray(wide).save(root / "anger" / "S010_001_00000001.png")
    for name in ("anger/S012_001_00000001.png", "happy/S011_001_00000001.png", "happy/S013_001_00000001.png"):
        Image.fromarray(np.zeros((48, 48), np.uint8)).save(root / name)
    d = load("ckplus", root, use_cache=False, n_folds=2)
    face = d.images[d.labels == 0][0]
    assert face.max() == 64484 >> 8 and face.min() == 0 and len(np.unique(face)) > 200  # not a white mask
    Image.fromarray(np.zeros((48, 48), np.uint8)).save(root / "happy" / "S010_001_00000001.png")
    with pytest.raises(DataError, match=r"happy/S010_001_00000001.png is also under anger/"):
        load("ckplus", root, use_cache=False, n_folds=2)


@pytest.mark.parametrize("content", ["tensor", "list", "text"])
def test_a_weights_file_that_is_no_state_dict_is_one_line_naming_it(tmp_path, content):
    from fer_core.models import create_model, load_weights
    path = tmp_path / "w.pt"
    if content == "text":
        path.write_text("these are not weights\n")
    else:
        torch.save(torch.zeros(3) if content == "tensor" else [torch.zeros(3)], path)
    with pytest.raises(ValueError, match=rf"Weights file {path} \(model.weights\) (holds a|cannot be read)"):
        load_weights(create_model("simple_cnn"), path)


@pytest.mark.parametrize("doc, message", [
    ("profil: test\nitems:\n  - {paper: du, rows: [resnet50]}\n", r"unknown top-level key\(s\) \['profil'\]"),
    ("items:\n  - {paper: du, rows: 5}\n", r"item 1: rows must be a list of the plan's row names, not 5"),
    ("items:\n  - {paper: du, rows: [resnet50], folds: 0-2}\n", r"item 1: folds apply to cross-validated .*resnet50"),
])
def test_a_queue_file_with_a_wrong_key_or_value_is_refused_naming_it(tmp_path, doc, message):
    from fer_core.schedule.queues import QueueError, read_queue
    path = tmp_path / "q.yaml"
    path.write_text(doc)
    with pytest.raises(QueueError, match=message):
        read_queue(str(path))


def test_a_time_limit_without_the_unit_of_its_last_number_is_refused():
    from fer_core.config import parse_duration
    assert parse_duration("2h40m") == 9600 and parse_duration("45s") == 45 and parse_duration("90") == 90
    with pytest.raises(ValueError, match=r"'2h40': a number after hours or minutes needs its unit"):
        parse_duration("2h40")


@pytest.mark.parametrize("override, key", [("seed=99999999999999999999", "seed"),
                                           ("train.optimizer.betas=[2,3]", "train.optimizer.betas")])
def test_an_out_of_range_seed_or_betas_is_one_line_naming_the_key(override, key):
    with pytest.raises(ConfigError, match=rf"{key}: .*\(from --set"):
        load_config(params_file("test"), [override])


def test_a_csv_emotion_that_is_a_superscript_digit_names_its_row(tmp_path):
    import numpy as np
    import pandas as pd

    from fer_core.data import DataError, load
    pd.DataFrame({"emotion": ["3", "³"], "pixels": [" ".join(["0"] * 2304)] * 2, "Usage": ["Training"] * 2}).to_csv(
        tmp_path / "fer2013.csv", index=False)
    with pytest.raises(DataError, match=r"row 2 \(line 3\): emotion is ³"):
        load("fer2013-csv", tmp_path, use_cache=False)
    del np


def test_ctrl_c_and_a_full_disk_end_the_cli_in_one_line_saying_what_resumes(monkeypatch, capsys):
    from fer_core import cli as cli_module

    def interrupted(args):
        raise KeyboardInterrupt

    def full(args):
        raise OSError(28, "No space left on device", "/results/x/roc.json.tmp")
    for fn, rc, words in ((interrupted, 130, "--resume"), (full, 74, "No space left on device (/results/x/roc.json")):
        monkeypatch.setattr(cli_module, "_cmd_models", fn)
        assert cli(["models"]) == rc
        assert words in capsys.readouterr().err


def test_a_failed_bundle_leaves_nothing_that_blocks_the_same_command_again(tmp_path, monkeypatch):
    from fer_core.schedule import bundle
    out = tmp_path / "fer-bundle"
    with pytest.raises(bundle.BundleError, match="--data vemo: unknown data set"):
        bundle.build(out, python="3.11", platform="manylinux_2_28_x86_64", data=["vemo"], data_dir=tmp_path)
    assert not out.exists()  # refused before anything was copied

    def no_registry(*a, **k):
        raise bundle.BundleError("pip could not download the wheels")
    monkeypatch.setattr(bundle, "download_wheels", no_registry)
    with pytest.raises(bundle.BundleError, match="pip could not"):
        bundle.build(out, python="3.11", platform="manylinux_2_28_x86_64")
    assert not out.exists()  # the half-built copy is gone: the same command can run again


def test_a_bundle_with_every_package_skipped_asks_pip_for_nothing(tmp_path, monkeypatch):
    from fer_core.schedule import bundle
    monkeypatch.setattr(bundle, "wheel_list", lambda python, skip=(): {})
    monkeypatch.setattr(bundle.subprocess, "run", lambda *a, **k: pytest.fail("pip was called with no package"))
    assert bundle.download_wheels(tmp_path, "3.11", "manylinux_2_28_x86_64") == []
