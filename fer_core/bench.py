"""Benchmarks that print figures (speed targets live here, not in timed tests).

    python -m fer_core.bench data [--data-dir D]    load times: first (decode) and cached
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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fer_core.bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="what", required=True)
    d = sub.add_parser("data", help="load times of every source, cold and cached")
    d.add_argument("--data-dir", default=None)
    args = p.parse_args(argv)
    if args.what == "data":
        bench_data(args.data_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
