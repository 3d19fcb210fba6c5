"""Benchmarks that print figures (speed targets live here, not in timed tests).

    python -m fer_core.schedule.bench data [--data-dir D]    load times: first (decode) and cached
    python -m fer_core.schedule.bench models [--models a,b] [--batch 8] [--steps 3] [--out CSV]
                                                    parameters, FLOPs, CPU training images/s
    python -m fer_core.schedule.bench train [--device cuda] [--models a,b] [--input 224] [--batch 48] [--steps 20]
                                                    training images/s, TFLOP/s and peak memory of the
                                                    book's loop (precision variants) against a plain
                                                    DataLoader loop, and evaluation images/s per batch
                                                    size -> results/bench/train_<device>.csv
    python -m fer_core.schedule.bench attention [--faces 32]  seconds of every attribution method, the
                                                    deletion/insertion curves and the sanity check:
                                                    ResNet-18 at 48x48 on the CPU, ResMaskingNet at
                                                    224x224 on a GPU when there is one
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from ..paths import BENCH
from .speed import bench_kwargs, kwargs_key, loss_key


def bench_data(data_dir: str | None) -> None:
    from .. import data as fer_data

    print(f"{'source':12s} {'images':>7s} {'first load (s)':>15s} {'cached load (s)':>16s}  target: cached < 2 s")
    with tempfile.TemporaryDirectory() as cache:
        os.environ["FER_CACHE_DIR"] = cache  # a cold cache, so the first load really decodes
        for source in ("synthetic", "fer2013", "ckplus"):
            if source != "synthetic" and not (data_dir or os.environ.get("FER_DATA_DIR")):
                print(f"{source:12s} skipped: no --data-dir or FER_DATA_DIR")
                continue
            try:
                times = []
                for _ in range(2):
                    t0 = time.perf_counter()
                    d = fer_data.load(source, data_dir)
                    times.append(time.perf_counter() - t0)
            except fer_data.DataError as e:
                print(f"{source:12s} skipped: {e}")
                continue
            print(f"{source:12s} {len(d):7d} {times[0]:15.2f} {times[1]:16.2f}")


def bench_models(names: list[str] | None, batch: int, steps: int, out: str, size: int | None) -> None:
    """Parameters, forward FLOPs at the input size (torch's FlopCounterMode counts a multiply-add
    as 2 FLOPs; the GMAC column is the unit most papers' "FLOPs" tables use) and training
    throughput (forward + backward + SGD step) on this machine, one row per model."""
    import platform

    import pandas as pd
    import torch

    from ..models import REGISTRY, count_parameters, create_model, forward_gmacs
    from ..paths import project_path
    from ..train.losses import logits_of

    device = "cuda" if torch.cuda.is_available() else "cpu"
    rows = []
    for name in names or sorted(REGISTRY):
        spec = REGISTRY[name]
        s = size or spec.input_size
        model = create_model(name, input_size=s).to(device)
        x = torch.randn(batch, spec.in_channels, s, s, device=device)
        y = torch.randint(0, 7, (batch,), device=device)
        gmacs = forward_gmacs(model, s, spec.in_channels)
        model.train()
        opt = torch.optim.SGD(model.parameters(), lr=1e-3)
        def step():
            loss = torch.nn.functional.cross_entropy(logits_of(model(x)), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        step()  # warm-up
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        if device == "cuda":
            torch.cuda.synchronize()
        ips = batch * steps / (time.perf_counter() - t0)
        rows.append({"model": name, "paper": spec.paper, "input": f"{spec.in_channels}x{s}x{s}",
                     "parameters_M": round(count_parameters(model) / 1e6, 3),
                     "gflops_per_image": round(2 * gmacs, 3),
                     "gmacs_per_image": round(gmacs, 3),  # what papers call "FLOPs"
                     f"train_images_per_s_{device}": round(ips, 1)})
        print(f"{name:20s} {rows[-1]['input']:>10s} {rows[-1]['parameters_M']:9.2f}M "
              f"{rows[-1]['gflops_per_image']:9.2f} GFLOP {ips:9.1f} img/s", flush=True)
    df = pd.DataFrame(rows)
    df["device"] = (torch.cuda.get_device_name() if device == "cuda"
                    else f"cpu ({os.cpu_count()} cores, {platform.machine()})")
    df["torch"] = torch.__version__
    path = project_path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():  # never overwrite a measurement: keep the old one beside the new
        path.rename(path.with_name(f"{path.stem}.{time.strftime('%Y%m%d-%H%M%S')}{path.suffix}"))
    df.to_csv(path, index=False)
    print(f"written: {path}")


# the book's loop under each precision setting the engine can switch: (overrides, the loop before
# the CPU defaults?). "default" is the engine's own choice on that device (bf16 autocast,
# channels-last and fused optimisers on CUDA and on CPUs with bf16 matrix units, denormals flushed
# on the CPU); "before" is the engine's CPU loop until these defaults: float32, the default memory
# format, unfused optimisers, denormals kept
VARIANTS = {"default": ([], False), "before": (["train.amp=false", "train.channels_last=false"], True),
            "fp32": (["train.amp=false", "train.channels_last=false"], False),
            "bf16": (["train.amp=true", "train.channels_last=false"], False),
            "bf16+channels_last": (["train.amp=true", "train.channels_last=true"], False),
            "compile": (["train.compile=true"], False)}

# the CPU benchmark's cases (model@input size, batch 32): the papers' 48x48 models the CPU queue
# trains, and the CPU chapter's three; stn_sr without its SR net (Qin's Base+STN rows)
CPU_CASES = ["resnet50@48", "improved_resnet50@48", "xception_separable@48", "resnet18@48", "resnet18@96",
             "stn_sr@48", "simple_cnn@48", "mini_xception@48"]
CASE_KWARGS = {"stn_sr": {"stn": True, "sr": "none"}}
SPEEDUP_TARGET, TFLOPS_TARGET = 2.0, 0.3  # the targets: x the "before" loop; resnet50@48 TFLOP/s


def _sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def book_loop(cfg, data, steps: int, before: bool = False, repeats: int = 1) -> tuple[float, float, dict]:
    """(images/s, peak GPU bytes, precision) of the engine's own training epoch on ``steps``
    batches, the best of ``repeats`` epochs: data on the device, augmentation on tensors, the
    config's precision settings (``before``: with the optimiser unfused and denormals kept, as the
    engine's CPU loop was before its CPU defaults)."""
    import dataclasses

    import torch

    from ..train.build import Setup, images_tensor
    from ..train.engine import Training, train_one_epoch

    setup = Setup.of(cfg)
    if before:
        setup = dataclasses.replace(setup, fused=False, flush_denormal=False)
    t = Training.start(cfg, data.num_classes, setup)
    step_model = torch.compile(t.model) if setup.compile else t.model
    train = data.select("train")
    images, targets = images_tensor(train, setup.device), torch.from_numpy(train.targets).to(setup.device)
    warm = 2 * cfg.train.batch_size  # warm-up: kernels, autotuning, compilation
    train_one_epoch(t, images[:warm], targets[:warm], 0, model=step_model)
    n = steps * cfg.train.batch_size
    if setup.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    best = float("inf")
    for epoch in range(1, repeats + 1):
        _sync(setup.device.type)
        t0 = time.perf_counter()
        train_one_epoch(t, images[:n], targets[:n], epoch, model=step_model)
        _sync(setup.device.type)
        best = min(best, time.perf_counter() - t0)
    peak = torch.cuda.max_memory_allocated() if setup.device.type == "cuda" else float("nan")
    return n / best, peak, setup.precision


def plain_loop(name: str, size: int, in_channels: int, folder: str, batch: int, steps: int, device: str,
               workers: int, kwargs: dict | None = None) -> tuple[float, float]:
    """(images/s, peak GPU bytes) of the loop a user would write: a DataLoader over the image files
    with PIL / torchvision transforms, float32, the default memory format."""
    import torch
    from torchvision import datasets, transforms

    from ..models import create_model
    from ..train.losses import logits_of

    tf = transforms.Compose([transforms.Grayscale(in_channels), transforms.Resize(size),
                             transforms.RandomHorizontalFlip(), transforms.RandomRotation(30), transforms.ToTensor(),
                             transforms.Normalize([0.449] * in_channels, [0.226] * in_channels)])
    loader = torch.utils.data.DataLoader(datasets.ImageFolder(folder, tf), batch_size=batch, shuffle=True,
                                         num_workers=workers, pin_memory=device == "cuda", drop_last=True)
    model = create_model(name, input_size=size, **(kwargs or {})).to(device).train()
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    it = iter(loader)

    def step():
        x, y = next(it)
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        loss = torch.nn.functional.cross_entropy(logits_of(model(x)), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    step()
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    return batch * steps / (time.perf_counter() - t0), (torch.cuda.max_memory_allocated() if device == "cuda"
                                                         else float("nan"))


def _image_folder(data, folder: str, n: int) -> str:
    """``n`` training faces of ``data`` written as PNG files in class folders (what a plain loop reads)."""
    from PIL import Image

    train = data.select("train")
    for i in range(min(n, len(train))):
        d = os.path.join(folder, str(train.targets[i]))
        os.makedirs(d, exist_ok=True)
        Image.fromarray(train.images[i]).save(os.path.join(d, f"{i}.png"))
    return folder


def _case(text, cuda: bool, size: int | None) -> tuple[str, int, dict, dict]:
    """``name@size`` (or a registry name: its own input on CUDA, 48 on the CPU, or ``--input``), or
    a ``(name, size, kwargs[, loss weights])`` case as it is: (name, size, model kwargs, the extra
    loss terms a run trains with: they decide what a step trains, e.g. EDSR's own ``sr_l1``)."""
    from ..models import get_spec

    if not isinstance(text, str):
        return (*text, {}) if len(text) == 3 else tuple(text)
    name, _, at = text.partition("@")
    size = int(at) if at else size or (get_spec(name).input_size if cuda else 48)
    return name, size, CASE_KWARGS.get(name, {}), {}


def _label(name: str, size: int, kwargs: dict) -> str:
    extra = {k: v for k, v in kwargs.items() if CASE_KWARGS.get(name, {}).get(k) != v}
    return f"{name}@{size}" + "".join(f"+{k}={v}" for k, v in sorted(extra.items()))


def bench_train(device: str, names: list[str] | None, size: int | None, batch: int | None, steps: int | None,
                variants: list[str] | None, eval_batches: list[int], out: str | None, data_dir: str | None,
                plain: bool = True, merge: bool = False, repeats: int | None = None) -> None:
    """The book's training loop per model and precision variant: images/s, achieved TFLOP/s and, on
    the CPU, its share of this CPU's matrix-multiply peak measured in the same call (float32 peak
    for float32 variants, bf16 peak for bf16 ones); the plain DataLoader loop beside it; the
    speed-up of the engine's defaults over its float32 loop before them, against the targets. With
    ``merge`` the cases measured join the existing CSV (:func:`merged`). Each figure is the best of
    ``repeats`` timed epochs of ``steps`` batches (default: 3 on the CPU, 1 on a GPU)."""
    import platform

    import pandas as pd
    import torch

    from .. import data as fer_data
    from ..config import load_config
    from ..models import forward_gmacs
    from ..paths import project_path
    from ..runs.records import device_info
    from ..train.build import Setup, build_model, input_shape
    from ..train.engine import DivergedError
    from ..train.evaluate import forward
    from ..train.hardware import cpu_info, matmul_peak
    from .speed import bench_path

    cuda = device == "cuda"
    if cuda and not torch.cuda.is_available():
        raise SystemExit("error: --device cuda but no CUDA device is visible; use --device cpu")
    cases = [_case(n, cuda, size) for n in (names or (["resmaskingnet", "resnet34"] if cuda else CPU_CASES))]
    variants = variants or (["default", "fp32", "bf16", "bf16+channels_last", "compile"] if cuda
                            else ["before", "default"])
    batch, steps = batch or (48 if cuda else 32), steps or (20 if cuda else 8)
    repeats = repeats or (1 if cuda else 3)
    peaks = {}
    if not cuda:
        peaks = {dt: matmul_peak(dt) for dt in ("float32", "bfloat16")}
        info = cpu_info()
        print(f"CPU: {info['cpu']}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads, bf16 matrix "
              f"units: {', '.join(info['cpu_bf16_units']) or 'none'}; matrix-multiply peak (2048x2048): float32 "
              f"{peaks['float32']:.2f} TFLOP/s, bf16 {peaks['bfloat16']:.2f} TFLOP/s", flush=True)
    source = "fer2013" if data_dir or os.environ.get("FER_DATA_DIR") else "synthetic"
    data = fer_data.load(source, data_dir, synthetic_size=(max(batch * (steps + 2), 256), 64, 64))
    workers = min(8, os.cpu_count() or 1)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = _image_folder(data, tmp, batch * (steps + 2)) if plain else None
        name, s, case_kwargs, _ = cases[0]  # warm-up of the process (allocator, kernels): the first case was slower
        book_loop(load_config(None, ["train.progress=false", f"train.device={device}", f"model.name={name}",
                                     f"model.input_size={s}", f"model.kwargs={json.dumps(case_kwargs)}",
                                     f"train.batch_size={batch}", "train.optimizer.lr=0.001"]), data, 2)
        for name, s, case_kwargs, loss in cases:
            label = _label(name, s, case_kwargs) + "".join(f"+loss:{k}" for k in sorted(loss))
            kwargs = json.dumps(case_kwargs).replace(" ", "")
            base = ["train.progress=false", f"train.device={device}", f"model.name={name}", f"model.input_size={s}",
                    f"model.kwargs={kwargs}", f"train.batch_size={batch}", "train.optimizer.name=adam",
                    "train.optimizer.lr=0.001",  # the step's cost is the same at any rate; at 0.01 Adam diverged
                    "augment.crop=random", "augment.rotation=10", f"loss.weights={loss_key(loss)}"]
            cfg = load_config(None, base)
            setup = Setup.of(cfg)
            model = build_model(cfg, data.num_classes).to(setup.device)
            gmacs = forward_gmacs(model, s, input_shape(cfg)[1])
            flops = 6e9 * gmacs  # a training step: the forward pass and a backward pass of twice its cost
            for variant in variants:
                overrides, before = VARIANTS[variant]
                try:
                    ips, peak, precision = book_loop(load_config(None, [*base, *overrides]), data, steps, before,
                                                     repeats=repeats)
                except DivergedError as e:  # one case lost, not the measurement of the others
                    print(f"{label:22s} book ({variant:18s}) not measured: {str(e).split('.')[0]}", flush=True)
                    continue
                tflops = ips * flops / 1e12
                limit = peaks.get("bfloat16" if precision["autocast"] else "float32")
                rows.append({"model": name, "case": label, "input": s, "gmacs_per_image": round(gmacs, 4),
                             "loss": loss_key(loss), "kwargs": kwargs_key(case_kwargs),
                             "loop": f"book ({variant})", "images_per_s": round(ips, 1),
                             "tflops": round(tflops, 3),
                             "peak_tflops": round(limit, 3) if limit else None,
                             "share_of_peak": round(tflops / limit, 3) if limit else None,
                             "peak_gb": round(peak / 2**30, 2), "precision": json.dumps(precision)})
                share = f"{100 * tflops / limit:5.1f}% of peak" if limit else ""
                print(f"{label:22s} book ({variant:18s}) {ips:8.1f} img/s {tflops:7.3f} TFLOP/s {share} "
                      f"peak {rows[-1]['peak_gb']:6.2f} GB", flush=True)
            if plain:
                ips, peak = plain_loop(name, s, setup.in_channels, folder, batch, steps, device, workers, case_kwargs)
                rows.append({"model": name, "case": label, "input": s, "loop": "plain (DataLoader + PIL, fp32)",
                             "images_per_s": round(ips, 1), "tflops": round(ips * flops / 1e12, 3),
                             "peak_gb": round(peak / 2**30, 2), "precision": "float32"})
                print(f"{label:22s} {'plain (DataLoader + PIL, fp32)':27s} {ips:8.1f} img/s "
                      f"{rows[-1]['tflops']:7.3f} TFLOP/s", flush=True)
            test = data.select("test").subsample({"test": 1024}, seed=0)
            setup.apply()
            for eb in eval_batches:
                forward(model, test, setup, eb)  # warm-up
                _sync(device)
                t0 = time.perf_counter()
                forward(model, test, setup, eb)
                _sync(device)
                rows.append({"model": name, "case": label, "input": s, "loop": f"evaluation (batch {eb})",
                             "images_per_s": round(len(test) / (time.perf_counter() - t0), 1)})
    df = pd.DataFrame(rows)
    if {"before", "default"} <= set(variants):
        print(targets(df).to_string(index=False))
    info = device_info(torch.device(device))
    df["device"] = info.get("gpu", f"cpu ({os.cpu_count()} cores, {platform.machine()})")
    df["cpu"], df["cpu_bf16_units"] = info["cpu"], ",".join(info["cpu_bf16_units"]) or "none"
    df["torch_threads"], df["torch"] = torch.get_num_threads(), torch.__version__
    df["data"], df["batch"], df["steps"], df["repeats"] = source, batch, steps, repeats
    save(df, project_path(out) if out else bench_path(device), merge)


def save(df, path: Path, merge: bool) -> Path:
    """Write the benchmark table ``df`` to ``path``, merged into the rows there (:func:`merged`) or
    in their place; never losing a measurement: a file whose rows would go is kept beside the new one
    (``<name>.<time>.csv``), a merge that only adds rows keeps none."""
    import pandas as pd

    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        old = pd.read_csv(path)
        new = merged(old, df) if merge else df
        if len(new) < len(old) + len(df):  # rows replaced (or, without merge, the whole file)
            path.rename(path.with_name(f"{path.stem}.{time.strftime('%Y%m%d-%H%M%S')}{path.suffix}"))
        df = new
    df.to_csv(path, index=False)
    print(f"written: {path}")
    return path


def merged(old, new):
    """The benchmark table ``old`` with ``new``'s measurements in it: a case measured again on the
    same machine at the same batch size replaces its rows; every other row stays (another batch size
    or another machine is another row: run estimates read their own)."""
    import pandas as pd

    from .speed import hosts

    if "case" not in old:
        return new
    again = old["case"].isin(set(new["case"])) & hosts(old).isin(set(hosts(new)))
    if "batch" in old:
        again &= old["batch"].isin(set(new["batch"]))
    return pd.concat([old[~again], new], ignore_index=True)


def targets(df):
    """Per case: the engine's default loop against its float32 loop before the CPU defaults, with
    the speed-up target (x2) and, for resnet50@48, the TFLOP/s target (0.3)."""
    import pandas as pd

    rows = []
    for case, g in df.groupby("case", sort=False):
        loops = g.set_index("loop")
        if "book (before)" not in loops.index or "book (default)" not in loops.index:
            continue
        before, now = loops.loc["book (before)"], loops.loc["book (default)"]
        ratio = now["images_per_s"] / before["images_per_s"]
        row = {"case": case, "before (img/s)": before["images_per_s"], "default (img/s)": now["images_per_s"],
               "speed-up": round(ratio, 2), "TFLOP/s": now["tflops"], "share of peak": now.get("share_of_peak"),
               "target": f">= {SPEEDUP_TARGET:g}x", "met": bool(ratio >= SPEEDUP_TARGET)}
        if case == "resnet50@48":
            row["target"] += f", >= {TFLOPS_TARGET:g} TFLOP/s"
            row["met"] = row["met"] and bool(now["tflops"] >= TFLOPS_TARGET)
        rows.append(row)
    return pd.DataFrame(rows)


def bench_attention(faces: int, names: list[str] | None = None) -> None:
    """Time the attention record of an (untrained: the cost does not depend on the weights) model
    on ``faces`` synthetic test faces: the maps of every method, then the curves and the sanity
    check, in the precision the engine trains that model in here, and the same seconds as training
    images at the loop's measured speed (``results/bench/train_<device>.csv``): a run that trains
    on ten times that many images (epochs x faces) spends under 10% of its time on the record.
    ``names``: ``model@size`` cases (default: ResNet-18 at 48 on the CPU, ResMaskingNet at 224 on a
    GPU)."""
    import torch

    from .. import data as fer_data
    from ..config import load_config
    from ..explain import attention, attribution
    from ..models import create_model
    from ..train.build import Setup
    from . import slices, speed

    test = fer_data.load("synthetic", synthetic_size=(10, 10, max(faces, 64))).select("test")
    cuda = torch.cuda.is_available()
    cases = ([(n, s, "cuda" if cuda else "cpu") for n, s, *_ in (_case(x, cuda, None) for x in names)] if names else
             [("resnet18", 48, "cpu")] + ([("resmaskingnet", 224, "cuda")] if cuda else []))
    print(f"{'model':18s} {'input':>5s} {'device':>6s} {'faces':>5s} {'maps (s)':>9s} {'all (s)':>8s} "
          f"{'= training images':>17s}  targets: ResNet-18 on the CPU < 30 s for the maps; the record under 10% "
          f"of a paper-profile run (a run's own share: provenance attention_s / wall_time_s)")
    for name, size, device in cases:
        setup = Setup.of(load_config(None, [f"model.name={name}", f"model.input_size={size}",
                                            f"train.device={device}"]))
        model = create_model(name, input_size=size, **CASE_KWARGS.get(name, {})).to(setup.device).eval()
        if setup.channels_last:
            model = model.to(memory_format=torch.channels_last)
        ids = attention.sample(test, faces)
        x = torch.from_numpy(test.images[ids]).float().div(255).unsqueeze(1)
        with torch.no_grad():
            target = attribution.OnFaces(model, size, setup.in_channels)(x.to(setup.device)).argmax(1)
        t0 = time.perf_counter()
        attribution.explain_batch(model, name, setup, x, target)
        maps_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        attention.compute(model, name, setup, test, n=faces)
        all_s = time.perf_counter() - t0
        gmacs = slices.gmacs_per_image(name, size, setup.in_channels, json.dumps(CASE_KWARGS.get(name, {})))
        ips = speed.training_images_per_s(speed.measured(device), name, gmacs)
        same = f"{all_s * ips[0]:17,.0f}" if ips else f"{'(no bench train)':>17s}"
        print(f"{name:18s} {size:5d} {device:>6s} {faces:5d} {maps_s:9.1f} {all_s:8.1f} {same}", flush=True)
    if not torch.cuda.is_available():
        print("ResMaskingNet at 224 on a GPU: no GPU here (run the same command on one)")


def _batch_sizes(text: str) -> list[int]:
    """``--eval-batches``: positive batch sizes, comma-separated, or 'none'."""
    if text.strip().lower() == "none":
        return []
    try:
        sizes = [int(b) for b in text.split(",")]
    except ValueError:
        sizes = []
    if not sizes or min(sizes) <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give positive batch sizes, comma-separated (256,1024), or none")
    return sizes


def measure(parts, data_dir: str | None, repeats: int | None = None, images: int = 256) -> None:
    """``run --list --measure`` (and ``queue --status --measure``: one timed epoch of about 128
    images): the book loop's speed for every model of the slices ``parts`` at the batch size each
    trains at (a timed epoch of about ``images`` images, at least 8 batches for ``images`` 256, the
    best of ``repeats``), into results/bench/train_<device>.csv; a model several slices share is
    measured once, with the kwargs of its runs (a run that loads trained weights with what they do
    to its step: :func:`~fer_core.schedule.speed.bench_kwargs`)."""
    from ..train.build import input_shape, resolve_device
    from . import slices

    cases, device = {}, "cpu"
    for sl in parts:
        for spec in slices.runs_of(sl):
            cfg = spec.cfg
            case = (cfg.model.name, input_shape(cfg)[0], json.dumps(bench_kwargs(cfg.model.kwargs)),
                    loss_key(cfg.loss.weights))
            cases.setdefault(cfg.train.batch_size, {})[case] = cfg
            device = resolve_device(cfg.train.device).type
    for batch, at_batch in sorted(cases.items()):
        bench_train(device, [(n, s, json.loads(k), json.loads(loss)) for n, s, k, loss in at_batch], None, batch,
                    max(images // 32, images // batch),
                    ["default"], [], None, data_dir, plain=False, merge=True, repeats=repeats)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fer_core.schedule.bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="what", required=True)
    d = sub.add_parser("data", help="load times of every source, cold and cached")
    d.add_argument("--data-dir", default=None)
    m = sub.add_parser("models", help="parameters, FLOPs and training images/s of every model")
    m.add_argument("--models", default=None, help="comma-separated registry names (default: all)")
    m.add_argument("--batch", type=int, default=8)
    m.add_argument("--steps", type=int, default=3)
    m.add_argument("--size", type=int, default=None, help="input size for all (default: each model's own)")
    m.add_argument("--out", default=f"{BENCH}/models.csv")
    t = sub.add_parser("train", help="training images/s of the book's loop against a plain DataLoader loop")
    t.add_argument("--device", default="cuda" if __import__("torch").cuda.is_available() else "cpu")
    t.add_argument("--models", default=None, help="comma-separated, name or name@input (default: resmaskingnet,"
                                                  f"resnet34 on CUDA, {','.join(CPU_CASES)} on the CPU)")
    t.add_argument("--input", type=int, default=None, help="input size (default: the model's on CUDA, 48 on the CPU)")
    t.add_argument("--batch", type=int, default=None)
    t.add_argument("--steps", type=int, default=None)
    t.add_argument("--variants", default=None,
                   help=f"book-loop variants among {','.join(VARIANTS)} (default: before,default on the CPU; "
                        f"default,fp32,bf16,bf16+channels_last,compile on CUDA)")
    t.add_argument("--no-plain", action="store_true", help="skip the plain DataLoader loop")
    t.add_argument("--merge", action="store_true",
                   help="replace the measured cases' rows at this batch size in the CSV, keep the rest")
    t.add_argument("--eval-batches", type=_batch_sizes, default="256,1024",
                   help="evaluation batch sizes to time, comma-separated ('none': no evaluation rows)")
    t.add_argument("--data-dir", default=None, help="FER2013 for the data (default: FER_DATA_DIR, else synthetic)")
    t.add_argument("--out", default=None, help="default: results/bench/train_<device>.csv")
    a = sub.add_parser("attention", help="seconds of the attention record (maps, curves, sanity check)")
    a.add_argument("--faces", type=int, default=32)
    a.add_argument("--models", default=None, help="comma-separated name@input (default: resnet18@48; "
                                                  "resmaskingnet@224 on a GPU)")
    args = p.parse_args(argv)
    if args.what == "data":
        bench_data(args.data_dir)
    elif args.what == "models":
        bench_models(args.models.split(",") if args.models else None, args.batch, args.steps, args.out, args.size)
    elif args.what == "attention":
        bench_attention(args.faces, args.models.split(",") if args.models else None)
    elif args.what == "train":
        bench_train(args.device, args.models.split(",") if args.models else None, args.input, args.batch, args.steps,
                    args.variants.split(",") if args.variants else None, args.eval_batches,
                    args.out, args.data_dir, plain=not args.no_plain, merge=args.merge)
    return 0


if __name__ == "__main__":
    sys.exit(main())
