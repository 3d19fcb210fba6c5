"""Set-up from a config (fer_core.train.build): optimisers, schedules, precision defaults, a fold's data."""

import pytest
import torch
from fer_core.runs.runner import train

from fer_core.train.build import Setup, build_optimizer, build_scheduler, load_data


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

# -- precision and checkpoints on this CPU ---------------------------------------------------
def test_cpu_defaults_follow_the_bf16_matrix_units(tiny_cfg, monkeypatch):
    import fer_core.train.build as build
    from fer_core.models import REGISTRY

    monkeypatch.setattr(build, "cpu_bf16_units", lambda: ["amx_bf16"])
    fast = Setup.of(tiny_cfg())
    assert fast.amp and fast.channels_last and fast.fused
    assert not Setup.of(tiny_cfg("train.amp=false", "train.channels_last=false")).amp
    monkeypatch.setattr(build, "cpu_bf16_units", lambda: [])
    plain = Setup.of(tiny_cfg())
    assert not plain.amp and not plain.channels_last and plain.fused
    monkeypatch.setattr(build, "cpu_bf16_units", lambda: ["amx_bf16"])
    name = tiny_cfg().model.name
    monkeypatch.setitem(REGISTRY, name, REGISTRY[name].__class__(**{**REGISTRY[name].__dict__, "bf16": False}))
    assert not Setup.of(tiny_cfg()).amp  # a model the registry keeps in float32


def test_fused_optimizers_where_torch_offers_them(tiny_cfg):
    model = torch.nn.Linear(3, 2)
    for name in ("adam", "adamw", "sgd"):
        assert build_optimizer(tiny_cfg(f"train.optimizer.name={name}"), model, fused=True).defaults["fused"]
    assert not build_optimizer(tiny_cfg("train.optimizer.name=adam"), model).defaults.get("fused")
    build_optimizer(tiny_cfg("train.optimizer.name=radam"), model, fused=True)  # none offered: the plain one
