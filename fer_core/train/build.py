"""Set-up of a run: its data, device and precision (:class:`Setup`), model, optimiser and schedule,
each from the config alone, so that the training loop, a benchmark and a notebook build the same."""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .. import data as fer_data
from ..config import Config, ConfigError
from ..models import create_model, get_spec
from . import kernels
from .hardware import cpu_bf16_units


def load_data(cfg: Config) -> fer_data.FERData:
    """The data a config asks for: source, CK+ fold, class set and quick-profile subset."""
    d = cfg.data
    data = fer_data.load(d.source, d.dir, n_folds=d.n_folds, cv=d.cv, with_contempt=d.with_contempt,
                         strict_size=d.strict_size, synthetic_size=tuple(d.synthetic_size),
                         synthetic_seed=d.seed)
    if data.fold is not None:
        data = data.with_fold(d.fold)
    return data.subsample(d.subset, seed=d.seed)


def resolve_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device=cuda, but no CUDA device is visible here: use train.device=auto or cpu.")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def input_shape(cfg: Config) -> tuple[int, int]:
    spec = get_spec(cfg.model.name)
    return cfg.model.input_size or spec.input_size, spec.in_channels


def build_model(cfg: Config, num_classes: int) -> nn.Module:
    torch.manual_seed(cfg.seed)  # same seed -> same initial weights
    return create_model(cfg.model.name, num_classes=num_classes, weights=cfg.model.weights,
                        input_size=input_shape(cfg)[0], weights_partial=cfg.model.weights_partial, **cfg.model.kwargs)


#: optimisers torch offers as one fused kernel over all parameters (CPU and CUDA)
FUSED_OPTIMIZERS = ("sgd", "adam", "adamw")


def build_optimizer(cfg: Config, model: nn.Module, fused: bool = False) -> torch.optim.Optimizer:
    """The configured optimiser; ``fused`` (:attr:`Setup.fused`) takes torch's fused kernel where
    it offers one (:data:`FUSED_OPTIMIZERS`)."""
    o = cfg.train.optimizer
    params = [p for p in model.parameters() if p.requires_grad]
    kernel = {"fused": True} if fused and o.name in FUSED_OPTIMIZERS else {}
    if o.name == "sgd":
        return torch.optim.SGD(params, lr=o.lr, momentum=o.momentum, nesterov=o.nesterov, weight_decay=o.weight_decay,
                               **kernel)
    if o.name == "radam":
        return torch.optim.RAdam(params, lr=o.lr, betas=tuple(o.betas), eps=o.eps, weight_decay=o.weight_decay,
                                 decoupled_weight_decay=o.decoupled_weight_decay)
    cls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[o.name]
    return cls(params, lr=o.lr, betas=tuple(o.betas), eps=o.eps, weight_decay=o.weight_decay, **kernel)


def build_scheduler(cfg: Config, opt: torch.optim.Optimizer):
    """The configured epoch schedule (None for none, and for ``time_one_cycle``, which the loop sets
    from the clock: :class:`fer_core.train.engine.TimeOneCycle`)."""
    s = cfg.train.scheduler
    if s.name == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="max", factor=s.factor,
                                                          patience=s.patience, min_lr=s.min_lr)
    if s.name == "step":
        return torch.optim.lr_scheduler.StepLR(opt, step_size=s.step_size, gamma=s.gamma)
    if s.name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.train.epochs, eta_min=s.min_lr)
    return None


#: the precision of a checkpoint written before the precision was recorded in it: the engine's
#: defaults then (bf16 autocast and channels-last on CUDA only, optimisers unfused)
LEGACY_PRECISION = {"cpu": {"autocast": None, "channels_last": False, "fused_optimizer": False,
                            "flush_denormal": False},
                    "cuda": {"autocast": "bfloat16", "channels_last": True, "fused_optimizer": False}}


@dataclass
class Setup:
    """What training and evaluation share: device, precision and input shape.

    Defaults (``train.amp`` / ``train.channels_last`` unset): bf16 autocast and channels-last
    tensors on CUDA and on a CPU with bf16 matrix units (AMX-BF16 or AVX512-BF16:
    :func:`fer_core.train.hardware.cpu_bf16_units`), unless the model's registry entry says it keeps
    float32 (``bf16=False``); float32 elsewhere. Optimisers step fused where torch offers it. On
    the CPU, denormal floats are flushed to zero (``flush_denormal``): measured here, ResNet-50's
    float32 steps on FER2013 slow from 65 to 14 images/s once its values reach the denormal range;
    with bf16 autocast, convolutions on maps of 3x3 or less run as one matrix multiply
    (``small_maps_as_matmul``, :mod:`fer_core.train.kernels`)."""

    device: torch.device
    size: int
    in_channels: int
    amp: bool
    channels_last: bool
    compile: bool = False
    fused: bool = False
    flush_denormal: bool = False
    small_maps_as_matmul: bool = False

    @classmethod
    def of(cls, cfg: Config, precision: dict | None = None) -> "Setup":
        """The setup of ``cfg`` on this machine; ``precision`` (a checkpoint's :attr:`precision`)
        overrides the defaults, so that a resumed run continues under the precision it started with."""
        device = resolve_device(cfg.train.device)
        size, ch = input_shape(cfg)
        if precision is not None:
            return cls(device, size, ch, precision.get("autocast") == "bfloat16", bool(precision.get("channels_last")),
                       cfg.train.compile, bool(precision.get("fused_optimizer")), bool(precision.get("flush_denormal")),
                       bool(precision.get("small_maps_as_matmul")))
        fast = get_spec(cfg.model.name).bf16 and (device.type == "cuda" or bool(cpu_bf16_units()))
        amp = cfg.train.amp if cfg.train.amp is not None else fast
        cl = cfg.train.channels_last if cfg.train.channels_last is not None else fast
        cpu = device.type == "cpu"
        return cls(device, size, ch, amp, cl, cfg.train.compile, fused=True, flush_denormal=cpu,
                   small_maps_as_matmul=cpu and amp)

    @classmethod
    def recorded(cls, cfg: Config, precision: dict | None) -> "Setup":
        """The setup a checkpoint or record was made under (the engine's old defaults,
        :data:`LEGACY_PRECISION`, for one that does not say)."""
        return cls.of(cfg, precision or LEGACY_PRECISION[resolve_device(cfg.train.device).type])

    @property
    def precision(self) -> dict:
        """The settings in force, for the provenance and the checkpoint: autocast dtype, memory
        format, fused optimiser, compilation, kernels."""
        return {"autocast": "bfloat16" if self.amp else None, "channels_last": self.channels_last,
                "fused_optimizer": self.fused, "flush_denormal": self.flush_denormal, "compile": self.compile,
                "small_maps_as_matmul": self.small_maps_as_matmul, "losses_and_metrics": "float32"}

    def apply(self) -> "Setup":
        """Set what is process-wide (the CPU's denormal mode) for a pass under this setup."""
        if self.device.type == "cpu":
            torch.set_flush_denormal(self.flush_denormal)
        return self

    def autocast(self):
        if not self.amp:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def model(self, cfg: Config, num_classes: int) -> nn.Module:
        """The configured model, seeded, on this setup's device, memory format and kernels."""
        model = build_model(cfg, num_classes).to(self.device)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        if self.small_maps_as_matmul:
            kernels.matmul_small_maps(model, self.size, self.in_channels)
        return model


def images_tensor(data: fer_data.FERData, device: torch.device) -> torch.Tensor:
    """A split's images as one ``N x 1 x H x W`` uint8 tensor on ``device``."""
    return torch.from_numpy(np.ascontiguousarray(data.images)).unsqueeze(1).to(device)
