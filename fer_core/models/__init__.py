"""One registry of models: a new model is a file with ``@register(...)`` and an import line here.

Every model takes the engine's input, a float batch ``B x in_channels x input_size x
input_size`` made from the grey 48x48 faces, and returns class logits, or a dict with
``logits`` plus whatever extra terms its losses need (see ``fer_core.train.losses``). ``cam_layer``
names the layer Grad-CAM explains (the last convolutional stage): a dotted path in the model, or
a function of the model returning the layer; None for a model with no classifier to explain.
"""
from __future__ import annotations

import inspect
import pickle
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn


@dataclass(frozen=True)
class ModelSpec:
    name: str
    build: Callable[..., nn.Module]
    input_size: int
    in_channels: int
    paper: str
    summary: str
    cam_layer: str | Callable[[nn.Module], nn.Module] | None = None
    #: trains under bf16 autocast where the device has bf16 matrix units (the engine's default
    #: there); False: a model whose bf16 step test fails keeps float32
    bf16: bool = True

    def cam_module(self, model: nn.Module) -> nn.Module:
        """The layer of ``model`` (built from this spec) that Grad-CAM explains."""
        if self.cam_layer is None:
            raise ValueError(f"model {self.name!r} declares no Grad-CAM layer (cam_layer): it has no classifier "
                             f"to explain")
        return self.cam_layer(model) if callable(self.cam_layer) else model.get_submodule(self.cam_layer)


REGISTRY: dict[str, ModelSpec] = {}


def register(name: str, *, input_size: int = 48, in_channels: int = 1, paper: str = "baseline",
             cam_layer: str | Callable[[nn.Module], nn.Module] | None = None, bf16: bool = True):
    """Decorator: register ``fn(num_classes, **kwargs) -> nn.Module`` under ``name``, with the
    layer Grad-CAM explains (``cam_layer``) and whether it may train under bf16 (``bf16``)."""
    def deco(fn):
        if name in REGISTRY:
            raise ValueError(f"model {name!r} is registered twice")
        doc = (fn.__doc__ or "").strip().splitlines()
        REGISTRY[name] = ModelSpec(name, fn, input_size, in_channels, paper, doc[0] if doc else "", cam_layer,
                                   bf16)
        return fn
    return deco


def get_spec(name: str) -> ModelSpec:
    if name not in REGISTRY:
        raise KeyError(f"Unknown model {name!r} (model.name). Registered: {', '.join(sorted(REGISTRY))}.")
    return REGISTRY[name]


def create_model(name: str, num_classes: int = 7, weights: str | Path | None = None, *,
                 input_size: int | None = None, weights_partial: bool = False, **kwargs) -> nn.Module:
    """Build a registered model; ``weights`` is a local state-dict file to start from.
    ``input_size`` reaches the builders whose head depends on it (and is ignored by the rest)."""
    spec = get_spec(name)
    if "input_size" in inspect.signature(spec.build).parameters:
        kwargs.setdefault("input_size", input_size or spec.input_size)
    try:
        model = spec.build(num_classes=num_classes, **kwargs)
    except TypeError as e:
        raise ValueError(f"model.kwargs do not fit {name!r}: {e}") from None
    if weights:
        load_weights(model, weights, partial=weights_partial)
    return model


def count_parameters(model: nn.Module) -> int:
    """Trainable and frozen parameters, each shared tensor counted once."""
    return sum(p.numel() for p in model.parameters())


def forward_gmacs(model: nn.Module, input_size: int, in_channels: int) -> float:
    """Multiply-accumulates (x 10^9) of one image's forward pass, counted by torch's FLOP counter
    (a multiply-add is 2 FLOPs; GMAC is the unit most papers' "FLOPs" tables use)."""
    from torch.utils.flop_counter import FlopCounterMode

    device = next(iter(model.parameters())).device
    was_training = model.training
    model.eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.zeros(1, in_channels, input_size, input_size, device=device))
    model.train(was_training)
    return counter.get_total_flops() / 2e9


def _listing(keys: list[str]) -> str:
    return f"{keys[:20]}{f' ... ({len(keys)} in all)' if len(keys) > 20 else ''}"


def load_weights(model: nn.Module, path: str | Path, partial: bool = False) -> list[str]:
    """Load a local state dict with ``torch.load(weights_only=True)``, or a Keras HDF5 model
    (``.h5``, ``.hdf5``: :mod:`fer_core.models.keras_h5`, every tensor mapped by the architecture).

    By default every key must fit: otherwise the error lists the missing, unexpected and
    wrongly shaped keys. ``partial=True`` (``model.weights_partial``) loads the keys whose names
    and shapes fit, e.g. an ImageNet backbone under a new head, warns with what was left out, and
    returns the names of the model's parameters that were not loaded.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Weights file {path} (model.weights) does not exist.")
    if path.stat().st_size == 0:
        raise ValueError(f"Weights file {path} (model.weights) is empty (0 bytes): its write was cut off or it is "
                         f"not a weights file; save one with torch.save(model.state_dict(), path).")
    if path.suffix.lower() in keras_h5.SUFFIXES:  # a Keras model: mapped by the architecture, strictly
        model.load_state_dict(keras_h5.state_dict(model, keras_h5.KerasFile.read(path)))
        return []
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise ValueError(f"Weights file {path} (model.weights) holds more than tensors (pickled objects or code), "
                         f"so it is refused: loading it could run code. Save plain weights with "
                         f"torch.save(model.state_dict(), path).") from None
    except Exception as e:  # torch.load's errors on a file that is no archive (a text file: KeyError 101)
        why = (str(e).splitlines() or [type(e).__name__])[0][:100] or type(e).__name__
        raise ValueError(f"Weights file {path} (model.weights) cannot be read ({type(e).__name__}: {why}): is it "
                         f"a PyTorch state dict saved with torch.save(model.state_dict(), path)?") from None
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]  # one of the engine's own checkpoints
    if not isinstance(state, dict) or not all(isinstance(k, str) and torch.is_tensor(v) for k, v in state.items()):
        raise ValueError(f"Weights file {path} (model.weights) holds a {type(state).__name__}, not a state dict "
                         f"(parameter names -> tensors): save one with torch.save(model.state_dict(), path).")
    broken = [k for k, v in state.items()
              if torch.is_tensor(v) and v.is_floating_point() and not torch.isfinite(v).all()]
    if broken:
        raise ValueError(f"Weights file {path} (model.weights) holds non-finite values (NaN or inf) in "
                         f"{_listing(broken)}: a run that diverged saved it; use weights from a finite epoch.")
    own = model.state_dict()
    shape = [k for k in state if k in own and state[k].shape != own[k].shape]
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if partial:
        fitting = {k: v for k, v in state.items() if k in own and k not in shape}
        if not fitting:
            raise ValueError(f"Weights file {path}: no key fits the model (unexpected keys {_listing(unexpected)}).")
        model.load_state_dict(fitting, strict=False)
        left = [k for k in own if k not in fitting]
        if left:
            warnings.warn(f"{path}: loaded {len(fitting)} of {len(own)} tensors; not loaded (trained from scratch): "
                          f"{_listing(left)}", stacklevel=2)
        return left
    if missing or unexpected or shape:
        raise ValueError(f"Weights file {path} does not fit the model: missing keys {_listing(missing)}; "
                         f"unexpected keys {_listing(unexpected)}; wrong shapes {_listing(shape)}. "
                         f"To load only what fits (e.g. an ImageNet backbone), set model.weights_partial: true.")
    model.load_state_dict(state)
    return []


# each import registers that file's models
from . import (  # noqa: E402,F401
    baselines,
    improved_resnet50,
    keras_h5,  # noqa: E402  (no models: the Keras reader)
    mini_xception,
    resmasking,
    rmrn,
    simple_cnn,
    stn_sr,
    xception_separable,
)
