"""What this machine's processor can do: its name, its bf16 matrix units, and its measured peak.

The engine's CPU defaults follow from :func:`cpu_bf16_units`: on a CPU with bf16 matrix units
(Intel AMX-BF16, or the AVX512-BF16 dot-product instructions) training runs under bf16 autocast
with channels-last tensors, elsewhere in float32. :func:`matmul_peak` measures the ceiling a
training step is compared with (``python -m fer_core.schedule.bench train``).
"""
from __future__ import annotations

import os
import platform
import time
from functools import lru_cache

#: the CPU flags (Linux ``/proc/cpuinfo`` names) of units that multiply bf16 matrices natively
BF16_FLAGS = ("amx_bf16", "avx512_bf16")


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The processor's feature flags (``/proc/cpuinfo``); empty where the system does not list them."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


@lru_cache(maxsize=1)
def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_bf16_units() -> list[str]:
    """The bf16 matrix units of this CPU among :data:`BF16_FLAGS` (``[]``: none, train in float32)."""
    flags = cpu_flags()
    return [f for f in BF16_FLAGS if f in flags]


def cpu_info() -> dict:
    """For run provenance and benchmark tables: the CPU's name and its bf16 units."""
    return {"cpu": cpu_name(), "cpu_bf16_units": cpu_bf16_units()}


def matmul_peak(dtype: str = "float32", n: int = 2048, seconds: float = 1.0) -> float:
    """Measured TFLOP/s of an ``n x n`` matrix multiply in ``dtype`` on this CPU (best of repeated
    runs for about ``seconds``): the limit a training step's achieved TFLOP/s is compared with."""
    import torch

    dt = getattr(torch, dtype)
    a, b = torch.randn(n, n).to(dt), torch.randn(n, n).to(dt)
    torch.mm(a, b)  # warm-up: kernel selection
    best, spent = float("inf"), 0.0
    while spent < seconds:
        t0 = time.perf_counter()
        torch.mm(a, b)
        t = time.perf_counter() - t0
        best, spent = min(best, t), spent + t
    return 2 * n ** 3 / best / 1e12


def nice_the_session_too(autogroup: str = "/proc/self/autogroup") -> int | None:
    """Give this process's ``nice`` to its session's scheduling group as well; returns the niceness
    so given, or None where nothing was changed.

    Linux's autogroup scheduler shares the cores between sessions first and honours ``nice`` only
    within one: the CPU queue, started with ``setsid nohup nice -n 19`` in a session of its own, still
    took half the cores from a test suite beside it (which then ran several times slower). Writing
    the niceness into ``/proc/self/autogroup`` lowers the whole session's share. Only a session
    leader does it (its session is its own: a command typed in a terminal leaves the terminal's
    group as it is), and only where the kernel offers the file."""
    niceness = os.nice(0)
    if niceness <= 0 or os.getsid(0) != os.getpid():
        return None
    try:
        with open(autogroup, "w") as f:
            f.write(str(niceness))
    except OSError:
        return None
    return niceness
