"""A paper's experiments: its recipe, its table's rows, and runs through the one engine.

``params/papers/<paper>.yaml`` holds

- ``recipe``: the paper's training recipe, a config fragment used as written in the ``paper``
  profile (where the paper is silent: the authors' code or the closest standard choice, named
  in a comment and in the chapter);
- ``quick``: what the CPU profiles (``smoke``, ``test``) cut from it;
- ``rows``: one entry per row of the paper's table (``model``, optional ``variant`` name,
  ``kwargs``, ``loss`` weights, ``input_size``, ``quick_input_size``, ``dataset`` when not the
  recipe's, ``claim``: the row's model name in ``book/claims.csv``, default the variant, null
  for a row the paper does not have, such as an ablation or extension of this book, and ``set``:
  a config fragment of the row's own, in every profile, e.g. the longer schedule of a cheap sanity
  check);
- ``profiles``: per CPU profile, the ``rows`` it runs, a ``set`` fragment of its own and, for
  cross-validated rows, the ``folds`` it runs (the ``paper`` profile runs every row and fold with
  the recipe alone);
- ``cv_folds``: the number of subject-independent folds of a CK+ row (default 10). Without data,
  the synthetic set stands in for CK+ and is split into folds by its subjects in the same way.

A config is built as: ``params/<profile>.yaml`` <- recipe <- quick and the profile's ``set``
(CPU profiles) <- the row (and its ``set``) <- the caller's overrides. The recipe's dataset is used when data is configured (``data_dir`` or
``FER_DATA_DIR``); with none, the synthetic set stands in, and every output says so.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import yaml

from . import ledger
from .claims import claim
from .config import Config, ConfigError, _merge, load_config, read_params
from .data import BUNDLED
from .engine import load_data, run
from .paths import ROOT, params_file

PAPERS_DIR = ROOT / "params" / "papers"
_ROW_KEYS = {"model", "variant", "kwargs", "loss", "input_size", "quick_input_size", "dataset", "claim", "set"}
NO_CLAIM = "no claim (this book's extension)"


@dataclass(frozen=True)
class Plan:
    paper: str
    recipe: dict
    quick: dict
    rows: list[dict]
    profiles: dict[str, dict] = field(default_factory=dict)
    cv_folds: int = 10

    def variants(self) -> list[str]:
        return [variant_of(r) for r in self.rows]

    def row(self, variant: str) -> dict:
        for r in self.rows:
            if variant_of(r) == variant:
                return r
        raise KeyError(f"{self.paper} has no row {variant!r}; rows: {self.variants()}")

    def selected(self, profile: str, only: list[str] | None = None) -> list[str]:
        """The rows to run: ``only`` when given (any profile), else every row in ``paper`` and the
        profile's own list in a CPU profile."""
        if only:
            unknown = [v for v in only if v not in self.variants()]
            if unknown:
                raise KeyError(f"{self.paper} has no row(s) {unknown}; rows: {self.variants()}")
            return list(only)
        if profile == "paper" or profile not in self.profiles:
            return self.variants()
        return list(self.profiles[profile]["rows"])

    def dataset(self, variant: str) -> str:
        return self.row(variant).get("dataset") or self.recipe.get("data", {}).get("source", "fer2013")

    def folds(self, variant: str, profile: str, only: list[int] | None = None) -> list[int | None]:
        """The cross-validation folds a row runs: ``only``, else the profile's list, else every
        fold; ``[None]`` for a row with fixed splits."""
        if self.dataset(variant) != "ckplus":
            return [None]
        if only is not None:
            bad = [k for k in only if not 0 <= k < self.cv_folds]
            if bad:
                raise KeyError(f"{self.paper}: fold(s) {bad} out of range 0..{self.cv_folds - 1}.")
            return list(only)
        if profile != "paper" and "folds" in self.profiles.get(profile, {}):
            return list(self.profiles[profile]["folds"])
        return list(range(self.cv_folds))


def variant_of(row: dict) -> str:
    return row.get("variant") or row["model"]


def read_plan(paper: str) -> Plan:
    path = PAPERS_DIR / f"{paper}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in PAPERS_DIR.glob("*.yaml"))
        raise FileNotFoundError(f"No plan for paper {paper!r}: {path} does not exist. Plans: {known}.")
    raw = yaml.safe_load(path.read_text()) or {}
    unknown = set(raw) - {"paper", "recipe", "quick", "rows", "profiles", "cv_folds"}
    if unknown:
        raise ConfigError(f"{path}: unknown top-level key(s) {sorted(unknown)}.")
    for i, row in enumerate(raw.get("rows", [])):
        bad = set(row) - _ROW_KEYS
        if bad or "model" not in row:
            raise ConfigError(f"{path}: rows[{i}] has unknown key(s) {sorted(bad)} or no model; "
                              f"keys are {sorted(_ROW_KEYS)}.")
    plan = Plan(raw.get("paper", paper), raw.get("recipe", {}), raw.get("quick", {}), raw.get("rows", []),
                raw.get("profiles", {}), int(raw.get("cv_folds", 10)))
    for prof, entry in plan.profiles.items():
        if not isinstance(entry, dict) or set(entry) - {"rows", "set", "folds"} or "rows" not in entry:
            raise ConfigError(f"{path}: profiles.{prof} must be a mapping with 'rows' (and optionally 'set', "
                              f"'folds').")
        if any(not isinstance(k, int) or not 0 <= k < plan.cv_folds for k in entry.get("folds", [])):
            raise ConfigError(f"{path}: profiles.{prof}.folds must list folds in 0..{plan.cv_folds - 1}.")
        missing = [v for v in entry["rows"] if v not in plan.variants()]
        if missing:
            raise ConfigError(f"{path}: profiles.{prof} names unknown row(s) {missing}.")
    return plan


def data_configured(data_dir: str | None) -> bool:
    return bool(data_dir or os.environ.get("FER_DATA_DIR"))


def config_for(plan: Plan, variant: str, profile: str, *, seed: int = 0, data_dir: str | None = None,
               overrides: list[str] = (), fold: int | None = None) -> Config:
    """The resolved config of one row of a paper's table in one profile."""
    row = plan.row(variant)
    raw = _merge(read_params(params_file(profile)), plan.recipe)
    quick = profile != "paper"
    if quick:
        raw = _merge(_merge(raw, plan.quick), plan.profiles.get(profile, {}).get("set", {}))
    dataset = plan.dataset(variant)
    source = dataset if dataset in BUNDLED or data_configured(data_dir) else "synthetic"
    cv = dataset == "ckplus"
    if fold is not None and not cv:
        raise ValueError(f"{plan.paper}/{variant} uses {dataset}'s fixed splits; it has no folds.")
    size = row.get("quick_input_size") if quick and row.get("quick_input_size") else \
        (row.get("input_size") if not quick else None)
    row_cfg: dict = {"experiment": plan.paper, "seed": seed,
                     "data": {"source": source, **({"dir": str(data_dir)} if data_dir else {})},
                     "model": {"name": row["model"], **({"kwargs": row["kwargs"]} if "kwargs" in row else {})},
                     "loss": {"weights": row.get("loss", {})}}
    if size:
        row_cfg["model"]["input_size"] = size
    if cv:  # CK+, or the synthetic set standing in for it, split by subject
        row_cfg["data"].update(fold=fold or 0, n_folds=plan.cv_folds, cv=True)
    raw = _merge(_merge(raw, row_cfg), row.get("set", {}))
    cfg = load_config(raw, list(overrides))
    # the run's name carries a hash of its settings: a changed recipe gets a record of its own
    # instead of colliding with (and never overwriting) the finished run of the old one
    fold_tag = f"-fold{fold or 0}" if cv else ""
    digest = ledger.config_hash(cfg.to_dict())[:8]
    return cfg.model_copy(update={"run": f"{variant}-{source}{fold_tag}-s{seed}-{digest}"})


def run_paper(paper: str, profile: str = "smoke", *, seeds: int | list[int] = 1, data_dir: str | None = None,
              overrides: list[str] = (), only: list[str] | None = None, reuse: bool = True,
              folds: list[int] | None = None) -> pd.DataFrame:
    """Run (or reuse) every row the profile selects, for each seed (and, for a CK+ row, each fold
    the profile selects, or ``folds``); returns their ledger rows. Each finished run is appended to
    ``<results_dir>/ledger.csv``."""
    plan = read_plan(paper)
    seed_list = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    rows = []
    for variant in plan.selected(profile, only):
        for seed in seed_list:
            for fold in plan.folds(variant, profile, folds):
                cfg = config_for(plan, variant, profile, seed=seed, data_dir=data_dir, overrides=overrides, fold=fold)
                if not reuse:
                    cfg = cfg.model_copy(update={"output": cfg.output.model_copy(update={"overwrite": True})})
                record = run(cfg, reuse=reuse, data=load_data(cfg))
                row = ledger.row_of(record, paper=paper, variant=variant, profile=profile)
                ledger.append(cfg.output.results_dir, row)
                rows.append(row)
    return pd.DataFrame(rows, columns=ledger.COLUMNS)


def _mean_std(values: pd.Series) -> tuple[float, float, int]:
    v = values.dropna().astype(float) * 100
    return (float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else float("nan"), len(v)) if len(v) else \
        (float("nan"), float("nan"), 0)


def fmt(mean: float, std: float, n: int) -> str:
    if n == 0 or np.isnan(mean):
        return "not run in this profile"
    return f"{mean:.2f}" + (f" ± {std:.2f}" if n > 1 else "") + (f" (n={n})" if n > 1 else "")


def claims_table(paper: str, results: pd.DataFrame, *, metric: str = "accuracy", ours: str = "accuracy",
                 dataset: str | None = None, extra: dict[str, str] | None = None,
                 variants: list[str] | None = None) -> pd.DataFrame:
    """The paper's table beside ours: one row per row of the paper (or per ``variants``), with the
    paper's value (from ``book/claims.csv``), ours (mean ± std over seeds and folds, in %), and the
    difference. A row this profile did not run says so; a value the claims file lacks says "not
    transcribed"; a row the paper does not have (``claim: null`` in the plan) says so."""
    plan = read_plan(paper)
    out = []
    for variant in variants or plan.variants():
        row = plan.row(variant)
        name = row["claim"] if "claim" in row else variant
        mine = results[results["variant"] == variant] if len(results) else results
        paper_value = claim(paper, name, metric, dataset or plan.dataset(variant)) if name else None
        mean, std, n = _mean_std(mine[ours]) if len(mine) else (float("nan"), float("nan"), 0)
        paper_text = f"{paper_value:.2f}" if paper_value is not None else ("not transcribed" if name else NO_CLAIM)
        entry = {"model": variant,
                 f"paper {metric} (%)": paper_text,
                 f"ours {ours} (%)": fmt(mean, std, n),
                 "difference (points)": f"{mean - paper_value:+.2f}" if paper_value is not None and n else "—"}
        for label, column in (extra or {}).items():
            entry[label] = fmt(*_mean_std(mine[column])) if len(mine) else "not run in this profile"
        out.append(entry)
    return pd.DataFrame(out).set_index("model")


def default_profile(data_dir: str | None = None) -> str:
    """What an interactive notebook runs by default: the ``paper`` profile on a GPU with data
    configured, else the CPU ``smoke`` profile."""
    import torch

    return "paper" if torch.cuda.is_available() and data_configured(data_dir) else "smoke"


def note_of(results: pd.DataFrame) -> str | None:
    """The line a chapter's outputs carry: the synthetic warning when any of its runs used the
    synthetic set, else None."""
    from .data import SYNTHETIC_NOTE

    return SYNTHETIC_NOTE if (results["dataset"] == "synthetic").any() else None


def records_of(results: pd.DataFrame, variant: str) -> list:
    """The run records of one row of the table (every seed and fold), in ledger order."""
    return [ledger.record(p) for p in results.loc[results["variant"] == variant, "record"]]


def pooled_metrics(results: pd.DataFrame, variant: str) -> dict:
    """One row's test predictions pooled over its seeds and folds (each CK+ image is tested once per
    seed), with the metrics recomputed on the pool: the confusion matrix of a cross-validation."""
    from .metrics import classification_metrics

    records = records_of(results, variant)
    if not records:
        raise KeyError(f"no runs of {variant!r} in these results")
    names = list(records[0].metrics["per_class"])
    y = np.concatenate([r.predictions["target"].to_numpy() for r in records])
    probs = np.concatenate([r.probs for r in records])
    probs = probs / probs.sum(1, keepdims=True)  # the records store rounded probabilities
    return classification_metrics(y, probs, names)


def first_of(results: pd.DataFrame, *preferred: str) -> str:
    """The first of ``preferred`` rows that ran, else the first row that ran."""
    ran = list(dict.fromkeys(results["variant"]))
    return next((v for v in preferred if v in ran), ran[0])


def notebook_settings(overrides: list[str] = (), *, device: str = "auto", progress: bool = True,
                      epochs: int | None = None, results_dir: str | None = None) -> list[str]:
    """A chapter's parameters as ``key=value`` overrides for every one of its runs."""
    settings = [*overrides, f"train.device={device}", f"train.progress={str(bool(progress)).lower()}"]
    if epochs is not None:
        settings.append(f"train.epochs={int(epochs)}")
    if results_dir is not None:
        settings.append(f"output.results_dir={results_dir}")
    return settings
