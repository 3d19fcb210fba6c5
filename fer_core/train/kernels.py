"""Convolutions on small maps as one matrix multiply, for bf16 training on the CPU.

At 48x48 the ResNets of Qin and Du end on 3x3 and 2x2 maps. There, oneDNN's bf16 convolution is
slow on this CPU: the weight gradient of ResNet-18's 512->512 3x3 convolution over 16 faces' 2x2
maps takes 11-14 ms (about 25 GFLOP/s; its forward pass 3 ms), and ResNet-18's last stage took
about half of a training step. The same convolution written as its unfolded patches times the
weight matrix is one matrix multiply, forward and backward, which the CPU's matrix units do well.
Measured here with ``python -m fer_core.schedule.bench train`` (its ``default`` loop, FER2013, before and
after this module; figures vary by about 20% between calls on this shared machine): Qin's
ResNet-18 (``stn_sr@48``) at his batch of 16, 99 -> 238 images/s; Du's ResNet-50 at batch 32,
73 -> 121; his improved ResNet-50, 87 -> 92. Yu's separable network has only its classifier on
a small map: with and without the swap, alternating in one process, 34-43 images/s alike.

The arithmetic is the convolution's own (the same weights and sums, added in another order):
results differ from oneDNN's by rounding only. :class:`fer_core.train.build.Setup` swaps the modules in
(``small_maps_as_matmul``: on for bf16 training on the CPU, off elsewhere, recorded in the
precision; a resumed run keeps the kernels it started with).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

#: the largest map (height and width) a convolution is swapped for: measured on this CPU, swapping
#: ResNet-18's 3x3- and 2x2-map convolutions gains more than the 2x2 ones alone, and more than
#: swapping its 6x6-map ones too
MAX_MAP = 3


class PatchMatmulConv2d(nn.Conv2d):
    """``nn.Conv2d`` (zero padding, no dilation or groups) as one matrix multiply where gradients
    flow: the unfolded patches of every face and position (faces*positions x in*kh*kw) times the
    transposed weight matrix (in*kh*kw x out), laid out channels-last as the next layer reads it.
    Without gradients (validation and test passes) it is the plain convolution: oneDNN's forward is
    fast there (measured at batch 256: 3 ms against 22 for a 256->256 layer on 3x3 maps)."""

    def _conv_forward(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        if not torch.is_grad_enabled():  # a pass without a backward (validation, test): oneDNN's forward is faster
            return super()._conv_forward(x, weight, bias)
        n, _, h, w = x.shape
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
        patches = F.unfold(x, self.kernel_size, padding=self.padding, stride=self.stride)  # n x in*kh*kw x oh*ow
        rows = patches.transpose(1, 2).reshape(n * oh * ow, -1)  # 2-D: one GEMM, the weight never broadcast
        y = (rows @ weight.reshape(self.out_channels, -1).t()).view(n, oh, ow, self.out_channels).permute(0, 3, 1, 2)
        return y if bias is None else y + bias.view(1, -1, 1, 1)


def _plain(conv: nn.Module) -> bool:
    return (type(conv) is nn.Conv2d and conv.groups == 1 and conv.dilation == (1, 1)
            and conv.padding_mode == "zeros" and isinstance(conv.padding, tuple))


def small_map_convs(model: nn.Module, size: int, in_channels: int, max_map: int = MAX_MAP) -> list[str]:
    """The plain convolutions of ``model`` whose input maps are at most ``max_map`` x ``max_map``
    for ``size`` x ``size`` faces, found by one forward pass of two blank faces in eval mode (batch
    statistics and random state untouched)."""
    maps: dict[str, tuple[int, int]] = {}

    def seen(name):
        def hook(module, args):  # returns None: the input goes on unchanged
            maps.setdefault(name, tuple(args[0].shape[-2:]))
        return hook

    hooks = [m.register_forward_pre_hook(seen(name)) for name, m in model.named_modules() if _plain(m)]
    training = model.training
    try:
        param = next(model.parameters())
        with torch.no_grad():
            model.eval()(torch.zeros(2, in_channels, size, size, device=param.device))
    finally:
        model.train(training)
        for h in hooks:
            h.remove()
    return [name for name, (h, w) in maps.items() if h <= max_map and w <= max_map]


def matmul_small_maps(model: nn.Module, size: int, in_channels: int, max_map: int = MAX_MAP) -> list[str]:
    """Swap the convolutions of :func:`small_map_convs` for :class:`PatchMatmulConv2d` modules that
    hold the same parameters under the same names (the state dict is unchanged; the weight is kept
    in the default memory format, which the multiply reads without a copy). Returns their names;
    call it before the optimiser is built."""
    names = small_map_convs(model, size, in_channels, max_map)
    for name in names:
        conv = model.get_submodule(name)
        new = PatchMatmulConv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                                bias=conv.bias is not None, device="meta")
        new.weight = nn.Parameter(conv.weight.detach().contiguous(), requires_grad=conv.weight.requires_grad)
        new.bias = conv.bias
        new.train(conv.training)
        model.set_submodule(name, new)
    return names
