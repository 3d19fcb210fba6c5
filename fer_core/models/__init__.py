"""One registry of models: a new model is a file with ``@register(...)`` and an import line here.

Every model takes the engine's input, a float batch ``B x in_channels x input_size x
input_size`` made from the grey 48x48 faces, and returns class logits, or a dict with
``logits`` plus whatever extra terms its losses need (see ``fer_core.losses``).
"""
from __future__ import annotations

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


REGISTRY: dict[str, ModelSpec] = {}


def register(name: str, *, input_size: int = 48, in_channels: int = 1, paper: str = "baseline"):
    """Decorator: register ``fn(num_classes, **kwargs) -> nn.Module`` under ``name``."""
    def deco(fn):
        if name in REGISTRY:
            raise ValueError(f"model {name!r} is registered twice")
        doc = (fn.__doc__ or "").strip().splitlines()
        REGISTRY[name] = ModelSpec(name, fn, input_size, in_channels, paper, doc[0] if doc else "")
        return fn
    return deco


def get_spec(name: str) -> ModelSpec:
    if name not in REGISTRY:
        raise KeyError(f"Unknown model {name!r} (model.name). Registered: {', '.join(sorted(REGISTRY))}.")
    return REGISTRY[name]


def create_model(name: str, num_classes: int = 7, weights: str | Path | None = None, **kwargs) -> nn.Module:
    """Build a registered model; ``weights`` is a local state-dict file to start from."""
    model = get_spec(name).build(num_classes=num_classes, **kwargs)
    if weights:
        load_weights(model, weights)
    return model


def load_weights(model: nn.Module, path: str | Path) -> None:
    """Load a local state dict (``torch.load(weights_only=True)``); keys must fit exactly."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Weights file {path} (model.weights) does not exist.")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]  # one of our own checkpoints
    result = model.load_state_dict(state, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise ValueError(f"Weights file {path} does not fit the model: missing keys {result.missing_keys[:20]}"
                         f"{' ...' if len(result.missing_keys) > 20 else ''}; unexpected keys "
                         f"{result.unexpected_keys[:20]}{' ...' if len(result.unexpected_keys) > 20 else ''}.")


from . import simple_cnn  # noqa: E402,F401  (registers its models)
