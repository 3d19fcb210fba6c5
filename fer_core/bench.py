"""Benchmarks that print figures (speed targets live here, not in timed tests).

    python -m fer_core.bench data [--data-dir D]    load times: first (decode) and cached
    python -m fer_core.bench models [--models a,b] [--batch 8] [--steps 3] [--out CSV]
                                                    parameters, FLOPs, CPU training images/s
    python -m fer_core.bench train [--device cuda] [--models a,b] [--input 224] [--batch 48] [--steps 20]
                                                    training images/s, TFLOP/s and peak memory of the
                                                    book's loop (precision variants) against a plain
                                                    DataLoader loop, and evaluation images/s per batch
                                                    size -> results/bench/train_<device>.csv
    python -m fer_core.bench attention [--faces 32]  seconds of every attribution method, the
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


def bench_data(data_dir: str | None) -> None:
    from . import data as fer_data

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
    from torch.utils.flop_counter import FlopCounterMode

    from .losses import logits_of
    from .models import REGISTRY, count_parameters, create_model
    from .paths import project_path

    device = "cuda" if torch.cuda.is_available() else "cpu"
    rows = []
    for name in names or sorted(REGISTRY):
        spec = REGISTRY[name]
        s = size or spec.input_size
        model = create_model(name, input_size=s).to(device)
        x = torch.randn(batch, spec.in_channels, s, s, device=device)
        y = torch.randint(0, 7, (batch,), device=device)
        with FlopCounterMode(display=False) as counter:
            model.eval()
            with torch.no_grad():
                model(x[:1])
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
                     "gflops_per_image": round(counter.get_total_flops() / 1e9, 3),
                     "gmacs_per_image": round(counter.get_total_flops() / 2e9, 3),  # what papers call "FLOPs"
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


# the book's loop under each precision setting the engine can switch; "default" is the engine's own
# choice on that device (bf16 autocast and channels-last on CUDA, float32 on the CPU)
VARIANTS = {"default": [], "fp32": ["train.amp=false", "train.channels_last=false"],
            "bf16": ["train.amp=true", "train.channels_last=false"], "bf16+channels_last": ["train.amp=true",
                                                                                       "train.channels_last=true"],
            "compile": ["train.compile=true"]}


def _sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def _flops_per_image(model, x, y) -> float:
    """Forward + backward FLOPs of one training step, per image (torch's FLOP counter)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from .losses import logits_of

    with FlopCounterMode(display=False) as counter:
        torch.nn.functional.cross_entropy(logits_of(model(x)).float(), y).backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops() / len(x)


def book_loop(cfg, data, steps: int) -> tuple[float, float]:
    """(images/s, peak GPU bytes) of the engine's own training epoch on ``steps`` batches: data on
    the device, augmentation on tensors, the config's precision settings."""
    import torch

    from .engine import Setup, _images_tensor, _train_epoch, build_model, build_optimizer
    from .losses import Criterion

    setup = Setup.of(cfg)
    model = build_model(cfg, data.num_classes).to(setup.device)
    if setup.channels_last:
        model = model.to(memory_format=torch.channels_last)
    step_model = torch.compile(model) if setup.compile else model
    opt, criterion = build_optimizer(cfg, model), Criterion(cfg.loss)
    train = data.select("train")
    images, targets = _images_tensor(train, setup.device), torch.from_numpy(train.targets).to(setup.device)
    _train_epoch(cfg, setup, step_model, opt, criterion, images[:2 * cfg.train.batch_size],
                 targets[:2 * cfg.train.batch_size], 0)  # warm-up: kernels, autotuning, compilation
    n = steps * cfg.train.batch_size
    if setup.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    _sync(setup.device.type)
    t0 = time.perf_counter()
    _train_epoch(cfg, setup, step_model, opt, criterion, images[:n], targets[:n], 1)
    _sync(setup.device.type)
    peak = torch.cuda.max_memory_allocated() if setup.device.type == "cuda" else float("nan")
    return n / (time.perf_counter() - t0), peak


def plain_loop(name: str, size: int, in_channels: int, folder: str, batch: int, steps: int, device: str,
               workers: int) -> tuple[float, float]:
    """(images/s, peak GPU bytes) of the loop a user would write: a DataLoader over the image files
    with PIL / torchvision transforms, float32, the default memory format."""
    import torch
    from torchvision import datasets, transforms

    from .losses import logits_of
    from .models import create_model

    tf = transforms.Compose([transforms.Grayscale(in_channels), transforms.Resize(size),
                             transforms.RandomHorizontalFlip(), transforms.RandomRotation(30), transforms.ToTensor(),
                             transforms.Normalize([0.449] * in_channels, [0.226] * in_channels)])
    loader = torch.utils.data.DataLoader(datasets.ImageFolder(folder, tf), batch_size=batch, shuffle=True,
                                         num_workers=workers, pin_memory=device == "cuda", drop_last=True)
    model = create_model(name, input_size=size).to(device).train()
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


def bench_train(device: str, names: list[str] | None, size: int | None, batch: int | None, steps: int | None,
                variants: list[str], eval_batches: list[int], out: str | None, data_dir: str | None) -> None:
    import platform

    import pandas as pd
    import torch

    from . import data as fer_data
    from .config import load_config
    from .engine import Setup, _forward, build_model, input_shape
    from .models import get_spec
    from .paths import project_path
    from .records import device_info

    cuda = device == "cuda"
    if cuda and not torch.cuda.is_available():
        raise SystemExit("error: --device cuda but no CUDA device is visible; use --device cpu")
    names = names or (["resmaskingnet", "resnet34"] if cuda else ["simple_cnn", "resnet18"])
    batch, steps = batch or (48 if cuda else 32), steps or (20 if cuda else 4)
    source = "fer2013" if data_dir or os.environ.get("FER_DATA_DIR") else "synthetic"
    data = fer_data.load(source, data_dir, synthetic_size=(max(batch * (steps + 2), 256), 64, 64))
    workers = min(8, os.cpu_count() or 1)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = _image_folder(data, tmp, batch * (steps + 2))
        for name in names:
            s = size or (get_spec(name).input_size if cuda else 48)
            base = ["train.progress=false", f"train.device={device}", f"model.name={name}", f"model.input_size={s}",
                    f"train.batch_size={batch}", "train.optimizer.name=sgd", "augment.crop=none", "augment.rotation=30"]
            cfg = load_config(None, base)
            setup = Setup.of(cfg)
            model = build_model(cfg, data.num_classes).to(setup.device)
            x = torch.randn(2, input_shape(cfg)[1], s, s, device=setup.device)
            flops = _flops_per_image(model, x, torch.tensor([0, 1], device=setup.device))
            for variant in variants:
                if variant == "compile" and not cuda:
                    continue  # compiling for a CPU benchmark takes longer than the benchmark
                v_cfg = load_config(None, [*base, *VARIANTS[variant]])
                ips, peak = book_loop(v_cfg, data, steps)
                rows.append({"model": name, "input": s, "loop": f"book ({variant})", "images_per_s": round(ips, 1),
                             "tflops": round(ips * flops / 1e12, 3), "peak_gb": round(peak / 2**30, 2),
                             "precision": json.dumps(Setup.of(v_cfg).precision)})
                print(f"{name:14s} {s:4d} book ({variant:18s}) {ips:9.1f} img/s {rows[-1]['tflops']:8.3f} TFLOP/s "
                      f"peak {rows[-1]['peak_gb']:6.2f} GB", flush=True)
            ips, peak = plain_loop(name, s, setup.in_channels, folder, batch, steps, device, workers)
            rows.append({"model": name, "input": s, "loop": "plain (DataLoader + PIL, fp32)",
                         "images_per_s": round(ips, 1), "tflops": round(ips * flops / 1e12, 3),
                         "peak_gb": round(peak / 2**30, 2), "precision": "float32"})
            print(f"{name:14s} {s:4d} {'plain (DataLoader + PIL, fp32)':27s} {ips:9.1f} img/s "
                  f"{rows[-1]['tflops']:8.3f} TFLOP/s peak {rows[-1]['peak_gb']:6.2f} GB", flush=True)
            book = max(r["images_per_s"] for r in rows if r["model"] == name and r["loop"].startswith("book"))
            print(f"{name:14s} book / plain: {book / ips:.2f}x", flush=True)
            test = data.select("test")
            for eb in eval_batches:
                _forward(model, test, setup, eb)  # warm-up
                _sync(device)
                t0 = time.perf_counter()
                _forward(model, test, setup, eb)
                _sync(device)
                rows.append({"model": name, "input": s, "loop": f"evaluation (batch {eb})",
                             "images_per_s": round(len(test) / (time.perf_counter() - t0), 1)})
                print(f"{name:14s} {s:4d} evaluation, batch {eb:5d} {rows[-1]['images_per_s']:9.1f} img/s", flush=True)
    df = pd.DataFrame(rows)
    info = device_info(torch.device(device))
    df["device"] = info.get("gpu", f"cpu ({os.cpu_count()} cores, {platform.machine()})")
    df["torch"], df["data"] = torch.__version__, source
    path = project_path(out or f"results/bench/train_{device}.csv")
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():  # never overwrite a measurement: keep the old one beside the new
        path.rename(path.with_name(f"{path.stem}.{time.strftime('%Y%m%d-%H%M%S')}{path.suffix}"))
    df.to_csv(path, index=False)
    print(f"written: {path}")


def bench_attention(faces: int) -> None:
    """Time the attention record of an (untrained: the cost does not depend on the weights) model
    on ``faces`` synthetic test faces: the maps of every method, then the curves and the sanity check."""
    import torch

    from . import attention, attribution
    from . import data as fer_data
    from .engine import Setup
    from .models import create_model, get_spec

    test = fer_data.load("synthetic", synthetic_size=(10, 10, max(faces, 64))).select("test")
    cases = [("resnet18", 48, "cpu")] + ([("resmaskingnet", 224, "cuda")] if torch.cuda.is_available() else [])
    print(f"{'model':14s} {'input':>7s} {'device':>6s} {'faces':>5s} {'maps (s)':>9s} {'all (s)':>8s}  "
          f"targets: ResNet-18 on the CPU < 30 s for the maps; ResMaskingNet on a GPU: a few seconds")
    for name, size, device in cases:
        setup = Setup(torch.device(device), size, get_spec(name).in_channels, False, False)
        model = create_model(name, input_size=size).to(setup.device).eval()
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
        print(f"{name:14s} {size:7d} {device:>6s} {faces:5d} {maps_s:9.1f} {all_s:8.1f}", flush=True)
    if not torch.cuda.is_available():
        print("ResMaskingNet at 224 on a GPU: no GPU here (run the same command on one)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fer_core.bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="what", required=True)
    d = sub.add_parser("data", help="load times of every source, cold and cached")
    d.add_argument("--data-dir", default=None)
    m = sub.add_parser("models", help="parameters, FLOPs and training images/s of every model")
    m.add_argument("--models", default=None, help="comma-separated registry names (default: all)")
    m.add_argument("--batch", type=int, default=8)
    m.add_argument("--steps", type=int, default=3)
    m.add_argument("--size", type=int, default=None, help="input size for all (default: each model's own)")
    m.add_argument("--out", default="results/bench/models.csv")
    t = sub.add_parser("train", help="training images/s of the book's loop against a plain DataLoader loop")
    t.add_argument("--device", default="cuda" if __import__("torch").cuda.is_available() else "cpu")
    t.add_argument("--models", default=None, help="comma-separated (default: resmaskingnet,resnet34 on CUDA, "
                                                  "simple_cnn,resnet18 on the CPU)")
    t.add_argument("--input", type=int, default=None, help="input size (default: the model's on CUDA, 48 on the CPU)")
    t.add_argument("--batch", type=int, default=None)
    t.add_argument("--steps", type=int, default=None)
    t.add_argument("--variants", default="default,fp32,bf16,bf16+channels_last,compile",
                   help=f"book-loop variants among {','.join(VARIANTS)} (compile: CUDA only)")
    t.add_argument("--eval-batches", default="256,1024")
    t.add_argument("--data-dir", default=None, help="FER2013 for the data (default: FER_DATA_DIR, else synthetic)")
    t.add_argument("--out", default=None, help="default: results/bench/train_<device>.csv")
    a = sub.add_parser("attention", help="seconds of the attention record (maps, curves, sanity check)")
    a.add_argument("--faces", type=int, default=32)
    args = p.parse_args(argv)
    if args.what == "data":
        bench_data(args.data_dir)
    elif args.what == "models":
        bench_models(args.models.split(",") if args.models else None, args.batch, args.steps, args.out, args.size)
    elif args.what == "attention":
        bench_attention(args.faces)
    elif args.what == "train":
        bench_train(args.device, args.models.split(",") if args.models else None, args.input, args.batch, args.steps,
                    args.variants.split(","), [int(b) for b in args.eval_batches.split(",")], args.out, args.data_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
