"""The run layer (fer_core.runs.runner): records of finished runs, never overwritten, re-evaluated; resumes
that keep the precision they started with."""
import json

import numpy as np
import pytest
import torch

from fer_core.cli import main as cli
from fer_core.runs.records import RunExistsError, RunPaths
from fer_core.runs.runner import evaluate_run, run, train
from fer_core.train.evaluate import TTA, predict


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
                     "attention.npz", "manifest.json"}
    from fer_core.runs.records import verify
    assert verify(record.path) == []  # sealed: every file as its manifest says
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
    again = evaluate_run(record.path)  # the model as it was tested: its memory format and kernels too
    assert again["cross_entropy"] == record.metrics["cross_entropy"]  # the same arithmetic, to the last bit
    assert again["confusion_matrix"] == record.metrics["confusion_matrix"]
    for mode in ("tencrop", "random_views"):
        tta = evaluate_run(record.path, tta=mode)
        assert tta["accuracy"] == pytest.approx(record.metrics["tta"][mode]["accuracy"])
        assert (record.predictions[f"pred_tta_{mode}"] >= 0).all()
    assert cli(["evaluate", str(record.path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["confusion_matrix"] == record.metrics["confusion_matrix"]


def test_random_views_are_seeded_and_do_not_depend_on_the_batch_size(finished):
    from fer_core.runs.runner import restore

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
    kept = list((first.path.parent.parent / "superseded" / "replaced" / first.path.parent.name).glob("ow.replaced-*"))
    assert second.path == first.path and len(kept) == 1 and (kept[0] / "metrics.json").is_file()

def test_train_command(tiny_cfg, tmp_path, capsys):
    args = ["train", "--params", "params/test.yaml", "--set", "data.source=synthetic", "--set", "train.epochs=1",
            "--set", "train.progress=false", "--set", f"output.results_dir={tmp_path / 'r'}",
            "--set", f"output.checkpoint_dir={tmp_path / 'c'}", "--set", "train.device=cpu"]
    assert cli(args) == 0
    out = capsys.readouterr().out
    assert "test accuracy" in out and "synthetic data" in out
    assert cli(args) == 2 and "already finished" in capsys.readouterr().err

def test_a_resumed_run_keeps_the_precision_it_started_with(tiny_cfg, monkeypatch):
    import fer_core.train.build as build
    import fer_core.train.checkpoints as checkpoints

    monkeypatch.setattr(build, "cpu_bf16_units", lambda: ["amx_bf16"])
    cfg = tiny_cfg("run=prec", "train.epochs=2")
    assert train(cfg, stop_after=1) is None
    monkeypatch.setattr(build, "cpu_bf16_units", lambda: [])  # the defaults change under the run
    rec = train(cfg, resume=True)
    assert rec.provenance["precision"]["autocast"] == "bfloat16" and rec.provenance["precision"]["channels_last"]
    from fer_core.train.hardware import cpu_bf16_units

    assert rec.provenance["cpu_bf16_units"] == cpu_bf16_units() and rec.provenance["cpu"]  # the machine's own
    # a checkpoint of the engine before precision was recorded: its defaults then (float32 on the CPU)
    old = tiny_cfg("run=legacy", "train.epochs=2")
    assert train(old, stop_after=1) is None
    last = RunPaths.of(old).checkpoints / checkpoints.LAST
    ckpt = torch.load(last, weights_only=True)
    del ckpt["precision"]
    torch.save(ckpt, last)
    monkeypatch.setattr(build, "cpu_bf16_units", lambda: ["amx_bf16"])
    legacy = train(old, resume=True)
    assert legacy.provenance["precision"]["autocast"] is None and not legacy.provenance["precision"]["fused_optimizer"]
