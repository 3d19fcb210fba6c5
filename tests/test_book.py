"""The notebooks run end to end under papermill, and the runner survives a failing notebook."""
import json

import nbformat
import pytest

from fer_core import book
from fer_core.paths import ROOT


def _outputs(nb_path) -> str:
    nb = nbformat.read(nb_path, as_version=4)
    return json.dumps([c.get("outputs", []) for c in nb.cells if c.cell_type == "code"])


def _run(tmp_path, papers, data_dir=None):
    sets = [f"output.results_dir={tmp_path / 'results'}", f"output.checkpoint_dir={tmp_path / 'ckpt'}"]
    return book.run("test", papers, jobs=1, overrides=sets, out_dir=tmp_path / "executed", data_dir=data_dir)


@pytest.mark.slow
def test_every_notebook_runs_on_the_synthetic_set(tmp_path):
    notebooks = book.discover()
    assert notebooks, "no notebooks found"
    outcomes = _run(tmp_path, None)  # the suite runs with FER_DATA_DIR unset
    assert [o.notebook for o in outcomes] == [p.stem for p in notebooks]
    assert all(o.ok for o in outcomes), [o.error for o in outcomes if not o.ok]
    for o in outcomes:
        text = _outputs(o.output)
        assert "synthetic data \\u2014 not comparable to the papers" in text or \
               "synthetic data — not comparable to the papers" in text
        assert '"output_type": "error"' not in text


@pytest.mark.slow
@pytest.mark.realdata
def test_every_notebook_runs_on_real_fer2013(tmp_path, shared_data, fer2013):
    outcomes = _run(tmp_path, None, data_dir=shared_data)
    assert all(o.ok for o in outcomes), [o.error for o in outcomes if not o.ok]
    for o in outcomes:
        text = _outputs(o.output)
        assert "not comparable to the papers" not in text and ("fer2013" in text or "ckplus" in text)


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
