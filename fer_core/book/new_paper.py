"""A new paper's files from templates: ``python -m fer_core.book new-paper <paper> --number NN
--name <slug> --title "<Authors>, <Title> (<venue>)" --text <file under ../shared/papers/>``.

It writes the plan's skeleton (``params/papers/<paper>.yaml``: the head, a recipe with every setting
a named choice to replace, one placeholder row, the ``smoke`` and ``test`` profiles) and the chapter
(``notebooks/<NN>_<slug>.ipynb``: the parameter cell every chapter shares, ``Chapter.open``, the
answer, recipe, claims, results, figures, attention maps, pipeline check and provenance), then
rewrites the book's table of contents. A person then edits the plan, adds the claims to
``book/claims.csv`` and writes the chapter's prose; an existing file is never overwritten.
"""
from __future__ import annotations

import re
from pathlib import Path

from ..verdicts.papers import PLANS

#: the parameter cell of every paper chapter (papermill injects the values after it)
PARAMETERS = """\
profile = None          # smoke | test | paper; None: FER_PROFILE, else paper on a GPU with data, else smoke
overrides = []          # extra "key=value" settings for every run
data_dir = None         # None: FER_DATA_DIR if set, else the embedded synthetic set
device = "auto"
models = None           # None: the rows the profile runs; or a list such as {example}
epochs = None           # None: the profile's (the paper's recipe in the paper profile)
seeds = 1               # the paper profile uses 3 where time allows
results_dir = None      # None: FER_RESULTS_DIR, else the profile's (build/results on a CPU, results/ for paper)
published_dir = None    # None: FER_PUBLISHED_DIR, else results/ (the committed paper-profile records)
reuse_results = True    # read back finished runs with the same config and data
progress = True"""

OPEN = """\
from fer_core.book import plots
from fer_core.book.chapter import Chapter
from fer_core.book.tables import html

ch = Chapter.open("{paper}", profile=profile, overrides=overrides, data_dir=data_dir, device=device, models=models,
                  epochs=epochs, seeds=seeds, results_dir=results_dir, published_dir=published_dir,
                  reuse=reuse_results, progress=progress)
ch.banner()"""

#: the chapters' shared paragraphs, by section
SECTIONS = {
    "answer": "## The answer, in short\n\nThe paper's claims counted by verdict, and the ones ours misses by most; "
              "the detail follows.",
    "recipe": "## The recipe\n\nEvery setting of the training recipe, as the paper profile uses it, with where it "
              "comes from: a\nline of the paper (or of the authors' code), or a *named choice* of this book where "
              "the text is\nsilent. The notes after it are the plan's (`params/papers/{paper}.yaml`), the one place "
              "they are\nwritten.",
    "claims": "## The claims and their verdicts\n\nEvery number the paper states (`book/claims.csv`, with the line it "
              "comes from), ours from the\npublished paper-profile runs, and the verdict of the book's one rule, "
              "stated in\n[Does it hold up?](90_does_it_hold_up.ipynb). Without published runs every verdict is "
              "*not tested*\n(or *not comparable*, where the paper measured on data or classes the book's runs do "
              "not share):\nthe pipeline check at the end of the chapter never stands in for one.",
    "results": "## Ours, per row\n\nPer row of the plan, ours with its 95% interval (over seeds and folds, and the "
               "split's own\nsampling error), beside whether the paper has the row.",
    "figures": "## Per epoch, and the confusion matrix\n\nValidation loss and accuracy per epoch of every run of each "
               "row, then the test confusion matrix\npooled over the row's seeds.",
    "attention": "## Where the model looks: attention maps (Captum)\n\nFour Captum methods — Integrated Gradients "
                 "(baseline: the black face), Saliency, Occlusion and\nGrad-CAM — explain the *predicted* class of a "
                 "fixed sample of test faces, kept in the run record\n(`attention.npz`, made from the selected "
                 "weights) of the first row shown. Bright pixels moved the\nprediction most.",
    "pipeline": "## Pipeline check\n\nThe runs this machine made to prove the chapter end to end, in the CPU profile "
                "(subsets, two\nepochs, reduced inputs; on the synthetic set when no data is configured). **Not a "
                "result**: their\nnumbers say that the code runs, nothing about the paper's models, and no verdict "
                "reads them. Empty\nin the paper profile, whose runs are the published ones.",
    "provenance": "## Provenance\n\nThe run records the figures above were drawn from "
                  "(`results/<experiment>/<run>/`, listed in the\nledger of their results folder): commit, device, "
                  "data fingerprint and wall time of each.",
}

#: the sections every chapter keeps in fer_core's words ("results" and "figures" are the template's
#: starters, renamed after the paper's tables and figures)
SHARED = ("answer", "recipe", "claims", "attention", "pipeline", "provenance")


def section_drift(cells: list, paper: str) -> list[str]:
    """The shared sections (:data:`SHARED`) a chapter's markdown ``cells`` lack, or carry in other
    words: each must open with fer_core's text (a chapter may add its own sentences after it)."""
    drift = []
    for key in SHARED:
        text = SECTIONS[key].format(paper=paper)
        head = text.split("\n", 1)[0]
        cell = next((c for c in cells if c.cell_type == "markdown" and c.source.split("\n", 1)[0] == head), None)
        if cell is None:
            drift.append(f"{key}: no cell headed {head!r}")
        elif not cell.source.startswith(text):
            drift.append(f"{key}: {head!r} does not open with fer_core.book.new_paper.SECTIONS[{key!r}]")
    return drift


PLAN = """\
# {title}
# Text: ../shared/papers/{text} ("{paper}.txt" below). Generated by `python -m fer_core.book new-paper`:
# replace every named choice the text gives with its source (the paper's line), the placeholder row
# with the paper's rows, and add its claims to book/claims.csv.
paper: {paper}
title: "{title}"
text: {text}
chapter: {chapter}
recipe:
  data: {{source: fer2013}}
  model: {{input_size: 48}}
  train: {{epochs: 30, batch_size: 64, optimizer: {{name: adam, lr: 1.0e-3}}}}
settings:
  data.source: {{choice: "FER2013 (replace with the paper's data set and its line)"}}
  model.input_size: {{choice: "48x48 (replace with the paper's input and its line)"}}
  train.epochs: {{choice: "30 (replace with the paper's schedule and its line)"}}
  train.batch_size: {{choice: "64 (replace with the paper's batch size and its line)"}}
  train.optimizer.name: {{choice: "Adam (replace with the paper's optimizer and its line)"}}
  train.optimizer.lr: {{choice: "1e-3 (replace with the paper's learning rate and its line)"}}
deviations: []
protocol: []
quick:
  train: {{epochs: 2, early_stopping: null}}
  eval: {{attention: 4, attention_sanity: false}}
rows:
  - {{model: simple_cnn}}
profiles:
  smoke:
    rows: [simple_cnn]
    set:
      data: {{subset: {{train: 300, val: 100, test: 100}}, synthetic_size: [300, 100, 100]}}
  test:
    rows: [simple_cnn]
    set:
      data: {{subset: {{train: 200, val: 60, test: 60}}, synthetic_size: [200, 60, 60]}}
"""


def chapter_cells(paper: str, title: str, rows: list[str]) -> list:
    """The cells of a new chapter (nbformat), prose to be written where it says so."""
    import nbformat

    v4 = nbformat.v4
    md = lambda key: v4.new_markdown_cell(SECTIONS[key].format(paper=paper))  # noqa: E731
    shown = ", ".join(f'"{r}"' for r in rows[:2])
    cells = [
        v4.new_markdown_cell(f"# {title}\n\n**The claim.** (Write what the paper claims, with its numbers and the "
                             f"lines they are on.)\n\n**What this chapter does.** (Write how the book tests it.)"),
        v4.new_code_cell(PARAMETERS.format(example=f"[{shown}]"), metadata={"tags": ["parameters"]}),
        v4.new_code_cell(OPEN.format(paper=paper)),
        md("answer"), v4.new_code_cell("# NBVAL_CHECK_OUTPUT\nch.summary()"),
        md("recipe"), v4.new_code_cell("# NBVAL_CHECK_OUTPUT\nch.recipe()"),
        v4.new_code_cell("# NBVAL_CHECK_OUTPUT\nch.notes()"),
        md("claims"), v4.new_code_cell("# NBVAL_CHECK_OUTPUT\nhtml(ch.verdicts())"),
        md("results"), v4.new_code_cell("ch.results()"),
        md("figures"), v4.new_code_cell(f"ch.row_figures({shown})"),
        md("attention"), v4.new_code_cell(f"ch.attention({shown.split(', ')[0]})"),
        md("pipeline"), v4.new_code_cell("ch.pipeline_check()"),
        md("provenance"), v4.new_code_cell("ch.provenance()"),
    ]
    for i, cell in enumerate(cells):
        cell["id"] = f"c{i:02d}"
    return cells


def new_paper(paper: str, number: str, name: str, title: str, text: str, *, notebooks: Path,
              plans: Path = PLANS) -> list[Path]:
    """Write the plan (unless there is one) and the chapter of a new paper; returns the files written."""
    import nbformat
    import yaml

    if not re.fullmatch(r"[a-z][a-z0-9_]*", paper) or not re.fullmatch(r"\d\d", number) \
            or not re.fullmatch(r"[a-z0-9_]+", name):
        raise ValueError(f"new-paper {paper} --number {number} --name {name}: the paper a lowercase identifier, the "
                         f"number two digits (e.g. 08), the name lowercase letters, digits and _.")
    chapter = f"{number}_{name}"
    taken = [p for p in notebooks.glob(f"{number}_*.ipynb")]
    nb_path = notebooks / f"{chapter}.ipynb"
    if taken:
        raise FileExistsError(f"{taken[0]} already has chapter number {number}: choose another --number.")
    written = []
    plan_path = plans / f"{paper}.yaml"
    if not plan_path.exists():
        plan_path.write_text(PLAN.format(paper=paper, title=title.replace('"', "'"), text=text, chapter=chapter))
        written.append(plan_path)
    rows = [r.get("variant") or r["model"] for r in yaml.safe_load(plan_path.read_text()).get("rows", [])]
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                   "language_info": {"name": "python"}}
    nb.cells = chapter_cells(paper, title, rows)
    nbformat.write(nb, nb_path)
    written.append(nb_path)
    return written
