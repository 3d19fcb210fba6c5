"""Attention maps: every method points at the pixels a model reads, changes when the model is
randomised, and is kept with the run (attention.npz) so a record without its checkpoint still
shows it."""
import numpy as np
import pytest
import torch
from torch import nn

from fer_core.data import load
from fer_core.explain import attention, attribution
from fer_core.explain.attribution import METHODS
from fer_core.models import REGISTRY, create_model
from fer_core.train.build import Setup

REGION = (slice(12, 24), slice(8, 40))  # a band across the eyes


class Band(nn.Module):
    def __init__(self):
        super().__init__()
        band = torch.zeros(1, 1, 48, 48)
        band[..., REGION[0], REGION[1]] = 1
        self.register_buffer("band", band)

    def forward(self, h):
        return h * self.band


class ReadsRegion(nn.Module):
    """A toy model whose evidence is known: features of a fixed smoothing conv kept inside one band
    of the face only, then the logit of class c is w_c times their mean (class 0 weighs most)."""

    def __init__(self):
        super().__init__()
        conv = nn.Conv2d(1, 2, 3, padding=1, bias=False)
        with torch.no_grad():
            conv.weight.fill_(1 / 9)
            conv.weight[1].mul_(-1)
        self.features = nn.Sequential(conv, nn.ReLU(), Band())
        self.w = nn.Parameter(torch.linspace(4, -2, 7))

    def forward(self, x):
        h = self.features(x)[:, :1]
        return h.mean((1, 2, 3))[:, None] * self.w[None]


@pytest.fixture(scope="module")
def faces():
    test = load("synthetic", synthetic_size=(7, 7, 24)).select("test")
    return torch.from_numpy(test.images[:12]).float().div(255).unsqueeze(1)


def test_every_method_puts_its_mass_on_the_region_the_model_reads(faces):
    setup = Setup(torch.device("cpu"), 48, 1, False, False)
    target = torch.zeros(len(faces), dtype=torch.long)
    maps = attribution.explain_batch(ReadsRegion(), None, setup, faces, target, ig_steps=8, layer="features")
    inside = np.zeros((48, 48), bool)
    inside[REGION] = True
    for method, m in maps.items():
        assert m.shape == (12, 48, 48) and np.isfinite(m).all() and m.max() <= 1 + 1e-6, method
        share = (m * inside).sum((1, 2)) / m.sum((1, 2))
        # the band is 17% of the face; the 3x3 conv spills a pixel over its border, occlusion's 8x8 patches more
        assert (share > (0.6 if method == "occlusion" else 0.85)).all(), (method, share.round(2))
        peaks = m.reshape(12, -1).argmax(1)
        assert inside.ravel()[peaks].all(), method  # the pointing game: every peak in the band


def test_randomising_a_trained_model_changes_its_saliency_maps(faces):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 8, 5, padding=2), nn.ReLU(), nn.Conv2d(8, 8, 5, padding=2), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(128, 7))
    target = torch.zeros(len(faces), dtype=torch.long)
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    for _ in range(30):  # learn to call the band's brightness class 0 and its darkness class 1
        x = torch.rand(32, 1, 48, 48)
        y = (x[..., REGION[0], REGION[1]].mean((1, 2, 3)) < 0.5).long()
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    setup = Setup(torch.device("cpu"), 48, 1, False, False)
    trained = attribution.explain_batch(model, None, setup, faces, target, ["saliency"])["saliency"]
    noise = attribution.explain_batch(attribution.randomised(model, 1.0), None, setup, faces, target,
                                      ["saliency"])["saliency"]
    assert attribution.rank_correlation(trained, trained).mean() == pytest.approx(1.0)
    assert attribution.rank_correlation(trained, noise).mean() < 0.5


SMALL = {"inception_v3": 80, "inception_v4": 80, "xception": 80, "googlenet": 64, "efficientnet_b2b": 64}
KWARGS = {"stn_sr": {"sr_blocks": 2, "sr_feats": 16}}


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in sorted(REGISTRY) if REGISTRY[n].cam_layer is not None])
def test_every_method_runs_on_every_registered_model(name, faces):
    torch.manual_seed(0)
    size = SMALL.get(name, 48 if REGISTRY[name].input_size <= 48 else 32)
    model = create_model(name, input_size=size, **KWARGS.get(name, {})).eval()
    setup = Setup(torch.device("cpu"), size, REGISTRY[name].in_channels, False, False)
    x = faces[:2]
    target = attribution.OnFaces(model, size, setup.in_channels)(x).argmax(1)
    maps = attribution.explain_batch(model, name, setup, x, target, ig_steps=2)
    assert set(maps) == set(METHODS)
    for method, m in maps.items():
        assert m.shape == (2, 48, 48) and np.isfinite(m).all() and 0 <= m.min() and m.max() <= 1 + 1e-6, method


def test_the_models_own_evidence_is_read():
    setup = Setup(torch.device("cpu"), 64, 3, False, False)
    x = torch.rand(2, 1, 48, 48)
    masks = attribution.internals(create_model("resmaskingnet", input_size=64), setup, x)
    assert sorted(masks) == ["mask1", "mask2", "mask3", "mask4"] and masks["mask1"].shape == (2, 16, 16)
    rec = attribution.internals(create_model("rmrn18", input_size=64), setup, x)
    assert rec["reconstruction"].shape == (2, 48, 48) and "mask4" in rec
    qin = attribution.internals(create_model("stn_sr", sr_blocks=1, sr_feats=8),
                                Setup(torch.device("cpu"), 48, 1, False, False), x)
    assert qin["aligned"].shape == (2, 48, 48) and qin["super_resolved"].shape == (2, 96, 96)
    assert 0 <= qin["aligned"].min() and qin["aligned"].max() <= 1


def test_the_sample_is_spread_over_the_classes_and_fixed():
    test = load("synthetic", synthetic_size=(7, 7, 70)).select("test")
    ids = attention.sample(test, 14)
    assert len(ids) == 14 and (attention.sample(test, 14) == ids).all()
    assert np.bincount(test.targets[ids], minlength=7).tolist() == [2] * 7


def test_the_attention_record_round_trips_and_a_chapter_shows_it_without_the_checkpoint(tiny_cfg, capsys):
    from fer_core.book.chapter import Chapter
    from fer_core.runs import ledger
    from fer_core.runs.records import RunPaths
    from fer_core.runs.runner import train
    from fer_core.schedule.plans import read_plan

    cfg = tiny_cfg("eval.attention=8", "eval.attention_steps=2", "eval.attention_sanity=true", "eval.tta=[]",
                   "data.synthetic_size=[70, 35, 35]",
                   "data.subset=null", "train.epochs=1", "tags.paper=pham", "tags.variant=resnet34")
    record = train(cfg)
    att = attention.Attention.read(record.path)
    assert att.path.stat().st_size < 400_000
    assert len(att.arrays["ids"]) == 8 and "images" not in att.arrays  # faces are data: never stored
    assert set(att.methods) == set(METHODS) and "truth" in att.arrays and "sanity_saliency" in att.arrays
    # one source for the predicted class: the test pass's (predictions.csv), whatever precision it ran in
    assert (att.arrays["preds"] == record.predictions["pred"].to_numpy()[att.arrays["ids"]]).all()
    table = attention.scores(att)
    assert {"pointing game", "deletion AUC (lower is better)", "sanity check"} <= set(table.columns)
    assert "random" in table.index
    for f in RunPaths.of(cfg).checkpoints.glob("*.pt"):
        f.unlink()  # as a record committed without its checkpoint
    runs = ledger.read_ledger(cfg.output.results_dir)
    ch = Chapter("pham", "test", read_plan("pham"), runs.assign(profile="paper", dataset="fer2013"), None)
    ch.attention("resnet34")
    out = capsys.readouterr().out
    assert "8 test faces" in out and "no attention record" not in out


def test_the_maps_explain_the_class_the_test_pass_predicted():
    test = load("synthetic", synthetic_size=(10, 10, 40)).select("test")
    torch.manual_seed(0)
    model = create_model("simple_cnn", num_classes=test.num_classes).eval()
    setup = Setup(torch.device("cpu"), 48, 1, False, False)
    given = np.eye(test.num_classes, dtype=np.float32)[(test.targets + 3) % test.num_classes]  # not the model's
    arrays = attention.compute(model, "simple_cnn", setup, test, n=6, ig_steps=2, sanity=False, probs=given)
    assert (arrays["preds"] == given.argmax(1)[arrays["ids"]]).all()
    assert np.allclose(arrays["probs"], given[arrays["ids"]])


def test_the_batched_curves_are_the_step_by_step_definition(faces):
    """Deletion/insertion scored together (shared ends, big batches) equal one pass per step."""
    torch.manual_seed(0)
    model = create_model("simple_cnn").eval()
    fn = attribution.OnFaces(model, 48, 1)
    x, target = faces[:5], torch.tensor([0, 1, 2, 3, 4])
    maps = np.random.default_rng(0).random((5, 48, 48))
    deletion, insertion = attention.perturbation_curves(fn, x, target, maps, steps=4)
    order = np.argsort(-maps.reshape(5, -1), axis=1, kind="stable")
    grey = x.mean(dim=(1, 2, 3), keepdim=True).expand_as(x)
    with torch.no_grad():
        for k in range(5):
            top = torch.zeros(5, 48 * 48, dtype=torch.bool)
            top.scatter_(1, torch.from_numpy(order[:, :round(k / 4 * 48 * 48)]), True)
            top = top.reshape(5, 1, 48, 48)
            for curve, face in ((deletion, torch.where(top, grey, x)), (insertion, torch.where(top, x, grey))):
                p = torch.softmax(fn(face), 1).gather(1, target[:, None])[:, 0].numpy()
                assert np.allclose(curve[:, k], p, atol=1e-6), k


def test_the_maps_run_in_the_precision_the_model_was_tested_in(faces):
    """With a bf16 setup, the explained function runs under autocast (the test pass's precision)."""
    seen = []

    class Spy(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = create_model("simple_cnn").eval()

        def forward(self, x):
            seen.append(torch.is_autocast_enabled(x.device.type))
            return self.net(x)

    setup = Setup(torch.device("cpu"), 48, 1, True, True)
    attribution.OnFaces.of(Spy(), setup)(faces[:2])
    attribution.OnFaces(Spy(), 48, 1)(faces[:2])
    assert seen == [True, False]
