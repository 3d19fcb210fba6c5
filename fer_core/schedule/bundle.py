"""An offline bundle: everything a GPU node without internet needs to run a slice of the book.

    python -m fer_core bundle OUT --python 3.12 --platform manylinux_2_28_x86_64 [--data fer2013,ckplus]
                                  [--skip numpy,pandas,...] [--data-dir D]

``OUT/`` holds

- ``src/``: the project's source (``fer_core``, ``params``, the claims), run from there;
- ``wheels/``: a wheel of every runtime dependency of ``fer_core`` except torch and torchvision (and
  what they pull in: the node's own PyTorch is used, never replaced), for the node's Python and
  platform, at the versions pinned here; ``--skip`` leaves out packages the node already has;
- ``data/<set>.tar.gz``: the data sets, packed in the layouts the book reads;
- ``run.sh``: installs the wheels into ``OUT/site`` (``pip --no-index --no-deps --target``: no network,
  nothing of the node's Python touched), unpacks the data once, and runs
  ``python -m fer_core run`` with its arguments (a slice; ``--time-limit`` for a job's wall clock).

Its results land in ``OUT/src/results/`` (records and ledger): copy that folder back into the
project's ``results/`` and build the book.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tarfile
from importlib import metadata
from pathlib import Path

from ..paths import ROOT

#: torch, torchvision and everything only they pull in come from the node
NODE_PROVIDES = ("torch", "torchvision")
#: what fer_core needs at run time (pyproject.toml's dependencies, torch aside)
RUNTIME = ("numpy", "pandas", "scikit-learn", "pillow", "pyyaml", "pydantic", "tqdm", "plotly", "captum", "timm",
           "pytorchcv")
SOURCES = ("fer_core", "params", "book/claims.csv", "pyproject.toml", "README.md")
DATA = {"fer2013": ("fer2013",), "ckplus": ("ckplus/CK+48", "CK+48")}

RUN_SH = """#!/usr/bin/env bash
# Runs a slice of the FER study book on a machine with no internet, with the machine's own PyTorch.
#   ./run.sh --paper pham --rows resmaskingnet --seeds 0 [--time-limit 9m] [--list]
# (the arguments of `python -m fer_core run`; PYTHON=/path/to/python picks the interpreter that has
# torch and torchvision). Exit status 75: the time limit was reached, everything is checkpointed:
# run the same command again to continue. Results: src/results/ (copy it back into the project).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
PYTHON="${PYTHON:-python3}"
site="$here/site"
if [ ! -f "$site/.installed" ]; then
  echo "installing the bundle's wheels into $site (no network)" >&2
  "$PYTHON" -m pip install --quiet --no-index --no-deps --no-compile --target "$site" "$here"/wheels/*.whl
  touch "$site/.installed"
fi
for archive in "$here"/data/*.tar.gz; do
  [ -e "$archive" ] || continue
  name="$(basename "$archive" .tar.gz)"
  if [ ! -e "$here/data/$name.unpacked" ]; then
    echo "unpacking $archive" >&2
    tar -xzf "$archive" -C "$here/data" && touch "$here/data/$name.unpacked"
  fi
done
export PYTHONPATH="$here/src:$site${PYTHONPATH:+:$PYTHONPATH}"
export FER_DATA_DIR="${FER_DATA_DIR:-$here/data}"
cd "$here/src"
exec "$PYTHON" -m fer_core run "$@"
"""


class BundleError(RuntimeError):
    """The bundle cannot be made; the message says why and what to do."""


def _name(requirement: str) -> str:
    return re.split(r"[ ;<>=!~\[(]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def requirements(names, python: str, stop=()) -> set[str]:
    """The installed distributions ``names`` need, transitively, on Linux with Python ``python``
    (environment markers evaluated for it; extras left out); what ``stop`` names is neither
    included nor followed (a package the node has brings its own dependencies)."""
    from packaging.requirements import Requirement

    env = {"python_version": python, "python_full_version": f"{python}.0", "sys_platform": "linux",
           "platform_system": "Linux", "os_name": "posix", "platform_machine": "x86_64",
           "implementation_name": "cpython", "platform_python_implementation": "CPython", "extra": ""}
    seen: set[str] = set()
    stop = {s.lower() for s in stop}
    stack = [n.lower() for n in names]
    while stack:
        name = stack.pop()
        if name in seen or name in stop:
            continue
        seen.add(name)
        try:
            requires = metadata.distribution(name).requires or []
        except metadata.PackageNotFoundError:
            continue
        for r in requires:
            req = Requirement(r)
            if req.marker is None or req.marker.evaluate(env):
                stack.append(_name(r))
    return seen


def wheel_list(python: str, skip=()) -> dict[str, str | None]:
    """``name -> pinned version`` (None when not installed here) of every wheel the bundle carries."""
    node = requirements(NODE_PROVIDES, python)
    needed = requirements(RUNTIME, python, stop=node | {s.lower().replace("_", "-") for s in skip})
    out = {}
    for name in sorted(needed):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def platforms(platform: str) -> list[str]:
    """pip matches platform tags exactly: a manylinux_2_N tag and every older one it implies."""
    m = re.fullmatch(r"manylinux_2_(\d+)_(\w+)", platform)
    if not m:
        return [platform]
    n, arch = int(m.group(1)), m.group(2)
    return [f"manylinux_2_{k}_{arch}" for k in range(n, 4, -1)] + [f"manylinux2014_{arch}", f"manylinux2010_{arch}",
                                                                    f"manylinux1_{arch}"]


def download_wheels(dest: Path, python: str, platform: str, skip=()) -> list[Path]:
    wanted = wheel_list(python, skip)
    if not wanted:  # pip would fail with "You must give at least one requirement"
        return []
    specs = [f"{n}=={v}" if v else n for n, v in wanted.items()]
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
           "--python-version", python, "--implementation", "cp", "-d", str(dest)]
    for p in platforms(platform):
        cmd += ["--platform", p]
    proc = subprocess.run(cmd + specs, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BundleError(f"pip could not download the wheels for Python {python} on {platform}:\n"
                          f"{proc.stderr.strip()[-1500:]}\nCheck the package registry is reachable, or leave the "
                          f"packages the node has out with --skip.")
    return sorted(dest.glob("*.whl"))


def pack_data(dest: Path, sets: list[str], data_dir: Path) -> list[Path]:
    out = []
    for name in sets:
        if name not in DATA:
            raise BundleError(f"--data {name}: unknown data set; choose from {sorted(DATA)}.")
        found = next((data_dir / rel for rel in DATA[name] if (data_dir / rel).is_dir()), None)
        if found is None:
            raise BundleError(f"--data {name}: no {' or '.join(DATA[name])} folder in {data_dir} (set --data-dir or "
                              f"FER_DATA_DIR to the folder that holds it).")
        archive = dest / f"{name}.tar.gz"
        with tarfile.open(archive, "w:gz") as tar:
            tar.add(found, arcname=DATA[name][0])
        out.append(archive)
    return out


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else path.stat().st_size


def build(out: str | Path, *, python: str, platform: str, data: list[str] = (), skip=(),
          data_dir: str | Path | None = None) -> dict[str, int]:
    """Write the bundle into ``out`` (which must not exist, or be empty); returns bytes per part."""
    import os

    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise BundleError(f"{out} exists and is not empty: give a new folder (nothing is overwritten).")
    inside = [rel for rel in SOURCES if out.resolve().is_relative_to((ROOT / rel).resolve())]
    if inside:
        raise BundleError(f"{out} is inside the project's {inside[0]}, which the bundle copies: it would copy "
                          f"itself into itself. Give a folder outside {ROOT / inside[0]}.")
    if data:  # every input checked before anything is copied
        base = Path(data_dir or os.environ.get("FER_DATA_DIR") or "")
        if not str(base):
            raise BundleError("--data needs the data: give --data-dir or set FER_DATA_DIR.")
        unknown = [name for name in data if name not in DATA]
        if unknown:
            raise BundleError(f"--data {unknown[0]}: unknown data set; choose from {sorted(DATA)}.")
    existed = out.exists()
    try:
        _fill(out, python, platform, data, skip, data_dir)
    except BaseException:  # a failed bundle leaves nothing that would block the same command again
        if existed:
            for child in out.iterdir():
                shutil.rmtree(child) if child.is_dir() else child.unlink()
        else:
            shutil.rmtree(out, ignore_errors=True)
        raise
    return {part: _size(out / part) for part in ("src", "wheels", "data", "run.sh")}


def _fill(out: Path, python: str, platform: str, data, skip, data_dir) -> None:
    import os

    for part in ("src", "wheels", "data"):
        (out / part).mkdir(parents=True, exist_ok=True)
    for rel in SOURCES:
        src = ROOT / rel
        target = out / "src" / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(src, target)
    download_wheels(out / "wheels", python, platform, skip)
    if data:
        base = Path(data_dir or os.environ.get("FER_DATA_DIR") or "")
        if not str(base):
            raise BundleError("--data needs the data: give --data-dir or set FER_DATA_DIR.")
        pack_data(out / "data", list(data), base)
    (out / "run.sh").write_text(RUN_SH)
    (out / "run.sh").chmod(0o755)
