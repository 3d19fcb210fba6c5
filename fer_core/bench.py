"""Benchmarks that print figures (speed targets live here, not in timed tests).

    python -m fer_core.bench data [--data-dir D]    load times: first (decode) and cached
    python -m fer_core.bench models [--models a,b] [--batch 8] [--steps 3] [--out CSV]
                                                    parameters, FLOPs, CPU training images/s
"""
from __future__ import annotations

import argparse
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
    df["device"] = torch.cuda.get_device_name() if device == "cuda" else f"cpu ({os.cpu_count()} cores, {platform.machine()})"
    df["torch"] = torch.__version__
    path = project_path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():  # never overwrite a measurement: keep the old one beside the new
        path.rename(path.with_name(f"{path.stem}.{time.strftime('%Y%m%d-%H%M%S')}{path.suffix}"))
    df.to_csv(path, index=False)
    print(f"written: {path}")


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
    args = p.parse_args(argv)
    if args.what == "data":
        bench_data(args.data_dir)
    elif args.what == "models":
        bench_models(args.models.split(",") if args.models else None, args.batch, args.steps, args.out, args.size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
