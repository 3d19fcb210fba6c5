import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("FER_SHARED_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    """Tests decode into their own cache, never relying on (or filling) a user's cache."""
    old = os.environ.get("FER_CACHE_DIR")
    os.environ["FER_CACHE_DIR"] = str(tmp_path_factory.mktemp("fer_cache"))
    yield
    if old is None:
        os.environ.pop("FER_CACHE_DIR", None)
    else:
        os.environ["FER_CACHE_DIR"] = old


@pytest.fixture(autouse=True)
def _no_data_env(monkeypatch):
    """A developer's FER_DATA_DIR must not change what a test reads."""
    monkeypatch.delenv("FER_DATA_DIR", raising=False)


def _need(path: Path, what: str) -> Path:
    if not path.exists():
        pytest.skip(f"{what} not found at {path}: real-data tests need ../shared/data "
                    f"(or FER_SHARED_DATA) - see README 'Data'")
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return _need(SHARED, "shared real data")


@pytest.fixture(scope="session")
def fer2013(shared_data):
    from fer_core.data import load

    _need(shared_data / "fer2013", "FER2013 image folders")
    return load("fer2013", shared_data)


@pytest.fixture(scope="session")
def ckplus(shared_data):
    from fer_core.data import load

    _need(shared_data / "ckplus" / "CK+48", "CK+48")
    return load("ckplus", shared_data)


def run_settings(folder: Path) -> list[str]:
    """The overrides every test's runs take: the CPU, no progress bars, and results and
    checkpoints in ``folder`` (never the project's)."""
    return ["train.progress=false", "train.device=cpu", f"output.results_dir={folder / 'r'}",
            f"output.checkpoint_dir={folder / 'c'}"]


@pytest.fixture(scope="session")
def settings_for():
    """:func:`run_settings` for a fixture that makes its own folder (a module's shared runs)."""
    return run_settings


@pytest.fixture
def run_sets(tmp_path) -> list[str]:
    """:func:`run_settings` in the test's own temporary folder."""
    return run_settings(tmp_path)


@pytest.fixture
def tiny_cfg(tmp_path):
    """A seconds-long synthetic run writing into tmp_path."""
    from fer_core.config import load_config
    from fer_core.paths import params_file

    def make(*overrides, **fields):
        return load_config(params_file("test"), ["data.source=synthetic", *run_settings(tmp_path), *overrides],
                           **fields)
    return make


@pytest.fixture(scope="session")
def small_book(tmp_path_factory):
    """A book of the front chapter and chapter 01 built once for the session (the test profile, and
    fabricated published records of Pham et al.'s ResMaskingNet and VGG19, marked so): what
    tests/test_book.py reads as text and tests/test_browser.py opens in Chromium.
    Returns ``(html folder, published folder)``."""
    from fabricated import fabricate

    from fer_core.book import make as book

    tmp = tmp_path_factory.mktemp("small_book")
    published = tmp / "published"
    for seed, (acc, tta) in enumerate([(0.738, 0.7405), (0.741, 0.7425)]):
        fabricate(published, "pham", "resmaskingnet", accuracy=acc, tta=tta, seed=seed, n=3589)
    fabricate(published, "pham", "vgg19", accuracy=0.61, tta=0.612, n=3589)
    with pytest.MonkeyPatch.context() as mp:
        for key, value in {"FER_PUBLISHED_DIR": published, "FER_RESULTS_DIR": tmp / "results",
                           "FER_CHECKPOINT_DIR": tmp / "ckpt", "FER_PROFILE": "test"}.items():
            mp.setenv(key, str(value))
        mp.delenv("FER_DATA_DIR", raising=False)
        site = tmp / "book"
        outcomes = book.run("test", ["90", "01"], out_dir=site / "executed")
        assert all(o.ok for o in outcomes), [o.error for o in outcomes]
        for name in ("_config.yml", "intro.md"):
            (site / name).write_text((ROOT / "book" / name).read_text())
        for folder in ("_ext", "_static"):
            shutil.copytree(ROOT / "book" / folder, site / folder, dirs_exist_ok=True)
        (site / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n"
                                       "  - file: executed/90_does_it_hold_up\n  - file: executed/01_resmaskingnet\n")
        html = book.build(site).parent
    return html, published
