"""Convolutions on small maps as one matrix multiply (fer_core.train.kernels): the convolution's own
arithmetic, the same parameters, swapped in only where a CPU trains in bf16."""
import pytest
import torch
from torch import nn

from fer_core.models import create_model
from fer_core.train import kernels
from fer_core.train.build import Setup


@pytest.mark.parametrize("cin, cout, k, stride, padding, bias, hw", [
    (8, 16, 3, 1, 1, False, 2), (8, 16, 3, 2, 1, True, 3), (8, 4, 1, 1, 0, False, 2), (3, 5, 3, 1, 0, True, 5),
    (4, 6, (1, 3), 1, (0, 1), False, 3),
])
def test_the_matrix_multiply_is_the_convolution(cin, cout, k, stride, padding, bias, hw):
    torch.manual_seed(0)
    conv = nn.Conv2d(cin, cout, k, stride, padding, bias=bias).double()
    mm = kernels.PatchMatmulConv2d(cin, cout, k, stride, padding, bias=bias).double()
    mm.load_state_dict(conv.state_dict())
    x = torch.randn(4, cin, hw, hw, dtype=torch.float64, requires_grad=True)
    x2 = x.detach().clone().requires_grad_()
    y, y2 = conv(x), mm(x2)
    assert y.shape == y2.shape
    torch.testing.assert_close(y2, y)
    g = torch.randn_like(y)
    y.backward(g)
    y2.backward(g)
    torch.testing.assert_close(x2.grad, x.grad)
    torch.testing.assert_close(mm.weight.grad, conv.weight.grad)
    if bias:
        torch.testing.assert_close(mm.bias.grad, conv.bias.grad)
    with torch.no_grad():  # a pass without gradients is the plain convolution
        torch.testing.assert_close(mm(x2), conv(x))


def test_resnet18_at_48_swaps_its_last_stages_and_keeps_its_weights_statistics_and_outputs():
    torch.manual_seed(0)
    model = create_model("resnet18", num_classes=7, input_size=48).to(memory_format=torch.channels_last)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(3, 3, 48, 48)  # the registry builds it for three channels
    model.eval()
    expected = model(x)
    model.train()
    rng = torch.get_rng_state()
    names = kernels.matmul_small_maps(model, 48, 3)
    # 48 -> 24 (stem) -> 12 (pool, layer1) -> 6 (layer2) -> 3 (layer3) -> 2 (layer4)
    assert names and all(n.startswith(("layer3", "layer4")) for n in names) and "layer4.1.conv2" in names
    assert not any(n.startswith(("layer1", "layer2")) for n in names) and model.training
    assert all(isinstance(model.get_submodule(n), kernels.PatchMatmulConv2d) for n in names)
    after = model.state_dict()
    assert list(after) == list(before) and all(torch.equal(after[k], before[k]) for k in before)  # stats untouched
    assert torch.equal(torch.get_rng_state(), rng)
    model.eval()
    torch.testing.assert_close(model(x), expected, rtol=1e-4, atol=1e-5)
    assert kernels.matmul_small_maps(model, 48, 3) == []  # nothing plain is left to swap


def test_the_setup_uses_it_for_bf16_on_the_cpu_records_it_and_a_resume_keeps_what_it_started_with(tiny_cfg,
                                                                                                monkeypatch):
    import fer_core.train.build as build

    monkeypatch.setattr(build, "cpu_bf16_units", lambda: ["amx_bf16"])
    cfg = tiny_cfg("model.name=resnet18", "model.input_size=48")
    setup = Setup.of(cfg)
    assert setup.small_maps_as_matmul and setup.precision["small_maps_as_matmul"] is True
    assert any(isinstance(m, kernels.PatchMatmulConv2d) for m in setup.model(cfg, 7).modules())
    assert not Setup.of(tiny_cfg("model.name=resnet18", "train.amp=false")).small_maps_as_matmul  # float32: oneDNN
    older = {k: v for k, v in setup.precision.items() if k != "small_maps_as_matmul"}  # a checkpoint before it
    resumed = Setup.of(cfg, older)
    assert not resumed.small_maps_as_matmul and resumed.amp
    assert not any(isinstance(m, kernels.PatchMatmulConv2d) for m in resumed.model(cfg, 7).modules())
