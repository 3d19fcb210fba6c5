"""What a run costs on this machine before it is started: estimated hours from the measured speed
of the book's own loop (``results/bench/train_<device>.csv``, written by ``python -m fer_core.schedule.bench
train``; ``python -m fer_core run --list --measure`` re-measures the slice's models).

A run's training speed is read from the benchmark's row of the same model (the engine's default
precision, ``book (default)``) at the run's own batch size where the benchmark measured it (a
smaller batch is slower per image; where that batch is not measured, the basis says so), at the
input nearest in FLOPs, scaled by the FLOP ratio; a model the benchmark did not measure gets the
median achieved TFLOP/s of those it did. Rows measured on this machine (its CPU and bf16 units, or
its GPU) come first; a model measured only on another machine takes that machine's speed, and the
basis names it (one CPU's figures are not another's). Validation counts at the evaluation speed
(three times the training speed, a forward pass alone); early stopping may end a run sooner, so the
hours are an upper bound.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ..paths import bench_file
from ..train.hardware import cpu_info

DEFAULT_LOOP = "book (default)"


def host(cpu: str, bf16_units: str | None) -> str:
    """A CPU as the benchmark names the machine it measured on: its name and its bf16 units."""
    return f"{cpu} ({bf16_units or 'none'})"


def this_host(device: str) -> str:
    """This machine as :func:`hosts` names a benchmark row measured here on ``device``."""
    if device == "cuda":
        import torch

        return torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU here"
    info = cpu_info()
    return host(info["cpu"], ",".join(info["cpu_bf16_units"]))


def hosts(df: pd.DataFrame) -> pd.Series:
    """The machine each benchmark row was measured on: the GPU where the row's device names one,
    else the CPU with its bf16 units; empty for rows of a benchmark older than those columns."""
    if "cpu" not in df:
        return pd.Series("", index=df.index)
    units = df["cpu_bf16_units"] if "cpu_bf16_units" in df else pd.Series(None, index=df.index, dtype=object)
    device = df["device"].fillna("cpu").astype(str) if "device" in df else pd.Series("cpu", index=df.index)

    def one(cpu, bf16_units, on: str) -> str:
        if pd.isna(cpu):
            return ""
        return host(str(cpu), None if pd.isna(bf16_units) else str(bf16_units)) if on.startswith("cpu") else on

    return pd.Series(map(one, df["cpu"], units, device), index=df.index, dtype=object)


def loss_key(weights: dict | None) -> str:
    """A run's extra loss terms as the benchmark's ``loss`` column writes them (``{}``: none): they
    decide what a step trains (EDSR alone learns only from its ``sr_l1``), so a row is read for runs
    with the same terms."""
    return json.dumps(dict(sorted((weights or {}).items())), separators=(",", ":"))


#: model kwargs naming a file of trained weights a run loads, with what the benchmark measures in
#: their place: it has no such file, but a loaded SR net is fixed while the run trains (Qin's +SR
#: rows), and a fixed EDSR costs a step far less than one that trains
WEIGHTS_KWARGS = {"sr_weights": ("sr_frozen", True)}


def bench_kwargs(kwargs: dict) -> dict:
    """The model kwargs a run's speed is measured and read with: its own, a weights file replaced by
    what the file does to a step (:data:`WEIGHTS_KWARGS`: an SR net loaded is an SR net frozen)."""
    out = {k: v for k, v in kwargs.items() if k not in WEIGHTS_KWARGS}
    for key, (stand_in, value) in WEIGHTS_KWARGS.items():
        if kwargs.get(key):
            out.setdefault(stand_in, value)
    return dict(sorted(out.items()))


def kwargs_key(kwargs: dict) -> str:
    """Model kwargs as the benchmark's ``kwargs`` column writes them: the compact sorted JSON of
    :func:`loss_key`."""
    return loss_key(kwargs)


def bench_path(device: str) -> Path:
    return bench_file(f"train_{device}")


def measured(device: str, path: str | Path | None = None) -> pd.DataFrame | None:
    """The benchmark's default-loop rows for ``device`` with their training FLOPs per image and the
    machine each was measured on (``host``; ``attrs["here"]``: this machine), or None."""
    path = Path(path) if path is not None else bench_path(device)
    if not path.is_file():
        return None
    df = pd.read_csv(path)
    loop = DEFAULT_LOOP if (df["loop"] == DEFAULT_LOOP).any() else "book (fp32)"  # a benchmark of older code
    df = df[(df["loop"] == loop) & (df["images_per_s"] > 0) & (df["tflops"] > 0)].copy()
    df["flops_per_image"] = df["tflops"] * 1e12 / df["images_per_s"]  # forward and backward, counted
    if "gmacs_per_image" not in df:  # a benchmark before the column: forward ~ a third of the step
        df["gmacs_per_image"] = df["flops_per_image"] / 6e9
    df["host"] = hosts(df)
    df.attrs["here"] = this_host(device)
    return df if len(df) else None


def training_images_per_s(bench: pd.DataFrame | None, model: str, gmacs: float,
                          batch: int | None = None, loss: dict | None = None,
                          kwargs: dict | None = None) -> tuple[float, str] | None:
    """(estimated training images/s, how it was estimated) of ``model`` at ``gmacs`` forward GMAC
    per image, trained at ``batch`` images a step (None: whatever batch the benchmark used) with the
    extra loss terms ``loss`` and the model kwargs ``kwargs`` (:func:`bench_kwargs`; rows measured
    with other terms or kwargs only where none has the same: what trains decides a step's cost as
    much as its FLOPs do, and a fixed SR net has the FLOPs of one that trains)."""
    if bench is None:
        return None
    here_is = bench.attrs.get("here")
    on = bench["host"] if "host" in bench else pd.Series("", index=bench.index)
    same = bench[bench["model"] == model]
    # a row without the column: no loss terms (older benchmarks measured none), kwargs unknown
    for column, key, missing in (("loss", loss_key(loss), "{}"),
                                 ("kwargs", None if kwargs is None else kwargs_key(kwargs), "")):
        if key is not None and column in same and (same[column].fillna(missing) == key).any():
            same = same[same[column].fillna(missing) == key]
    if (on[same.index] == here_is).any():  # this machine's own measurement of the model first
        same = same[on[same.index] == here_is]
    other_batch = ""
    if len(same) and batch is not None and "batch" in same:
        at_batch = same[same["batch"] == batch]
        if len(at_batch):
            same = at_batch
        else:  # said in the basis: the estimate is low for a smaller batch, high for a larger one
            other_batch = f", batch {int(same['batch'].iloc[0])} (this run: {batch})"
    if len(same):
        row = same.iloc[(same["gmacs_per_image"] - gmacs).abs().argsort().iloc[0]]
        ratio = row["gmacs_per_image"] / gmacs
        case = row["case"] if isinstance(row.get("case"), str) else f"{model}@{row['input']}"
        if on[row.name] and on[row.name] != here_is:
            case = f"{case} on {on[row.name]}"
        basis = f"measured ({case}{other_batch})" if abs(ratio - 1) < 0.05 else f"scaled from {case}{other_batch}"
        return row["images_per_s"] * ratio, basis
    flops = 6e9 * gmacs  # forward 2 FLOPs a multiply-accumulate, backward twice the forward
    pool = bench[on == here_is] if (on == here_is).any() else bench  # this machine's models where it has any
    elsewhere = sorted(set(on[pool.index]) - {"", here_is})
    where = f" on {', '.join(elsewhere)}" if elsewhere else ""
    return float(pool["tflops"].median()) * 1e12 / flops, f"median TFLOP/s of the benchmark{where}"


def run_hours(bench: pd.DataFrame | None, model: str, gmacs_per_image: float, train_images: int,
              val_images: int, epochs: int, batch: int | None = None,
              loss: dict | None = None, kwargs: dict | None = None) -> tuple[float | None, str]:
    """(hours at most, basis) to train ``epochs`` epochs of a run: passes over the training images
    plus a validation pass per epoch; (None, why) without a benchmark."""
    est = training_images_per_s(bench, model, gmacs_per_image, batch, loss, kwargs)
    if est is None:
        return None, "no benchmark: python -m fer_core.schedule.bench train"
    ips, basis = est
    return epochs * (train_images + val_images / 3) / ips / 3600, basis
