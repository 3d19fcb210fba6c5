"""The built book in a real browser: headless Chromium (Debian's ``chromium``, driven by Playwright,
no browser download) opens the front chapter and every paper chapter, with no JavaScript error and
no request leaving the machine; the claim explorer filters to one paper and to *not reproduced*
with the row counts of ``results/verdicts.csv``; plotly figures render. Screenshots of the front
chapter and one paper chapter are saved into the build (``_build/html/screenshots/``).

The book checked is ``FER_BOOK_HTML`` (a built ``_build/html``, e.g. after ``make book``: every
chapter, the committed records) where set, else the session's small book (``tests/conftest.py``:
the front chapter and chapter 01 at the ``test`` profile, on fabricated published records), which
tests/test_book.py reads too: executing every chapter again would add minutes to the suite.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from fer_core.book.front import verdicts_export
from fer_core.verdicts.claims import PAPERS

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser")) if p), None)
playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (make setup)")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium here (apt-get install chromium): the built "
                                                         "book is not opened in a browser")

FRONT = "90_does_it_hold_up"
PAPER_CHAPTERS = ["01_resmaskingnet", "02_masking_reconstruction", "03_improved_resnet50", "04_xception_separable",
                  "05_stn_sr"]
LOCAL = ("file:", "data:", "blob:", "about:")
OWN_BUILD = PAPER_CHAPTERS[0]  # the paper chapter of the session's small book (without FER_BOOK_HTML)


@pytest.fixture(scope="module")
def book_and_records(request) -> tuple[Path, Path | None]:
    """(the built HTML, the published records it shows: None for results/)."""
    if os.environ.get("FER_BOOK_HTML"):
        return Path(os.environ["FER_BOOK_HTML"]).resolve(), None  # a relative spelling, from the checkout
    return request.getfixturevalue("small_book")


@pytest.fixture(scope="module")
def html(book_and_records) -> Path:
    return book_and_records[0]


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


def open_page(browser, path: Path):
    """A page with its uncaught JavaScript errors and the requests that would leave the machine."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.errors, page.external = [], []
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.on("request", lambda r: None if r.url.startswith(LOCAL) else page.external.append(r.url))
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    return page


@pytest.mark.parametrize("chapter", [FRONT, *PAPER_CHAPTERS])
def test_a_chapter_loads_with_no_javascript_error_and_no_request_out(browser, html, chapter):
    path = html / "executed" / f"{chapter}.html"
    if not path.is_file():
        assert "FER_BOOK_HTML" not in os.environ, f"{path} is missing from the book built by make book"
        pytest.skip(f"{chapter}: the suite's own build holds {FRONT} and {OWN_BUILD} (FER_BOOK_HTML=book/_build/html "
                    f"checks every chapter after make book)")
    page = open_page(browser, path)
    assert page.title(), chapter
    assert page.errors == [] and page.external == []
    figures = page.locator(".js-plotly-plot")
    for i in range(figures.count()):  # plotly drew each figure: an SVG with marks in it
        assert figures.nth(i).locator("svg.main-svg").count() > 0
        assert figures.nth(i).locator("svg.main-svg path, svg.main-svg rect").count() > 0
    if chapter in (FRONT, OWN_BUILD):
        shots = html / "screenshots"
        shots.mkdir(exist_ok=True)
        page.screenshot(path=str(shots / f"{chapter}.png"), full_page=True)
    page.close()


def test_the_claim_explorer_filters_to_a_paper_and_a_verdict(browser, book_and_records):
    html, published = book_and_records
    expected = verdicts_export(published)  # what results/verdicts.csv holds for these records
    page = open_page(browser, html / "executed" / f"{FRONT}.html")
    rows = page.locator("#claim-explorer tbody tr")
    assert rows.count() == len(expected)
    paper = "pham"  # tested in both books: fabricated records in the small one, counted parameters in both
    page.locator(".dtsp-searchPane").nth(0).get_by_text(PAPERS[paper].split(",")[0], exact=True).click()
    assert rows.count() == (expected["paper"] == paper).sum()
    page.locator(".dtsp-searchPane").nth(1).get_by_text("✘ not reproduced", exact=True).click()
    assert rows.count() == ((expected["paper"] == paper) & (expected["verdict"] == "not reproduced")).sum() > 0
    page.locator("#claim-explorer tbody details").first.evaluate("d => d.open = true")
    assert "Re-make" in rows.first.inner_text()
    assert page.errors == [] and page.external == []
    page.close()
