"""A paper's plan: its recipe, its table's rows and profiles, and the config of every run of it.

``params/papers/<paper>.yaml`` holds

- ``recipe``: the paper's training recipe, a config fragment used as written in the ``paper``
  profile;
- ``settings``: where each setting of the recipe comes from, one entry per leaf key:
  ``{source: "<paper>.txt:<line> ..."}`` when the text (or the authors' code) gives it,
  ``{choice: "..."}`` when it is this book's named choice because the text is silent;
- ``deviations`` and ``protocol``: the notes a reader must see, rendered by the chapters (never
  re-typed there);
- ``quick``: what the CPU profiles (``smoke``, ``test``) cut from the recipe;
- ``rows``: one entry per row the book runs (``model``, optional ``variant`` name, ``kwargs``,
  ``loss`` weights, ``input_size``, ``quick_input_size``, ``dataset`` when not the recipe's,
  ``set``: a config fragment of the row's own, and ``sr_from``: the row whose trained SR net the
  row loads, run first). Which claims a row answers is in ``book/claims.csv`` (its ``row`` column);
  a row no claim names is this book's ablation or extension;
- ``profiles``: per CPU profile, the ``rows`` it runs, a ``set`` fragment of its own and, for
  cross-validated rows, the ``folds`` it runs (the ``paper`` profile runs every row and fold with
  the recipe alone);
- ``readings``: where the text allows several readings of a claim's protocol, the readings by the
  claim's metric: ``{<metric>: {<reading, in words>: <metric>, ...}}``, the claim's own metric
  first (the book's reading); the verdicts are computed under each;
- ``cv_folds``: the number of subject-independent folds of a CK+ row (default 10). Without data,
  the synthetic set stands in for CK+ and is split into folds by its subjects in the same way.

A config is built as: ``params/<profile>.yaml`` <- recipe <- quick and the profile's ``set``
(CPU profiles) <- the row (and its ``set``) <- the caller's overrides. The recipe's dataset is
used when data is configured (``data_dir`` or ``FER_DATA_DIR``); with none, the synthetic set
stands in, and every output says so.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..config import Config, ConfigError, _merge, identity_hash, load_config, read_params
from ..data import BUNDLED, DataError, fingerprint_of
from ..paths import ROOT, params_file, project_path
from ..runs.records import MANIFEST, run_name
from ..train import checkpoints

PAPERS_DIR = ROOT / "params" / "papers"
_ROW_KEYS = {"model", "variant", "kwargs", "loss", "input_size", "quick_input_size", "dataset", "set", "sr_from"}
_PLAN_KEYS = {"paper", "title", "text", "chapter", "recipe", "settings", "deviations", "protocol", "quick", "rows",
              "profiles", "cv_folds", "readings"}


@dataclass(frozen=True)
class Plan:
    paper: str
    recipe: dict
    quick: dict
    rows: list[dict]
    profiles: dict[str, dict] = field(default_factory=dict)
    cv_folds: int = 10
    settings: dict[str, dict] = field(default_factory=dict)
    deviations: list[str] = field(default_factory=list)
    protocol: list[str] = field(default_factory=list)
    #: metric -> {reading in words -> metric}: the readings of a claim's protocol the text allows
    readings: dict[str, dict[str, str]] = field(default_factory=dict)

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
    _check_keys(path, raw)
    plan = Plan(raw.get("paper", paper), raw.get("recipe", {}), raw.get("quick", {}), raw.get("rows", []),
                raw.get("profiles", {}), int(raw.get("cv_folds", 10)), raw.get("settings") or {},
                list(raw.get("deviations") or []), list(raw.get("protocol") or []), _readings(path, raw))
    _check_references(path, plan)
    return plan


def _readings(path, raw: dict) -> dict[str, dict[str, str]]:
    """A plan's ``readings``, checked: each claim metric's readings name that metric among them."""
    out = raw.get("readings") or {}
    for metric, readings in out.items():
        if not isinstance(readings, dict) or len(readings) < 2 or metric not in readings.values():
            raise ConfigError(f"{path}: readings.{metric} must map two or more readings (in words) to metrics, "
                              f"{metric} among them (the claim's own reading), e.g. {{last epoch: {metric}, ...}}.")
    return {m: dict(r) for m, r in out.items()}


def _check_keys(path, raw: dict) -> None:
    """Top-level, row and settings keys of a plan file."""
    unknown = set(raw) - _PLAN_KEYS
    if unknown:
        raise ConfigError(f"{path}: unknown top-level key(s) {sorted(unknown)}; keys are {sorted(_PLAN_KEYS)}.")
    for i, row in enumerate(raw.get("rows", [])):
        bad = set(row) - _ROW_KEYS
        if bad or "model" not in row:
            raise ConfigError(f"{path}: rows[{i}] has unknown key(s) {sorted(bad)} or no model; "
                              f"keys are {sorted(_ROW_KEYS)}.")
    for key, entry in (raw.get("settings") or {}).items():
        kinds = {"source", "choice"}
        if not isinstance(entry, dict) or len(set(entry) & kinds) != 1 or set(entry) - kinds:
            raise ConfigError(f"{path}: settings.{key} must be {{source: ...}} (the paper gives it) or "
                              f"{{choice: ...}} (this book's named choice), not {entry!r}.")


def _check_references(path, plan: Plan) -> None:
    """Profiles name existing rows and folds; ``sr_from`` names an existing row."""
    for prof, entry in plan.profiles.items():
        if not isinstance(entry, dict) or set(entry) - {"rows", "set", "folds"} or "rows" not in entry:
            raise ConfigError(f"{path}: profiles.{prof} must be a mapping with 'rows' (and optionally 'set', "
                              f"'folds').")
        if any(not isinstance(k, int) or not 0 <= k < plan.cv_folds for k in entry.get("folds", [])):
            raise ConfigError(f"{path}: profiles.{prof}.folds must list folds in 0..{plan.cv_folds - 1}.")
        missing = [v for v in entry["rows"] if v not in plan.variants()]
        if missing:
            raise ConfigError(f"{path}: profiles.{prof} names unknown row(s) {missing}.")
    for row in plan.rows:
        if row.get("sr_from") and row["sr_from"] not in plan.variants():
            raise ConfigError(f"{path}: row {variant_of(row)!r} has sr_from {row['sr_from']!r}, which is not a row.")


def leaf_keys(fragment: dict, prefix: str = "") -> list[str]:
    """``a.b.c`` for every leaf of a nested config fragment (lists are leaves)."""
    out = []
    for k, v in fragment.items():
        key = f"{prefix}{k}"
        out += leaf_keys(v, key + ".") if isinstance(v, dict) and v else [key]
    return out


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
    size = row.get("quick_input_size") if quick and row.get("quick_input_size") else row.get("input_size")
    row_cfg: dict = {"experiment": plan.paper, "seed": seed,
                     "tags": {"paper": plan.paper, "variant": variant, "profile": profile},
                     "data": {"source": source, **({"dir": str(data_dir)} if data_dir else {})},
                     "model": {"name": row["model"], **({"kwargs": row["kwargs"]} if "kwargs" in row else {})},
                     "loss": {"weights": row.get("loss", {})}}
    if size:
        row_cfg["model"]["input_size"] = size
    if cv:  # CK+, or the synthetic set standing in for it, split by subject
        row_cfg["data"].update(fold=fold or 0, n_folds=plan.cv_folds, cv=True)
    if row.get("sr_from"):  # the SR net trained alone by another row, loaded frozen
        dep = config_for(plan, row["sr_from"], profile, seed=seed, data_dir=data_dir, overrides=overrides)
        row_cfg["model"]["kwargs"] = {**row_cfg["model"].get("kwargs", {}), "sr_weights": checkpoint_of(dep)}
    raw = _merge(_merge(raw, row_cfg), row.get("set", {}))
    cfg = load_config(raw, list(overrides))
    fold_tag = f"-fold{fold or 0}" if cv else ""
    return hashed_run(cfg, f"{variant}-{source}{fold_tag}-s{seed}")


def hashed_run(cfg: Config, stem: str | None = None) -> Config:
    """``cfg`` named ``<stem>-<identity>``: its identity hashes its settings and the data's content,
    never how the data folder is spelled (:func:`fer_core.config.identity_hash`), so a changed
    recipe gets a record of its own instead of colliding with the finished run of the old one, and
    the same run on the same data is one run wherever the data lies. A finished record of the same
    identity under another name (one named before identities were content-based) keeps its name.
    Where the data is not on this machine, the name hashes the settings alone."""
    stem = stem or run_name(cfg)
    try:
        fingerprint = fingerprint_of(cfg.data.source, cfg.data.dir, cfg.data.strict_size)
    except DataError:  # data not on this machine (a slice listed for a cluster node): named without it
        fingerprint = None
    ident = identity_hash(cfg.to_dict(), fingerprint)
    return cfg.model_copy(update={"run": _published_name(cfg, stem, ident) or f"{stem}-{ident[:8]}"})


def _published_name(cfg: Config, stem: str, ident: str) -> str | None:
    """The folder name of a finished, sealed record of this run (``<stem>-*`` with the same
    identity in its manifest) in the config's results folder, if there is one."""
    folder = project_path(cfg.output.results_dir) / cfg.experiment
    for manifest in sorted(folder.glob(f"{stem}-*/{MANIFEST}")):
        try:
            if json.loads(manifest.read_text())["identity"]["settings"] == ident:
                return manifest.parent.name
        except (ValueError, KeyError, TypeError):
            continue  # a damaged manifest: the published view names it; this run is not it
    return None


def checkpoint_of(cfg: Config) -> str:
    """The selected checkpoint of a run, as configured (relative to the project when the
    checkpoint folder is): what another run's config may point to."""
    return str(Path(cfg.output.checkpoint_dir) / cfg.experiment / run_name(cfg) / checkpoints.BEST)


def default_profile(data_dir: str | None = None) -> str:
    """What a notebook runs when its ``profile`` parameter is None: ``FER_PROFILE`` when set (a
    test or batch run), else the ``paper`` profile on a GPU with data configured, else the CPU
    ``smoke`` profile."""
    import torch

    if os.environ.get("FER_PROFILE"):
        return os.environ["FER_PROFILE"]
    return "paper" if torch.cuda.is_available() and data_configured(data_dir) else "smoke"


def notebook_settings(overrides: list[str] = (), *, device: str = "auto", progress: bool = True,
                      epochs: int | None = None, results_dir: str | None = None) -> list[str]:
    """A chapter's parameters as ``key=value`` overrides for every one of its runs; a
    ``results_dir`` of None falls back on ``FER_RESULTS_DIR`` when set, and ``FER_CHECKPOINT_DIR``
    moves the checkpoints (a test's temporary folders)."""
    results_dir = results_dir or os.environ.get("FER_RESULTS_DIR") or None
    settings = [f"train.device={device}", f"train.progress={str(bool(progress)).lower()}"]
    if os.environ.get("FER_CHECKPOINT_DIR"):
        settings.append(f"output.checkpoint_dir={os.environ['FER_CHECKPOINT_DIR']}")
    settings += list(overrides)
    if epochs is not None:
        settings.append(f"train.epochs={int(epochs)}")
    if results_dir is not None:
        settings.append(f"output.results_dir={results_dir}")
    return settings
