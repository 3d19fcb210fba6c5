import pandas as pd
import pytest
import torch

from fer_core.book.chapter import Chapter
from fer_core.config import ConfigError
from fer_core.models import REGISTRY
from fer_core.runs import ledger
from fer_core.schedule.plans import PAPERS_DIR, checkpoint_of, config_for, read_plan
from fer_core.schedule.slices import Slice, execute


# -- plans --------------------------------------------------------------------------------------
@pytest.mark.parametrize("paper", sorted(p.stem for p in PAPERS_DIR.glob("*.yaml")))
def test_every_plan_builds_a_valid_config_for_every_row_and_profile(paper):
    plan = read_plan(paper)
    for variant in plan.variants():
        assert plan.row(variant)["model"] in REGISTRY
        for profile in ("paper", "smoke", "test"):
            cfg = config_for(plan, variant, profile, data_dir="/data")
            assert cfg.model.name == plan.row(variant)["model"] and cfg.experiment == plan.paper
    for profile, entry in plan.profiles.items():
        assert set(entry["rows"]) <= set(plan.variants())


def test_paper_profile_uses_the_recipe_and_cpu_profiles_cut_it():
    plan = read_plan("pham")
    paper = config_for(plan, "resmaskingnet", "paper", data_dir="/data")
    assert (paper.data.source, paper.model.input_size, paper.train.epochs) == ("fer2013", 224, 50)
    o = paper.train.optimizer
    assert (o.name, o.lr, o.weight_decay, o.decoupled_weight_decay) == ("radam", 1e-4, 1e-3, True)
    assert paper.augment.crop == "none" and paper.augment.rotation == 30 and paper.train.batch_size == 48
    assert paper.eval.tta == ["random_views", "tencrop"] and paper.eval.tta_views == 10
    assert paper.output.results_dir == "results"
    smoke = config_for(plan, "resmaskingnet", "smoke")
    assert smoke.data.source == "synthetic"  # no data configured
    assert smoke.train.optimizer.name == "radam" and smoke.train.epochs < paper.train.epochs
    assert smoke.output.results_dir.startswith("build/")
    assert config_for(plan, "inception_v3", "paper", data_dir="/d").model.input_size == 224  # as the authors
    du = config_for(read_plan("du"), "improved_resnet50", "paper", data_dir="/d")
    assert (du.train.epochs, du.train.optimizer.name, du.train.optimizer.eps, du.train.early_stopping) == \
        (30, "adam", 1e-8, None)
    qin = config_for(read_plan("qin"), "base-fer2013", "paper", data_dir="/d")
    assert (qin.train.batch_size, qin.train.optimizer.lr) == (16, 1e-4)


PLAN_ERRORS = [
    ("rows:\n  - {model: resnet18, colour: red}\n", r"rows\[0\] has unknown key\(s\) \['colour'\]"),
    ("rows:\n  - {model: resnet18}\nprofiles: {smoke: {rows: [vgg]}}\n",
     r"profiles\.smoke names unknown row\(s\) \['vgg'\]"),
    ("rows:\n  - {model: resnet18}\nprofiles: {smoke: {rows: [resnet18], folds: [0, 12]}}\n",
     r"profiles\.smoke\.folds must list folds in 0\.\.9"),
    ("rows:\n  - {model: resnet18}\nsettings: {train.epochs: {value: 3}}\n",
     r"settings\.train\.epochs must be \{source: \.\.\.\}"),
    ("rows:\n  - {model: stn_sr, sr_from: edsr}\n", r"sr_from 'edsr', which is not a row"),
]


@pytest.mark.parametrize(("text", "message"), PLAN_ERRORS)
def test_plan_errors_name_the_problem(tmp_path, monkeypatch, text, message):
    monkeypatch.setattr("fer_core.schedule.plans.PAPERS_DIR", tmp_path)
    (tmp_path / "x.yaml").write_text(text)
    with pytest.raises(ConfigError, match=message):
        read_plan("x")


def test_a_missing_plan_is_named(tmp_path, monkeypatch):
    monkeypatch.setattr("fer_core.schedule.plans.PAPERS_DIR", tmp_path)
    with pytest.raises(FileNotFoundError, match="No plan for paper 'nope'"):
        read_plan("nope")


def test_ckplus_rows_are_cross_validated_and_fer_rows_are_not():
    plan = read_plan("yu")
    assert plan.folds("xception_separable", "paper") == list(range(10))
    assert plan.folds("xception_separable", "smoke") == [0]
    assert plan.folds("xception_separable", "smoke", [3]) == [3]
    assert plan.folds("xception_separable-fer2013", "paper") == [None]
    real = config_for(plan, "xception_separable", "paper", data_dir="/d", fold=4)
    assert (real.data.source, real.data.fold, real.data.cv) == ("ckplus", 4, True) and "-fold4-" in real.run_name
    stand_in = config_for(plan, "xception_separable", "smoke", fold=1)  # no data: the synthetic set, in folds
    assert (stand_in.data.source, stand_in.data.cv, stand_in.data.fold) == ("synthetic", True, 1)
    with pytest.raises(ValueError, match="fixed splits; it has no folds"):
        config_for(plan, "xception_separable-fer2013", "paper", data_dir="/d", fold=0)
    digits = config_for(read_plan("qin"), "digits-cnn", "smoke")  # bundled: never replaced by synthetic
    assert digits.data.source == "digits"


def test_quick_kwargs_reach_rows_without_kwargs_of_their_own():
    plan = read_plan("qin")
    edsr = config_for(plan, "edsr-l1", "smoke")
    assert edsr.model.kwargs == {"sr_blocks": 4, "sr_feats": 32} and edsr.loss.weights == {"sr_l1": 1.0}
    full = config_for(plan, "stn_sr-ckplus", "paper", data_dir="/d", fold=0)
    assert {k: v for k, v in full.model.kwargs.items() if k != "sr_weights"} == {"stn": True, "sr": "edsr"}


def test_cross_validation_end_to_end_on_the_synthetic_stand_in(tmp_path, run_sets):
    sets = [*run_sets, "model.input_size=32"]
    results = execute(Slice("yu", "test", folds=[0, 1], overrides=sets))
    assert results["fold"].tolist() == [0, 1] and (results["dataset"] == "synthetic").all()
    assert ledger.read_ledger(tmp_path / "r")["fold"].tolist() == [0, 1]
    ch = Chapter("yu", "test", read_plan("yu"), pd.DataFrame(columns=ledger.COLUMNS), results)
    pooled = ch.pooled_metrics("xception_separable")
    assert pooled["n"] == sum(ledger.record_at(p).metrics["n"] for p in results["record"])
    table = ch.results({"accuracy (%)": "accuracy"})
    acc = results["accuracy"] * 100
    half = 12.706205 * acc.std() / 2 ** 0.5  # the 95% interval of the mean over two folds: t with 1 df
    assert table.loc["xception_separable", "accuracy (%)"] == (
        f"{acc.mean():.2f} ± {half:.2f} (95%, 1 seed × 2 folds, t1), partial: seed 0: 2 of 10 folds")
    assert table.loc["xception", "accuracy (%)"] == "not run" and table.loc["xception", "in the paper"] == "yes"
    assert table.loc["xception-fer2013", "in the paper"].startswith("no: this book's")
    # a pipeline check never gives a verdict: not tested, or not comparable whatever the runs
    assert ch.verdicts()["verdict"].isin(["– not tested", "≠ not comparable"]).all()


# -- runs, ledger and the claims table ----------------------------------------------------------
@pytest.fixture(scope="module")
def pham_test_run(tmp_path_factory, settings_for):
    tmp = tmp_path_factory.mktemp("pham")
    sets = [*settings_for(tmp), "data.synthetic_size=[140, 70, 70]", "data.subset=null", "eval.tta=[]"]
    return tmp, sets, execute(Slice("pham", "test", overrides=sets))


def test_a_paper_slice_appends_the_ledger_and_reuses(pham_test_run):
    tmp, sets, first = pham_test_run
    assert list(first["variant"]) == read_plan("pham").profiles["test"]["rows"]
    book = ledger.read_ledger(tmp / "r")
    assert len(book) == len(first) and (book["dataset"] == "synthetic").all()
    assert book["config_hash"].str.len().eq(16).all() and book["data_fingerprint"].str.startswith("synthetic").all()
    again = execute(Slice("pham", "test", overrides=sets))  # same config and data: read back, not retrained
    assert again["record"].tolist() == first["record"].tolist()
    assert again["wall_time_s"].tolist() == first["wall_time_s"].tolist()
    assert len(ledger.read_ledger(tmp / "r")) == len(first)  # no duplicate rows


def test_a_changed_recipe_gets_its_own_run_name():
    plan = read_plan("pham")
    a = config_for(plan, "resnet34", "smoke")
    b = config_for(plan, "resnet34", "smoke", overrides=["train.epochs=3"])
    assert a.run_name != b.run_name and a.run_name.startswith("resnet34-synthetic-s0-")
    assert config_for(plan, "resnet34", "smoke").run_name == a.run_name  # deterministic


def test_row_selection_by_profile_or_by_name():
    plan = read_plan("pham")
    assert plan.selected("paper") == plan.variants()
    assert plan.selected("smoke") == ["resmaskingnet"]
    assert plan.selected("smoke", ["vgg19"]) == ["vgg19"]  # an explicit list wins over the profile's
    with pytest.raises(KeyError, match=r"no row\(s\) \['vgg16'\]"):
        plan.selected("smoke", ["vgg16"])


def test_the_stn_check_runs_on_digits_and_exposes_the_aligned_images(run_sets):
    from fer_core.runs.runner import restore
    from fer_core.train.evaluate import outputs

    sets = [*run_sets, "train.epochs=1"]
    (row,) = execute(Slice("qin", "test", rows=["digits-stn-cnn"], overrides=sets)).to_dict("records")
    assert row["dataset"] == "digits" and row["model"] == "stn_sr"
    model, setup, data, _ = restore(ledger.record_at(row["record"]))
    assert data.num_classes == 10
    out = outputs(model, setup, data.select("test").take(slice(0, 4)))
    assert out["aligned"].shape == (4, 1, 48, 48) and out["logits"].shape == (4, 10)


def test_sr_rows_load_the_sr_net_trained_alone_and_keep_it_frozen(tmp_path, run_sets):
    from fer_core.runs.runner import restore

    sets = [*run_sets, "data.synthetic_size=[120, 40, 40]", "data.subset=null"]
    plan = read_plan("qin")
    cfg = config_for(plan, "sr-fer2013", "test", overrides=sets)
    sr_cfg = config_for(plan, "edsr-l1", "test", overrides=sets)
    assert cfg.model.kwargs["sr_weights"] == checkpoint_of(sr_cfg) and cfg.model.kwargs["sr"] == "edsr"
    results = execute(Slice("qin", "test", rows=["sr-fer2013"], overrides=sets))  # runs edsr-l1 first
    assert set(ledger.read_ledger(tmp_path / "r")["variant"]) == {"edsr-l1", "sr-fer2013"}
    sr_state = torch.load(tmp_path / "c" / "qin" / sr_cfg.run_name / "best.pt", weights_only=True)["model"]
    assert results["variant"].tolist() == ["edsr-l1", "sr-fer2013"]  # the SR net's row comes first
    model, *_ = restore(ledger.record_at(results["record"].iloc[1]))
    for name, value in model.sr.state_dict().items():  # trained, yet still the SR net's own weights
        assert torch.equal(value, sr_state[f"sr.{name}"]), name
    assert not any(p.requires_grad for p in model.sr.parameters())
    bicubic = config_for(plan, "bicubic-fer2013", "paper", data_dir="/d")
    assert bicubic.model.kwargs == {"stn": False, "sr": "bicubic"}


def test_a_chapters_epochs_and_results_dir_reach_every_run():
    from fer_core.schedule.plans import notebook_settings

    sets = notebook_settings(["seed=3"], device="cpu", progress=False, epochs=5, results_dir="/tmp/elsewhere")
    cfg = config_for(read_plan("du"), "improved_resnet50", "smoke", overrides=sets)
    assert (cfg.train.epochs, cfg.output.results_dir, cfg.train.device, cfg.train.progress, cfg.seed) == \
        (5, "/tmp/elsewhere", "cpu", False, 3)
    assert config_for(read_plan("du"), "improved_resnet50", "smoke",
                      overrides=notebook_settings()).train.epochs == 2  # None: the profile's
