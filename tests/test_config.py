from pathlib import Path

import pytest

from fer_core.config import Config, ConfigError, load_config, parse_override
from fer_core.paths import ROOT


@pytest.mark.parametrize("profile", sorted(p.name for p in (ROOT / "params").glob("*.yaml")))
def test_every_profile_validates(profile):
    cfg = load_config(ROOT / "params" / profile)
    assert isinstance(cfg, Config)


def test_base_chain_and_overrides_merge(tmp_path):
    (tmp_path / "a.yaml").write_text("seed: 1\ntrain: {epochs: 5, optimizer: {name: adam, lr: 0.1}}\n")
    (tmp_path / "b.yaml").write_text("base: a.yaml\ntrain: {optimizer: {lr: 1e-3}}\n")
    cfg = load_config(tmp_path / "b.yaml", ["train.batch_size=32", "augment.rotation=15"], seed=7)
    assert (cfg.seed, cfg.train.epochs, cfg.train.optimizer.name) == (7, 5, "adam")
    assert cfg.train.optimizer.lr == pytest.approx(1e-3) and isinstance(cfg.train.optimizer.lr, float)
    assert cfg.train.batch_size == 32 and cfg.augment.rotation == 15.0


def test_override_values_are_yaml():
    assert parse_override("a.b=1e-4") == {"a": {"b": 1e-4}}
    assert parse_override("x=[1, 2]") == {"x": [1, 2]}
    assert parse_override("flag=false") == {"flag": False}
    with pytest.raises(ConfigError, match="key.sub=value"):
        parse_override("novalue")


@pytest.mark.parametrize("override, message", [
    ("train.optimzer.lr=0.1", r"train\.optimzer: unknown key \(known here: .*optimizer"),
    ("trian.epochs=3", r"trian: unknown key"),
    ("train.epochs=ten", r"train\.epochs: Input should be a valid integer \(got 'ten'\)"),
    ("train.epochs=2.5", r"train\.epochs: Input should be a valid integer"),
    ("train.epochs=0", r"train\.epochs: Input should be greater than or equal to 1"),
    ("data.source=affectnet", r"data\.source: Input should be 'auto'"),
    ("train.amp=yes-please", r"train\.amp"),
    ("augment.crop_scale=[0.9, 0.5]", r"crop_scale must be \[lo, hi\]"),
    ("run=.", r"run: Value error, '\.' is not a name"),
    ("experiment=..", r"experiment: Value error, '\.\.' is not a name"),
])
def test_bad_values_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


def test_errors_name_the_file(tmp_path):
    f = tmp_path / "mine.yaml"
    f.write_text("train:\n  epoch: 3\n")
    with pytest.raises(ConfigError, match=r"  train\.epoch: unknown key .*\(in .*mine\.yaml\)"):
        load_config(f)
    with pytest.raises(ConfigError, match=r"nothere\.yaml does not exist"):
        load_config(tmp_path / "nothere.yaml")
    (tmp_path / "loop.yaml").write_text("base: loop.yaml\n")
    with pytest.raises(ConfigError, match="loops back"):
        load_config(tmp_path / "loop.yaml")


def test_a_config_names_its_run_from_its_settings_alone(tmp_path, monkeypatch):
    monkeypatch.setenv("FER_DATA_DIR", str(tmp_path / "nothing here"))  # a config reads no disk, so no error
    assert load_config(None, ["data.source=synthetic"]).run_name == "simple_cnn-synthetic-s0"
    assert load_config(None).run_name == "simple_cnn-auto-s0"  # what 'auto' becomes is the run layer's to say
    assert load_config(None, ["run=mine"]).run_name == "mine"
    assert isinstance(Path(load_config(None).output.results_dir), Path)


def test_the_run_layer_names_an_unnamed_run_after_the_source_it_resolves_to(tmp_path, monkeypatch):
    from fer_core.data import DataError
    from fer_core.runs.records import RunPaths, run_name
    monkeypatch.delenv("FER_DATA_DIR", raising=False)
    assert run_name(load_config(None)) == "simple_cnn-synthetic-s0"  # auto without data -> the synthetic set
    assert RunPaths.of(load_config(None)).name == "simple_cnn-synthetic-s0"
    assert run_name(load_config(None, ["run=mine", "data.source=ckplus"])) == "mine"  # named: nothing resolved
    monkeypatch.setenv("FER_DATA_DIR", str(tmp_path))
    with pytest.raises(DataError, match=f"found no FER2013 in {tmp_path}"):
        run_name(load_config(None))


def test_an_empty_mapping_replaces_instead_of_merging(tmp_path):
    (tmp_path / "a.yaml").write_text("model: {kwargs: {width: 8}}\n")
    assert load_config(tmp_path / "a.yaml", ["model.kwargs.dropout=0.1"]).model.kwargs == {"width": 8, "dropout": 0.1}
    assert load_config(tmp_path / "a.yaml", ["model.kwargs={}"]).model.kwargs == {}
