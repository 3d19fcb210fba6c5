import json

import numpy as np
import pandas as pd
import pytest
import torch

from fer_core.augment import augment, tencrop_views, to_input
from fer_core.cli import main as cli
from fer_core.config import AugmentConfig, ConfigError
from fer_core.engine import TTA, Setup, build_optimizer, build_scheduler, evaluate_run, load_data, predict, run, train
from fer_core.metrics import classification_metrics, psnr
from fer_core.records import RunExistsError, RunPaths


# -- augmentation and inputs ------------------------------------------------------------------
def _batch(n=8):
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (n, 1, 48, 48), dtype=torch.uint8, generator=g)


def test_augment_shapes_and_seeded_determinism():
    x = _batch()
    cfg = AugmentConfig(crop="resized", rotation=15)
    a = augment(x, cfg, 64, 3, torch.Generator().manual_seed(1))
    b = augment(x, cfg, 64, 3, torch.Generator().manual_seed(1))
    c = augment(x, cfg, 64, 3, torch.Generator().manual_seed(2))
    assert a.shape == (8, 3, 64, 64) and a.dtype == torch.float32
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(a[:, 0], a[:, 2])  # grey -> 3 identical channels


def test_flip_only_augmentation_flips_some_images_exactly():
    x = _batch(32)
    cfg = AugmentConfig(hflip=True, rotation=0, crop="none")
    out = augment(x, cfg, 48, 1, torch.Generator().manual_seed(0))
    plain, flipped = to_input(x, 48, 1), torch.flip(to_input(x, 48, 1), dims=[-1])
    same = [torch.allclose(o, p, atol=1e-5) for o, p in zip(out, plain)]
    mirrored = [torch.allclose(o, f, atol=1e-5) for o, f in zip(out, flipped)]
    assert all(s or m for s, m in zip(same, mirrored)) and any(same) and any(mirrored)


def test_no_augmentation_is_the_identity():
    x = _batch()
    cfg = AugmentConfig(hflip=False, rotation=0, crop="none")
    assert torch.allclose(augment(x, cfg, 48, 1, torch.Generator()), to_input(x, 48, 1), atol=1e-5)


def test_tta_views_are_ten_crops_and_flips():
    views = tencrop_views(_batch(2), 40, 48, 1)
    assert len(views) == 10 and all(v.shape == (2, 1, 48, 48) for v in views)
    assert torch.allclose(views[5], torch.flip(views[0], dims=[-1]))


# -- metrics ------------------------------------------------------------------------------------
def test_metrics_on_a_hand_computed_case():
    y = np.array([0, 0, 1, 1, 2, 2])
    probs = np.eye(3)[[0, 1, 1, 1, 2, 0]] * 0.8 + 0.2 / 3
    m = classification_metrics(y, probs, ["a", "b", "c"])
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    # class a: precision 1/2, recall 1/2; b: 2/3, 1; c: 1, 1/2
    assert m["per_class"]["b"]["precision"] == pytest.approx(2 / 3) and m["per_class"]["b"]["recall"] == 1
    assert m["macro"]["precision"] == pytest.approx((1 / 2 + 2 / 3 + 1) / 3)
    assert m["macro"]["f1"] == pytest.approx((1 / 2 + 0.8 + 2 / 3) / 3)
    # AUC of b: positives (rows 2, 3) beat 3 of 4 negatives and tie row 1 (a tie counts 1/2) -> 7/8
    assert m["auc"]["b"] == pytest.approx(7 / 8) and m["auc"]["c"] == pytest.approx(6 / 8)


# -- optimizers and schedules -------------------------------------------------------------------
@pytest.mark.parametrize("opt", ["sgd", "adam", "adamw", "radam"])
def test_optimizers_build(tiny_cfg, opt):
    cfg = tiny_cfg(f"train.optimizer.name={opt}", "train.optimizer.nesterov=true")
    o = build_optimizer(cfg, torch.nn.Linear(2, 2))
    assert type(o).__name__.lower() == opt


def test_schedules_follow_their_definition(tiny_cfg):
    lin = torch.nn.Linear(2, 2)
    base = tiny_cfg().train.optimizer.lr
    step = build_scheduler(tiny_cfg("train.scheduler.name=step", "train.scheduler.step_size=1",
                                    "train.scheduler.gamma=0.5"), opt := build_optimizer(tiny_cfg(), lin))
    opt.step(), step.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(base / 2)
    cos_cfg = tiny_cfg("train.scheduler.name=cosine", "train.epochs=4")
    cos = build_scheduler(cos_cfg, opt := build_optimizer(cos_cfg, lin))
    for _ in range(2):
        opt.step(), cos.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(base / 2)  # half-way down the cosine
    plateau = build_scheduler(tiny_cfg("train.scheduler.name=plateau", "train.scheduler.patience=0"),
                              opt := build_optimizer(tiny_cfg(), lin))
    plateau.step(0.5)
    plateau.step(0.4)  # no gain on validation accuracy -> lr x factor
    assert opt.param_groups[0]["lr"] == pytest.approx(base / 10)


# -- training runs ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """One tiny finished run shared by the record tests."""
    from fer_core.config import load_config
    from fer_core.paths import params_file

    tmp = tmp_path_factory.mktemp("run")
    cfg = load_config(params_file("test"), ["data.source=synthetic", "train.progress=false", "train.device=cpu",
                                            f"output.results_dir={tmp / 'results'}",
                                            f"output.checkpoint_dir={tmp / 'ckpt'}",
                                            "eval.tta=[tencrop, random_views]", "eval.tta_views=3"])
    return cfg, train(cfg)


def test_run_record_has_everything(finished):
    cfg, record = finished
    files = {p.name for p in record.path.iterdir()}
    assert files == {"metrics.json", "history.csv", "predictions.csv", "roc.json", "config.yaml", "provenance.json",
                     "attention.npz"}
    assert not list(record.path.glob("*.pt")), "checkpoints belong in the checkpoint dir, not the record"
    assert (RunPaths.of(cfg).checkpoints / "best.pt").is_file()
    m, p = record.metrics, record.provenance
    assert {"accuracy", "macro", "weighted", "per_class", "confusion_matrix", "auc", "auc_macro", "tta"} <= set(m)
    assert m["note"] == "synthetic data — not comparable to the papers"
    assert np.array(m["confusion_matrix"]).sum() == m["n"] == len(record.predictions) == 210
    assert {"commit", "dirty", "data", "packages", "device", "wall_time_s", "started"} <= set(p)
    assert p["data"]["fingerprint"].startswith("synthetic-")
    assert p["packages"]["torch"] == torch.__version__.split("+")[0]
    assert list(record.history.columns[:2]) == ["epoch", "lr"] and len(record.history) == cfg.train.epochs
    assert record.probs.shape == (210, 7) and np.allclose(record.probs.sum(1), 1, atol=1e-3)
    assert record.config == cfg.to_dict()


def test_checkpoint_is_selected_on_validation_not_test(finished):
    _, record = finished
    h = record.history
    assert record.metrics["selected_epoch"] == int(h.loc[h["val_acc"].idxmax(), "epoch"])
    assert record.metrics["best_val_acc"] == pytest.approx(h["val_acc"].max())


def test_evaluate_reproduces_the_recorded_metrics(finished, capsys):
    _, record = finished
    again = evaluate_run(record.path)
    assert again["accuracy"] == pytest.approx(record.metrics["accuracy"])
    for mode in ("tencrop", "random_views"):
        tta = evaluate_run(record.path, tta=mode)
        assert tta["accuracy"] == pytest.approx(record.metrics["tta"][mode]["accuracy"])
        assert (record.predictions[f"pred_tta_{mode}"] >= 0).all()
    assert cli(["evaluate", str(record.path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["confusion_matrix"] == record.metrics["confusion_matrix"]


def test_random_views_are_seeded_and_do_not_depend_on_the_batch_size(finished):
    from fer_core.engine import restore

    model, setup, data, cfg = restore(finished[1])
    test = data.select("test")
    tta = TTA.of(cfg, "random_views")
    a = predict(model, test, setup, 256, tta)
    assert np.allclose(a, predict(model, test, setup, 7, tta), atol=1e-5)
    assert not np.allclose(a, predict(model, test, setup, 256, TTA.of(cfg.model_copy(update={"seed": 5}),
                                                                       "random_views")), atol=1e-5)
    assert np.allclose(a.sum(1), 1, atol=1e-5)


def test_a_finished_run_is_never_overwritten_silently(finished):
    cfg, record = finished
    before = (record.path / "metrics.json").read_text()
    with pytest.raises(RunExistsError, match="already finished.*overwrite"):
        train(cfg)
    assert (record.path / "metrics.json").read_text() == before
    assert run(cfg).metrics == record.metrics  # reuse: same config and data -> the record is read back
    other = cfg.model_copy(update={"seed": 5, "run": cfg.run_name})
    with pytest.raises(RunExistsError, match="different config"):
        run(other)


def test_overwrite_moves_the_old_run_aside(tiny_cfg):
    cfg = tiny_cfg("train.epochs=1", "run=ow")
    first = train(cfg)
    second = train(tiny_cfg("train.epochs=1", "run=ow", "output.overwrite=true"))
    kept = list(first.path.parent.glob("ow.replaced-*"))
    assert second.path == first.path and len(kept) == 1 and (kept[0] / "metrics.json").is_file()


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
    import fer_core.engine as engine

    def falling(model, val_set, setup, cfg):
        falling.calls += 1
        return {"val_loss": 1.0, "val_acc": 0.5 - 0.1 * ((falling.calls - 1) % 3)}
    falling.calls = 0
    monkeypatch.setattr(engine, "_validate", falling)
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


def test_train_command(tiny_cfg, tmp_path, capsys):
    args = ["train", "--params", "params/test.yaml", "--set", "data.source=synthetic", "--set", "train.epochs=1",
            "--set", "train.progress=false", "--set", f"output.results_dir={tmp_path / 'r'}",
            "--set", f"output.checkpoint_dir={tmp_path / 'c'}", "--set", "train.device=cpu"]
    assert cli(args) == 0
    out = capsys.readouterr().out
    assert "test accuracy" in out and "synthetic data" in out
    assert cli(args) == 2 and "already finished" in capsys.readouterr().err


def test_data_for_a_ckplus_config_uses_the_fold(tiny_cfg, shared_data):
    data = load_data(tiny_cfg("data.source=ckplus", f"data.dir={shared_data}", "data.fold=3", "data.subset=null"))
    assert set(data.split) == {"train", "val", "test"} and (data.fold[data.split == "test"] == 3).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (run on the GPU machine)")
def test_cuda_uses_bf16_autocast_and_channels_last(tiny_cfg):
    cfg = tiny_cfg("run=cuda", "train.device=cuda", "train.epochs=1")
    setup = Setup.of(cfg)
    assert setup.amp and setup.channels_last and setup.device.type == "cuda"
    rec = train(cfg)
    assert rec.provenance["gpu"] and 0 <= rec.metrics["accuracy"] <= 1


def test_test_split_loss_terms_and_psnr():
    from fer_core.data import load
    from fer_core.engine import loss_terms
    from fer_core.models import create_model

    data = load("synthetic", synthetic_size=(7, 7, 14)).select("test")
    setup = Setup(torch.device("cpu"), 48, 1, False, False)
    torch.manual_seed(0)
    edsr = create_model("edsr_x2", sr_blocks=1, sr_feats=8)
    terms = loss_terms(edsr, data, setup)
    assert set(terms) >= {"sr_l1", "sr_l2", "bicubic_l2"} and "rec" not in terms
    assert 0 < terms["bicubic_l2"] < terms["sr_l2"]  # an untrained SR net is worse than bicubic
    assert loss_terms(create_model("simple_cnn"), data, setup) == {}  # logits only: no terms
    from fer_core.augment import STD
    assert psnr(0.01 / STD ** 2) == pytest.approx(20.0)  # pixel MSE 0.01 -> 20 dB


# -- precision and checkpoints on this CPU ---------------------------------------------------
def test_cpu_defaults_follow_the_bf16_matrix_units(tiny_cfg, monkeypatch):
    import fer_core.engine as engine
    from fer_core.models import REGISTRY

    monkeypatch.setattr(engine, "cpu_bf16_units", lambda: ["amx_bf16"])
    fast = Setup.of(tiny_cfg())
    assert fast.amp and fast.channels_last and fast.fused
    assert not Setup.of(tiny_cfg("train.amp=false", "train.channels_last=false")).amp
    monkeypatch.setattr(engine, "cpu_bf16_units", lambda: [])
    plain = Setup.of(tiny_cfg())
    assert not plain.amp and not plain.channels_last and plain.fused
    monkeypatch.setattr(engine, "cpu_bf16_units", lambda: ["amx_bf16"])
    name = tiny_cfg().model.name
    monkeypatch.setitem(REGISTRY, name, REGISTRY[name].__class__(**{**REGISTRY[name].__dict__, "bf16": False}))
    assert not Setup.of(tiny_cfg()).amp  # a model the registry keeps in float32


def test_fused_optimizers_where_torch_offers_them(tiny_cfg):
    model = torch.nn.Linear(3, 2)
    for name in ("adam", "adamw", "sgd"):
        assert build_optimizer(tiny_cfg(f"train.optimizer.name={name}"), model, fused=True).defaults["fused"]
    assert not build_optimizer(tiny_cfg("train.optimizer.name=adam"), model).defaults.get("fused")
    build_optimizer(tiny_cfg("train.optimizer.name=radam"), model, fused=True)  # none offered: the plain one


def test_a_resumed_run_keeps_the_precision_it_started_with(tiny_cfg, monkeypatch):
    import fer_core.checkpoints as checkpoints
    import fer_core.engine as engine

    monkeypatch.setattr(engine, "cpu_bf16_units", lambda: ["amx_bf16"])
    cfg = tiny_cfg("run=prec", "train.epochs=2")
    assert train(cfg, stop_after=1) is None
    monkeypatch.setattr(engine, "cpu_bf16_units", lambda: [])  # the defaults change under the run
    rec = train(cfg, resume=True)
    assert rec.provenance["precision"]["autocast"] == "bfloat16" and rec.provenance["precision"]["channels_last"]
    from fer_core.hardware import cpu_bf16_units

    assert rec.provenance["cpu_bf16_units"] == cpu_bf16_units() and rec.provenance["cpu"]  # the machine's own
    # a checkpoint of the engine before precision was recorded: its defaults then (float32 on the CPU)
    old = tiny_cfg("run=legacy", "train.epochs=2")
    assert train(old, stop_after=1) is None
    last = RunPaths.of(old).checkpoints / checkpoints.LAST
    ckpt = torch.load(last, weights_only=True)
    del ckpt["precision"]
    torch.save(ckpt, last)
    monkeypatch.setattr(engine, "cpu_bf16_units", lambda: ["amx_bf16"])
    legacy = train(old, resume=True)
    assert legacy.provenance["precision"]["autocast"] is None and not legacy.provenance["precision"]["fused_optimizer"]


def test_checkpoints_by_elapsed_time_resume_exactly(tiny_cfg, monkeypatch):
    """With a long ``checkpoint_every``, last.pt is written after the first epoch and at the end
    only; a run killed in between resumes from epoch 1 and ends where a straight run does."""
    import fer_core.checkpoints as checkpoints
    import fer_core.engine as engine

    written = []
    save = checkpoints.save
    monkeypatch.setattr(checkpoints, "save", lambda obj, path, **kw: (written.append((path.name, obj.get("epoch",
                        obj.get("state", {}).get("epoch")))), save(obj, path, **kw)))
    args = ("train.epochs=4", "train.checkpoint_every=1h", "model.kwargs.dropout=0.5", "eval.tta=[]")
    straight = train(tiny_cfg("run=straight", *args))
    assert [w for w in written if w[0] == "last.pt"] == [("last.pt", 1), ("last.pt", 4)]
    validate, calls = engine._validate, []

    def killed_in_epoch_3(*a):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt  # the process dies after two epochs, one of them checkpointed
        return validate(*a)
    monkeypatch.setattr(engine, "_validate", killed_in_epoch_3)
    cfg = tiny_cfg("run=killed", *args)
    with pytest.raises(KeyboardInterrupt):
        train(cfg)
    assert torch.load(RunPaths.of(cfg).checkpoints / checkpoints.LAST, weights_only=True)["state"]["epoch"] == 1
    monkeypatch.setattr(engine, "_validate", validate)
    resumed = train(cfg, resume=True)
    pd.testing.assert_frame_equal(_seeded(straight.history), _seeded(resumed.history))
    assert np.array_equal(straight.probs, resumed.probs)
