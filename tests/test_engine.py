"""The training loop (fer_core.train.engine): determinism, exact resume, early stopping, checkpoints by
elapsed time, and the loop on its own, without run folders."""

import numpy as np
import pandas as pd
import pytest
import torch

from fer_core.config import ConfigError
from fer_core.runs.records import RunExistsError, RunPaths
from fer_core.runs.runner import train


def _seeded(history: pd.DataFrame) -> pd.DataFrame:
    """A history without its wall clock (``elapsed_s``): what the seed decides."""
    assert "elapsed_s" in history
    return history.drop(columns="elapsed_s")

def test_same_config_twice_gives_identical_metrics(tiny_cfg):
    a = train(tiny_cfg("run=a"))
    b = train(tiny_cfg("run=b"))
    assert a.metrics["accuracy"] == b.metrics["accuracy"]
    pd.testing.assert_frame_equal(_seeded(a.history), _seeded(b.history))
    assert np.array_equal(a.probs, b.probs)


def test_killed_and_resumed_run_equals_a_straight_run(tiny_cfg):
    straight = train(tiny_cfg("run=straight", "train.epochs=3", "train.scheduler.name=plateau",
                              "train.scheduler.patience=0", "model.kwargs.dropout=0.5"))
    killed_cfg = tiny_cfg("run=killed", "train.epochs=3", "train.scheduler.name=plateau",
                          "train.scheduler.patience=0", "model.kwargs.dropout=0.5")
    assert train(killed_cfg, stop_after=1) is None
    with pytest.raises(RunExistsError, match="did not finish.*--resume"):
        train(killed_cfg)
    resumed = train(killed_cfg, resume=True)
    pd.testing.assert_frame_equal(_seeded(straight.history), _seeded(resumed.history))
    assert resumed.metrics["accuracy"] == straight.metrics["accuracy"]
    assert np.array_equal(straight.probs, resumed.probs)


def test_early_stopping_on_validation_accuracy(tiny_cfg, monkeypatch):
    # validation accuracy falls after epoch 1, so patience 2 stops after epoch 3 and selects epoch 1
    import fer_core.train.engine as engine

    def falling(model, val_set, setup, cfg):
        falling.calls += 1
        return {"val_loss": 1.0, "val_acc": 0.5 - 0.1 * ((falling.calls - 1) % 3)}
    falling.calls = 0
    monkeypatch.setattr(engine, "validate", falling)
    rec = train(tiny_cfg("run=early", "train.epochs=6", "train.early_stopping=2", "eval.tta=[]"))
    assert rec.metrics["epochs_run"] == 3 and len(rec.history) == 3 and rec.metrics["selected_epoch"] == 1
    # killed right after the epoch that triggered early stopping: resuming goes straight to the test
    cfg = tiny_cfg("run=early-killed", "train.epochs=6", "train.early_stopping=2", "eval.tta=[]")
    falling.calls = 0
    assert train(cfg, stop_after=3) is None
    resumed = train(cfg, resume=True)
    assert resumed.metrics["epochs_run"] == 3 and resumed.metrics["accuracy"] == rec.metrics["accuracy"]
    assert np.array_equal(resumed.probs, rec.probs)


def test_unknown_loss_term_is_a_config_error(tiny_cfg):
    with pytest.raises(ConfigError, match=r"loss\.weights: unknown term\(s\) \['focal'\]; known terms: \[.*'rec'"):
        train(tiny_cfg("run=bad", "loss.weights={focal: 1.0}"))
    with pytest.raises(ConfigError, match=r"loss\.weights\.rec: the model returns only logits"):
        train(tiny_cfg("run=bad2", "loss.weights={rec: 1.0}"))

def test_checkpoints_by_elapsed_time_resume_exactly(tiny_cfg, monkeypatch):
    """With a long ``checkpoint_every``, last.pt is written after the first epoch and at the end
    only; a run killed in between resumes from epoch 1 and ends where a straight run does."""
    import fer_core.train.checkpoints as checkpoints
    import fer_core.train.engine as engine

    written = []
    save = checkpoints.save
    monkeypatch.setattr(checkpoints, "save", lambda obj, path, **kw: (written.append((path.name, obj.get("epoch",
                        obj.get("state", {}).get("epoch")))), save(obj, path, **kw)))
    args = ("train.epochs=4", "train.checkpoint_every=1h", "model.kwargs.dropout=0.5", "eval.tta=[]")
    straight = train(tiny_cfg("run=straight", *args))
    assert [w for w in written if w[0] == "last.pt"] == [("last.pt", 1), ("last.pt", 4)]
    validate, calls = engine.validate, []

    def killed_in_epoch_3(*a):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt  # the process dies after two epochs, one of them checkpointed
        return validate(*a)
    monkeypatch.setattr(engine, "validate", killed_in_epoch_3)
    cfg = tiny_cfg("run=killed", *args)
    with pytest.raises(KeyboardInterrupt):
        train(cfg)
    assert torch.load(RunPaths.of(cfg).checkpoints / checkpoints.LAST, weights_only=True)["state"]["epoch"] == 1
    monkeypatch.setattr(engine, "validate", validate)
    resumed = train(cfg, resume=True)
    pd.testing.assert_frame_equal(_seeded(straight.history), _seeded(resumed.history))
    assert np.array_equal(straight.probs, resumed.probs)


def test_a_long_epoch_is_checkpointed_within_itself_and_resumes_from_that_step_exactly(tiny_cfg, monkeypatch):
    """An epoch of an hour (ResMaskingNet at 224x224 on a CPU) is checkpointed within itself every
    ``checkpoint_within_epoch``: killed after such a checkpoint, the run continues from that step,
    with both random states and the running sums, to the straight run's numbers."""
    import fer_core.train.checkpoints as checkpoints
    import fer_core.train.engine as engine

    args = ("train.epochs=2", "train.batch_size=16", "model.kwargs.dropout=0.5", "eval.tta=[]",
            "train.checkpoint_every=1h")
    straight = train(tiny_cfg("run=straight", *args))
    partial_saves = []
    save = checkpoints.save

    def saving(obj, path, **kw):
        save(obj, path, **kw)
        if path.name == checkpoints.LAST and "partial" in obj.get("state", {}):
            partial_saves.append(obj["state"]["partial"]["done"])
            if len(partial_saves) == 3:
                raise KeyboardInterrupt  # killed right after the third checkpoint within an epoch
    monkeypatch.setattr(checkpoints, "save", saving)
    clock = iter(range(0, 10 ** 6, 7))  # every step "takes" 7 s against checkpoint_within_epoch=20s
    monkeypatch.setattr(engine.time, "perf_counter", lambda: float(next(clock)))
    cfg = tiny_cfg("run=killed", *args, "train.checkpoint_within_epoch=20s")
    with pytest.raises(KeyboardInterrupt):
        train(cfg)
    state = torch.load(RunPaths.of(cfg).checkpoints / checkpoints.LAST, weights_only=True)["state"]
    assert state["epoch"] in (0, 1) and state["partial"]["done"] == partial_saves[-1] > 0
    monkeypatch.setattr(checkpoints, "save", save)
    resumed = train(cfg, resume=True)
    pd.testing.assert_frame_equal(_seeded(straight.history), _seeded(resumed.history))
    assert resumed.metrics["accuracy"] == straight.metrics["accuracy"]
    assert np.array_equal(straight.probs, resumed.probs)


def test_a_time_limit_stops_a_long_epoch_at_its_checkpoint_within_it(tiny_cfg, monkeypatch):
    import fer_core.train.engine as engine
    from fer_core.train.engine import TimeLimitReached

    clock = iter(range(0, 10 ** 6, 7))
    monkeypatch.setattr(engine.time, "perf_counter", lambda: float(next(clock)))
    cfg = tiny_cfg("run=limited", "train.epochs=2", "train.batch_size=16", "eval.tta=[]",
                   "train.checkpoint_within_epoch=20s")
    with pytest.raises(TimeLimitReached, match=r"at step \d+ of epoch 1 of run limited"):
        train(cfg, deadline=0.0)  # passed already: the first checkpoint within the epoch stops it
    resumed = train(cfg, resume=True)
    straight = train(tiny_cfg("run=straight2", "train.epochs=2", "train.batch_size=16", "eval.tta=[]"))
    assert np.array_equal(straight.probs, resumed.probs)


def test_a_time_limit_leaves_room_for_the_test_and_attention_of_a_trained_run(tiny_cfg, monkeypatch):
    """Training ends inside the limit, but the test and the attention maps would not: the run stops
    before them, checkpointed, and the next call tests it to the record of one straight call."""
    import time

    import fer_core.runs.runner as runs
    from fer_core.train.engine import TimeLimitReached

    monkeypatch.setattr(runs, "ATTENTION_UNMEASURED_S", 10 ** 6)  # no record of this model: the default reserve
    cfg = tiny_cfg("run=finishing", "train.epochs=1", "eval.tta=[]", "eval.attention=2")
    with pytest.raises(TimeLimitReached, match="before the test and attention maps of run finishing"):
        train(cfg, deadline=time.monotonic() + 3600)
    assert not (RunPaths.of(cfg).results / "metrics.json").exists()
    monkeypatch.setattr(runs, "ATTENTION_UNMEASURED_S", 0.0)
    resumed = train(cfg, resume=True, deadline=time.monotonic() + 3600)
    straight = train(tiny_cfg("run=finishing2", "train.epochs=1", "eval.tta=[]", "eval.attention=2"))
    assert np.array_equal(straight.probs, resumed.probs)
    assert resumed.provenance["test_s"] >= 0 and "attention_s" in resumed.provenance


def test_a_model_never_recorded_here_reserves_its_attention_record_by_its_validation_speed(tiny_cfg):
    """No record of the model on this kind of device: the reserve grows with the model's cost (a
    224x224 network's record takes a quarter of an hour on the CPU, not the 3-minute floor)."""
    import fer_core.runs.runner as runs

    cfg = tiny_cfg("run=never-recorded", "eval.tta=[]", "eval.attention=32")
    fast = runs.finishing_seconds(cfg, {"val_s_per_image": 0.001}, 100, "cpu")
    slow = runs.finishing_seconds(cfg, {"val_s_per_image": 0.1}, 100, "cpu")  # ResMaskingNet at 224: ~0.1 s
    assert fast == pytest.approx(runs.FINISHING_SAFETY * (0.1 + runs.ATTENTION_UNMEASURED_S))
    assert slow == pytest.approx(runs.FINISHING_SAFETY * (10 + runs.ATTENTION_AS_TEST_IMAGES * 0.1))


def test_the_loop_runs_without_run_folders(tiny_cfg, tmp_path):
    """What a notebook or a benchmark calls: a Training fitted in memory, no file written, the best
    epoch's weights kept in the state, and the same history as the run layer's."""
    from fer_core.train.build import load_data
    from fer_core.train.engine import Training, fit

    cfg = tiny_cfg("run=loop", "train.epochs=2", "eval.tta=[]", "eval.attention=0")
    data = load_data(cfg)
    t = Training.start(cfg, data.num_classes)
    state = fit(t, data)
    assert state["epoch"] == 2 and "best_weights" in state and not any(tmp_path.rglob("*.pt"))
    recorded = train(cfg, data=data)
    pd.testing.assert_frame_equal(_seeded(pd.DataFrame(state["history"])), _seeded(recorded.history))
