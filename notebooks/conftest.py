"""``pytest --nbval-lax`` over the chapters (what ``make test`` runs, see pyproject.toml).

Every chapter runs in the ``test`` profile (``FER_PROFILE``), its runs and checkpoints in a
temporary folder, on the real FER2013 and CK+ when they are beside the project (``../shared/data``,
or ``FER_DATA_DIR``), else on the synthetic set; the published records it reads are the committed
ones under ``results/``. Only the cells marked ``# NBVAL_CHECK_OUTPUT`` (the claims and verdict
tables, the recipes) are compared with the outputs stored in the notebook: after a change to the
claims, the plans or the published records, store the new ones with ``python -m fer_core.book
refresh``. The settings are in force while the notebooks run (their kernels start then), not
during the unit tests of ``tests/``.
"""
import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

_tmp = tempfile.mkdtemp(prefix="fer-nbval-")
atexit.register(shutil.rmtree, _tmp, ignore_errors=True)
_SHARED = Path(os.environ.get("FER_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
_ENV = {"FER_PROFILE": "test", "FER_RESULTS_DIR": os.path.join(_tmp, "results"),
        "FER_CHECKPOINT_DIR": os.path.join(_tmp, "checkpoints"),
        **({"FER_DATA_DIR": str(_SHARED)} if _SHARED.is_dir() else {})}
_saved: dict = {}


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Before a notebook's first cell (when nbval starts its kernel): the chapters' settings."""
    if not _saved:
        _saved.update({k: os.environ.get(k) for k in _ENV})
        for k, v in _ENV.items():
            os.environ.setdefault(k, v)


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item, nextitem):
    """After the last notebook cell: the environment as it was."""
    if _saved and (nextitem is None or Path(str(nextitem.fspath)).parent != Path(__file__).parent):
        for k, v in _saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
        _saved.clear()
