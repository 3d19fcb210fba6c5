"""Keras HDF5 weights (Keras 2's ``model.save``: ``model_config`` and ``model_weights``) for the
book's models, read with h5py (no TensorFlow), and a NumPy forward pass of the file's own graph
with TensorFlow's semantics to hold a port against.

- :func:`state_dict` maps the file's weight-bearing layers, in the file's layer order, onto the
  model's ``Conv2d`` / ``BatchNorm2d`` / ``Linear`` modules in their registration order (a
  ``SeparableConv2D`` onto a depthwise and a pointwise ``Conv2d``), transposing Keras's
  channels-last kernels; a tensor whose shape does not fit, a count that differs, or a batch-norm
  epsilon other than the model's is refused by name.
- :func:`reference_forward` runs the file's graph layer by layer in NumPy (``Conv2D``,
  ``SeparableConv2D``, ``BatchNormalization``, ``Activation``, ``MaxPooling2D``, ``Add``,
  ``GlobalAveragePooling2D``), with TensorFlow's "same" padding: the extra row and column of an
  odd total go at the bottom and right. It is the reference a ported model must equal.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

SUFFIXES = (".h5", ".hdf5")
WEIGHTED = ("Conv2D", "SeparableConv2D", "BatchNormalization", "Dense", "DepthwiseConv2D")


@dataclass
class KerasFile:
    """A Keras HDF5 model: its layers (class, name, config, inbound layer names) and each layer's
    weights (name -> array, in the file's order)."""

    path: Path
    layers: list[dict]
    weights: dict[str, list[tuple[str, np.ndarray]]]
    keras_version: str

    @classmethod
    def read(cls, path: str | Path) -> "KerasFile":
        try:
            import h5py
        except ImportError:
            raise ImportError("Reading Keras HDF5 weights needs h5py (pip install h5py; make setup installs "
                              "it).") from None
        path = Path(path)
        try:
            f = h5py.File(path, "r")
        except OSError as e:
            raise ValueError(f"Weights file {path} is not an HDF5 file h5py can open ({e}).") from None
        with f:
            if "model_config" not in f.attrs or "model_weights" not in f:
                raise ValueError(f"Weights file {path} is HDF5 but not a Keras model saved with model.save() "
                                 f"(no model_config / model_weights).")
            config = json.loads(_text(f.attrs["model_config"]))
            group = f["model_weights"]
            weights = {}
            for name in map(_text, group.attrs["layer_names"]):
                layer = group[name]
                weights[name] = [(_text(w), np.asarray(layer[_text(w)])) for w in layer.attrs.get("weight_names", [])]
            version = _text(f.attrs.get("keras_version", "?"))
        layers = []
        for layer in config["config"]["layers"]:
            inbound = layer.get("inbound_nodes") or []
            layers.append({"class": layer["class_name"], "name": layer["config"]["name"], "config": layer["config"],
                           "inbound": [node[0] for node in inbound[0]] if inbound else []})
        return cls(path, layers, weights, version)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(height, width, channels) of the model's input."""
        shape = self.layers[0]["config"]["batch_input_shape"]
        return tuple(shape[1:])


def _text(x) -> str:
    return x.decode() if isinstance(x, bytes | np.bytes_) else str(x)


def _torch_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d | nn.BatchNorm2d | nn.Linear)]


def state_dict(model: nn.Module, keras: KerasFile, *, same_epsilon: bool = True) -> dict[str, torch.Tensor]:
    """The model's state dict from the file's weights (see the module's docstring); every tensor
    of the model must come from the file and every weight of the file must be used.
    ``same_epsilon=False`` lets a model with another batch-norm epsilon take them (to measure what a
    port's differences do to the same weights; never for a result)."""
    where = f"Weights file {keras.path}"
    targets = _torch_layers(model)
    state, i = {}, 0

    def take(kind: type, layer: str) -> tuple[str, nn.Module]:
        nonlocal i
        if i >= len(targets):
            raise ValueError(f"{where}: layer {layer} has no counterpart: the model has only {len(targets)} "
                             f"conv / batch-norm / linear modules.")
        name, module = targets[i]
        if not isinstance(module, kind):
            raise ValueError(f"{where}: layer {layer} meets the model's {name} ({type(module).__name__}), not a "
                             f"{kind.__name__}: the architectures differ here.")
        i += 1
        return name, module

    def put(name: str, module: nn.Module, key: str, array: np.ndarray, source: str) -> None:
        own = getattr(module, key)
        value = torch.from_numpy(np.ascontiguousarray(array)).to(own.dtype)
        if value.shape != own.shape:
            raise ValueError(f"{where}: {source} ({tuple(value.shape)} in torch's layout) does not fit the model's "
                             f"{name}.{key} {tuple(own.shape)}: refused (the architectures differ).")
        state[f"{name}.{key}" if name else key] = value

    for layer in keras.layers:
        kind, lname = layer["class"], layer["name"]
        arrays = dict((w.split("/")[-1].split(":")[0], a) for w, a in keras.weights.get(lname, []))
        if kind not in WEIGHTED:
            if arrays:
                raise ValueError(f"{where}: layer {lname} ({kind}) has weights this reader does not map.")
            continue
        if kind in ("Conv2D", "DepthwiseConv2D"):
            name, conv = take(nn.Conv2d, lname)
            kernel = arrays["depthwise_kernel" if kind == "DepthwiseConv2D" else "kernel"]
            put(name, conv, "weight", _depthwise(kernel) if kind == "DepthwiseConv2D" else kernel.transpose(3, 2, 0, 1),
                f"{lname}/kernel {kernel.shape}")
            _bias(name, conv, arrays, lname, put, where)
        elif kind == "SeparableConv2D":
            name, depthwise = take(nn.Conv2d, lname)
            dw, pw = arrays["depthwise_kernel"], arrays["pointwise_kernel"]
            put(name, depthwise, "weight", _depthwise(dw), f"{lname}/depthwise_kernel {dw.shape}")
            name, pointwise = take(nn.Conv2d, lname)
            put(name, pointwise, "weight", pw.transpose(3, 2, 0, 1), f"{lname}/pointwise_kernel {pw.shape}")
            _bias(name, pointwise, arrays, lname, put, where)
        elif kind == "BatchNormalization":
            name, bn = take(nn.BatchNorm2d, lname)
            eps = float(layer["config"].get("epsilon", 1e-3))
            if same_epsilon and abs(bn.eps - eps) > 1e-12:
                raise ValueError(f"{where}: layer {lname} normalises with epsilon {eps:g}, the model's {name} with "
                                 f"{bn.eps:g}: the forward passes would differ (build the model with Keras's "
                                 f"semantics).")
            for key, source in (("weight", "gamma"), ("bias", "beta"), ("running_mean", "moving_mean"),
                                ("running_var", "moving_variance")):
                put(name, bn, key, arrays[source], f"{lname}/{source} {arrays[source].shape}")
            state[f"{name}.num_batches_tracked"] = torch.tensor(0)
        elif kind == "Dense":
            name, linear = take(nn.Linear, lname)
            put(name, linear, "weight", arrays["kernel"].T, f"{lname}/kernel {kernel.shape}")
            _bias(name, linear, arrays, lname, put, where)
    if i != len(targets):
        left = [n for n, _ in targets[i:]]
        raise ValueError(f"{where}: the model's {left[:5]} ({len(left)} modules) get no weights from the file: "
                         f"the architectures differ.")
    return state


def _depthwise(kernel: np.ndarray) -> np.ndarray:
    """Keras's depthwise kernel (kh, kw, in, multiplier) as torch's (in * multiplier, 1, kh, kw)."""
    kh, kw, c, m = kernel.shape
    return kernel.reshape(kh, kw, c * m).transpose(2, 0, 1)[:, None]


def _bias(name, module, arrays, lname, put, where) -> None:
    if "bias" in arrays:
        if module.bias is None:
            raise ValueError(f"{where}: layer {lname} has a bias, the model's {name} none.")
        put(name, module, "bias", arrays["bias"], f"{lname}/bias {arrays['bias'].shape}")
    elif module.bias is not None:
        raise ValueError(f"{where}: the model's {name} has a bias, layer {lname} none.")


# -- the reference: the file's graph in NumPy, TensorFlow's semantics ----------------------------------

def _tf_same(size: int, k: int, s: int) -> tuple[int, int]:
    """TensorFlow's "same" padding of one dimension, written out here again (not imported from the
    port it checks): the total a strided window needs, the odd one at the end."""
    total = max((-(-size // s) - 1) * s + k - size, 0)
    return total // 2, total - total // 2


def _pad(x: np.ndarray, k: tuple[int, int], s: tuple[int, int], padding: str, value: float = 0.0) -> np.ndarray:
    if padding != "same":
        return x
    (t, b), (left, r) = _tf_same(x.shape[1], k[0], s[0]), _tf_same(x.shape[2], k[1], s[1])
    return np.pad(x, ((0, 0), (t, b), (left, r), (0, 0)), constant_values=value)


def _windows(x: np.ndarray, k: tuple[int, int], s: tuple[int, int]) -> np.ndarray:
    """N x OH x OW x kh x kw x C views of ``x`` (N x H x W x C, already padded)."""
    v = np.lib.stride_tricks.sliding_window_view(x, k, axis=(1, 2))  # N x H' x W' x C x kh x kw
    return v[:, ::s[0], ::s[1]].transpose(0, 1, 2, 4, 5, 3)


def _conv(x, kernel, strides, padding):
    k = kernel.shape[:2]
    w = _windows(_pad(x, k, strides, padding), k, strides)
    return np.einsum("nhwijc,ijco->nhwo", w, kernel, optimize=True)


def _depthwise_conv(x, kernel, strides, padding):
    k = kernel.shape[:2]
    w = _windows(_pad(x, k, strides, padding), k, strides)
    kh, kw, c, m = kernel.shape
    return np.einsum("nhwijc,ijcm->nhwcm", w, kernel, optimize=True).reshape(*w.shape[:3], c * m)


def reference_forward(keras: KerasFile, x: np.ndarray) -> np.ndarray:
    """The file's model on ``x`` (N x H x W x C, float64, already preprocessed) with TensorFlow's
    semantics, in float64: the last layer's output."""
    out: dict[str, np.ndarray] = {}
    last = None
    for layer in keras.layers:
        kind, name, cfg = layer["class"], layer["name"], layer["config"]
        w = dict((n.split("/")[-1].split(":")[0], a.astype(np.float64)) for n, a in keras.weights.get(name, []))
        ins = [out[i] for i in layer["inbound"]]
        if kind == "InputLayer":
            y = x.astype(np.float64)
        elif kind == "Conv2D":
            y = _conv(ins[0], w["kernel"], tuple(cfg["strides"]), cfg["padding"]) + w.get("bias", 0.0)
        elif kind == "SeparableConv2D":
            y = _depthwise_conv(ins[0], w["depthwise_kernel"], tuple(cfg["strides"]), cfg["padding"])
            y = _conv(y, w["pointwise_kernel"], (1, 1), "valid") + w.get("bias", 0.0)
        elif kind == "BatchNormalization":
            y = (ins[0] - w["moving_mean"]) / np.sqrt(w["moving_variance"] + cfg["epsilon"]) * w["gamma"] + w["beta"]
        elif kind == "MaxPooling2D":
            k, s = tuple(cfg["pool_size"]), tuple(cfg["strides"])
            y = _windows(_pad(ins[0], k, s, cfg["padding"], -np.inf), k, s).max(axis=(3, 4))
        elif kind == "Add":
            y = sum(ins)
        elif kind == "GlobalAveragePooling2D":
            y = ins[0].mean(axis=(1, 2))
        elif kind != "Activation":
            raise ValueError(f"Weights file {keras.path}: layer {name} is a {kind}, which the reference does not "
                             f"run.")
        if kind == "Activation" or cfg.get("activation") not in (None, "linear"):
            y = _activation(ins[0] if kind == "Activation" else y, cfg["activation"], name)
        out[name] = last = y
    return last


def _activation(x: np.ndarray, name: str, layer: str) -> np.ndarray:
    if name == "relu":
        return np.maximum(x, 0)
    if name == "softmax":
        e = np.exp(x - x.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)
    if name == "linear":
        return x
    raise ValueError(f"layer {layer}: activation {name!r} is not run by the reference")
