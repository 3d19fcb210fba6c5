"""Run configuration: ``params/*.yaml`` merged with overrides and validated.

A params file may start from another with ``base: other.yaml`` (path relative to the file);
``--set key.sub=value`` overrides any field (the value is read as YAML). Unknown keys and
wrong types are errors that name the key and the file.
"""
from __future__ import annotations

import copy
import hashlib
import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator


class _Loader(yaml.SafeLoader):
    """YAML 1.1 reads ``1e-3`` as a string; read it as the float a researcher means."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$|^[-+]?(?:[0-9][0-9_]*)\.[0-9_]*$"
               r"|^[-+]?\.[0-9_]+(?:[eE][-+][0-9]+)?$|^[-+]?\.(?:inf|Inf|INF)$|^\.(?:nan|NaN|NAN)$"),
    list("-+0123456789."))


#: Settings that cannot change a run's result: a resume may change them (the change is recorded),
#: and they are left out of a config's hash and of the "same config" test of a finished run.
RESULT_NEUTRAL = ("train.progress", "train.time_limit", "train.checkpoint_every", "train.checkpoint_within_epoch",
                  "train.eval_batch_size",
                  "output.results_dir", "output.checkpoint_dir", "output.overwrite")


def result_settings(config: dict) -> dict:
    """A resolved config (as a dict) without its :data:`RESULT_NEUTRAL` settings."""
    out = copy.deepcopy(config)
    for key in RESULT_NEUTRAL:
        section, _, leaf = key.partition(".")
        out.get(section, {}).pop(leaf, None)
    return out


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}{k}.") if isinstance(v, dict) and v else {f"{prefix}{k}": v})
    return out


def diff_settings(old: dict, new: dict) -> dict[str, tuple]:
    """``key -> (old, new)`` for every setting (dotted key) that differs between two resolved configs."""
    a, b = _flat(old), _flat(new)
    return {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}


def config_hash(config: dict) -> str:
    """A short hash of a resolved config: the same settings always give the same hash; settings
    that cannot change the result (``config.RESULT_NEUTRAL``) are left out."""
    return hashlib.sha256(json.dumps(result_settings(config), sort_keys=True).encode()).hexdigest()[:16]


def identity_hash(config: dict, data_fingerprint: str | None) -> str:
    """A run's identity as a short hash: its result settings (:func:`result_settings`) with the data
    folder's spelling (``data.dir``) replaced by the data's content (its fingerprint), so that the
    same run on the same data is one run however its path was written."""
    settings = result_settings(config)
    settings.get("data", {}).pop("dir", None)
    settings.pop("run", None)  # a name, not a setting
    settings["data_fingerprint"] = data_fingerprint
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def parse_duration(text) -> float | None:
    """``9m``, ``1h30m``, ``45s`` or a number of seconds, in seconds (None stays None)."""
    if text is None or text == "":
        return None
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return float(text)
    m = re.fullmatch(r"\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)(s?))?\s*", str(text))
    if not m or not any(m.groups()[:3]):
        raise ValueError(f"time limit {text!r}: write it as 9m, 1h30m, 45s or a number of seconds")
    if (m.group(1) or m.group(2)) and m.group(3) and not m.group(4):  # "2h40": minutes or seconds?
        raise ValueError(f"time limit {text!r}: a number after hours or minutes needs its unit (2h40m or 2h40s)")
    h, mi, sec = (float(g or 0) for g in m.groups()[:3])
    return h * 3600 + mi * 60 + sec


def cross_validated(cv: bool | None, source: str) -> bool:
    """``data.cv`` resolved: unset means CK+ only (it has no fixed splits)."""
    return cv if cv is not None else source == "ckplus"


class ConfigError(ValueError):
    """A params file or override that does not fit the schema; the message names the key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, validate_default=True)


class DataConfig(_Section):
    source: Literal["auto", "synthetic", "fer2013", "fer2013-csv", "ferplus", "ckplus", "digits"] = "auto"
    dir: str | None = Field(None, description="data directory; default FER_DATA_DIR")
    fold: int = Field(0, ge=0, description="cross-validation fold used as the test split (the next one validates)")
    n_folds: int = Field(10, ge=2)
    cv: bool | None = Field(None, description="subject-independent k-fold cross-validation; None: CK+ only "
                                              "(true lets the synthetic set stand in for CK+)")
    with_contempt: bool = True
    strict_size: bool = False
    subset: dict[Literal["train", "val", "test"], Annotated[int, Field(ge=1)]] | None = Field(
        None, description="at most this many images per split, stratified (quick profiles)")
    synthetic_size: list[int] = Field([3500, 700, 700], min_length=3, max_length=3)
    seed: int = Field(0, ge=0, le=2**32 - 1, description="seed of the synthetic set and of subset sampling")


class ModelConfig(_Section):
    name: str = "simple_cnn"
    input_size: int | None = Field(None, ge=16, description="None: the model's default")
    weights: str | None = Field(None, description="local weights file (state dict) to start from")
    weights_partial: bool = Field(False, description="load only the keys that fit (e.g. an ImageNet backbone)")
    kwargs: dict[str, Any] = Field(default_factory=dict)


class OptimizerConfig(_Section):
    name: Literal["sgd", "adam", "adamw", "radam"] = "sgd"
    lr: float = Field(0.01, gt=0)
    momentum: float = Field(0.9, ge=0)
    nesterov: bool = False
    weight_decay: float = Field(0.0, ge=0)
    decoupled_weight_decay: bool = Field(False, description="radam: decay the weights directly (AdamW-style), "
                                                            "as the RAdam of Pham et al.'s code does")
    betas: list[float] = Field([0.9, 0.999], min_length=2, max_length=2,
                               description="Adam's two decay rates, each in [0, 1)")
    eps: float = Field(1e-8, gt=0, description="adam, adamw, radam: the denominator's epsilon")

    @field_validator("betas")
    @classmethod
    def _betas_in_range(cls, v):
        if not all(0 <= b < 1 for b in v):
            raise ValueError(f"two numbers in [0, 1) such as [0.9, 0.999], not {v}")
        return v


class SchedulerConfig(_Section):
    name: Literal["none", "plateau", "step", "cosine", "time_one_cycle"] = Field(
        "none", description="time_one_cycle: the learning rate follows the wall clock of train.budget (a linear "
                            "warm-up over `warmup` of it, then a cosine down to min_lr), set at every step")
    factor: float = Field(0.1, gt=0, lt=1, description="plateau: lr multiplier")
    patience: int = Field(5, ge=0, description="plateau: epochs without val-accuracy gain")
    step_size: int = Field(10, ge=1, description="step: epochs between decays")
    gamma: float = Field(0.1, gt=0, description="step: lr multiplier")
    min_lr: float = Field(0.0, ge=0)
    warmup: float = Field(0.1, ge=0, lt=1, description="time_one_cycle: share of the budget to warm up over")


class TrainConfig(_Section):
    epochs: int = Field(10, ge=1)
    batch_size: int = Field(64, ge=1)
    eval_batch_size: int = Field(256, ge=1)
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    scheduler: SchedulerConfig = Field(default_factory=SchedulerConfig)
    early_stopping: int | None = Field(None, ge=1, description="patience in epochs on val accuracy")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    amp: bool | None = Field(None, description="bf16 autocast; None: on for CUDA and for a CPU with bf16 matrix "
                                               "units (AMX-BF16, AVX512-BF16), off elsewhere")
    channels_last: bool | None = Field(None, description="None: where amp is on by default")
    compile: bool = Field(False, description="torch.compile the model for the training steps")
    progress: bool = True
    time_limit: float | None = Field(None, gt=0, description="seconds (or 9m, 1h30m) for this call: after "
                                                             "the epoch that reaches it, checkpoint and stop")
    checkpoint_every: float = Field(120.0, ge=0, description="seconds (or 2m) between two writes of the "
                                    "checkpoints, besides the first epoch and the run's end; 0: every epoch")
    checkpoint_within_epoch: float = Field(1800.0, ge=0, description="seconds (or 30m) of an epoch after which "
                                           "it is checkpointed within itself (a long epoch: ResMaskingNet at "
                                           "224x224 on a CPU); resume continues from that step exactly; 0: never")
    budget: float | None = Field(None, gt=0, description="wall-clock seconds (or 5m, 30m) of training, data loading "
                                                         "and validation included: training stops at the step that "
                                                         "spends it (the last epoch is partial), then tests")

    @field_validator("time_limit", "budget", "checkpoint_every", "checkpoint_within_epoch", mode="before")
    @classmethod
    def _duration(cls, v):
        return parse_duration(v)


class AugmentConfig(_Section):
    hflip: bool = True
    rotation: float = Field(10.0, ge=0, description="max degrees either way")
    crop: Literal["none", "random", "resized"] = "random"
    crop_padding: int = Field(4, ge=0, description="random crop: pixels of padding at 48x48")
    crop_scale: list[float] = Field([0.8, 1.0], min_length=2, max_length=2,
                                    description="resized crop: range of the crop's area")


class LossConfig(_Section):
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    weights: dict[str, float] = Field(default_factory=dict,
                                      description="extra loss terms a model exposes, with their weights")


TTA_MODES = ("tencrop", "random_views")


class EvalConfig(_Section):
    tta: list[Literal["tencrop", "random_views"]] = Field(
        default_factory=list, description="test-time augmentation modes reported beside the plain evaluation: "
        "tencrop (corners, centre and their mirrors), random_views (eval.tta_views draws of the training "
        "augmentation, softmax averaged: Pham et al.'s evaluation)")
    tta_crop: int = Field(44, ge=8, le=48, description="ten-crop size at 48x48")
    tta_views: int = Field(10, ge=1, description="random_views: how many augmented views per image")
    attention: int = Field(32, ge=0, description="test faces explained at the end of training and kept in the "
                                                 "record's attention.npz (0: none)")
    attention_steps: int = Field(16, ge=2, description="Integrated Gradients' steps")
    attention_sanity: bool = Field(True, description="the cascading-randomisation sanity check of the maps")


class OutputConfig(_Section):
    results_dir: str = "results"
    checkpoint_dir: str = "checkpoints"
    overwrite: bool = Field(False, description="replace an existing run (the old one is kept aside)")


class TagsConfig(_Section):
    """How the run is filed in its results folder's ledger (None: derived, see ``Config.tags_for``)."""

    paper: str | None = Field(None, description="the paper (default: the experiment)")
    variant: str | None = Field(None, description="the plan's row (default: the model)")
    profile: str | None = Field(None, description="the profile (default: the experiment)")


class Config(_Section):
    experiment: str = Field("default", pattern=r"^[\w.-]+$")
    run: str | None = Field(None, pattern=r"^[\w.-]+$", description="None: <model>-<data>-s<seed>")
    seed: int = Field(0, ge=0, le=2**32 - 1, description="the run's seed (0 to 2^32 - 1, what numpy and torch take)")
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    loss: LossConfig = Field(default_factory=LossConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)
    tags: TagsConfig = Field(default_factory=TagsConfig)

    @field_validator("experiment", "run")
    @classmethod
    def _a_real_name(cls, v):
        """A folder of its own: "." or ".." would be the results folder itself or its parent."""
        if v is not None and set(v) == {"."}:
            raise ValueError(f"{v!r} is not a name: it would be a folder above the run's own; use letters, digits, "
                             f"'_', '-' or '.' with at least one that is not '.'")
        return v

    @model_validator(mode="after")
    def _check_ranges(self):
        lo, hi = self.augment.crop_scale
        if not 0 < lo <= hi <= 1:
            raise ValueError("augment.crop_scale must be [lo, hi] with 0 < lo <= hi <= 1")
        o = self.train.optimizer
        if o.decoupled_weight_decay and o.name != "radam":
            raise ValueError(f"train.optimizer.decoupled_weight_decay applies to radam only (use adamw for Adam "
                             f"with decoupled decay), not {o.name}")
        if len(set(self.eval.tta)) != len(self.eval.tta):
            raise ValueError(f"eval.tta lists a mode twice: {self.eval.tta}")
        if self.train.scheduler.name == "time_one_cycle" and not self.train.budget:
            raise ValueError("train.scheduler.name=time_one_cycle follows the wall clock of train.budget: set it")
        return self

    @property
    def run_name(self) -> str:
        """``run``, or the name these settings give a run: :meth:`name_for` ``data.source``. Settings
        only, no disk read: a source left ``auto`` is named ``auto`` here; the run layer names a run's
        folders after the source it resolves to (:func:`fer_core.runs.records.run_name`)."""
        return self.run or self.name_for(self.data.source)

    def name_for(self, source: str) -> str:
        """``<model>-<source>[-fold<k>]-s<seed>``: an unnamed run's name once its data resolve to ``source``."""
        fold = f"-fold{self.data.fold}" if cross_validated(self.data.cv, source) else ""
        return f"{self.model.name}-{source}{fold}-s{self.seed}"

    def to_dict(self) -> dict:
        return self.model_dump(mode="json")

    def ledger_tags(self) -> dict[str, str]:
        """``paper``, ``variant`` and ``profile`` of the run's ledger row."""
        t = self.tags
        return {"paper": t.paper or self.experiment, "variant": t.variant or self.model.name,
                "profile": t.profile or self.experiment}


def _merge(base: dict, over: dict) -> dict:
    """Mappings merge key by key; any other value, and an explicitly empty mapping, replaces."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if v and isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


def read_params(path: str | Path, _seen: tuple = ()) -> dict:
    """A params file as a dict, with its ``base:`` chain merged in (later files win)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"Params file {path} does not exist (profiles live in params/).")
    if path.resolve() in _seen:
        raise ConfigError(f"{path}: 'base' chain loops back to itself.")
    try:
        raw = yaml.load(path.read_text(), Loader=_Loader) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path} is not valid YAML: {e}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must hold a mapping of keys, not {type(raw).__name__}.")
    base = raw.pop("base", None)
    if base is None:
        return raw
    return _merge(read_params(path.parent / base, _seen + (path.resolve(),)), raw)


def parse_override(item: str) -> dict:
    """``a.b=value`` as a nested dict; the value is parsed as YAML (``lr=1e-3`` is a float)."""
    if "=" not in item:
        raise ConfigError(f"Override {item!r} must look like key.sub=value.")
    key, value = item.split("=", 1)
    try:
        parsed = yaml.load(value, Loader=_Loader) if value != "" else None
    except yaml.YAMLError:
        parsed = value
    out: dict = parsed
    for part in reversed(key.strip().split(".")):
        out = {part: out}
    return out


def load_config(params: str | Path | dict | None = None, overrides: list[str] | tuple = (),
                **fields: Any) -> Config:
    """Read ``params`` (a file path, a dict or None for defaults), apply ``--set`` overrides
    and keyword fields (``load_config(p, seed=1)``), validate, and return the :class:`Config`.
    An error names each bad key and where its value came from: the file, or the ``--set``."""
    where = str(params) if isinstance(params, (str, Path)) else "config"
    raw = read_params(params) if isinstance(params, (str, Path)) else copy.deepcopy(params or {})
    origin: dict[str, str] = {}
    for item in overrides:
        raw = _merge(raw, parse_override(item))
        origin[item.split("=", 1)[0].strip()] = f"from --set {item}"
    raw = _merge(raw, fields)
    try:
        return Config.model_validate(raw)
    except ValidationError as e:
        lines = []
        for err in e.errors():
            key = ".".join(str(p) for p in err["loc"]) or "(top level)"
            source = next((o for k, o in origin.items()
                           if key == k or key.startswith(k + ".") or k.startswith(key + ".")), f"in {where}")
            if err["type"] == "extra_forbidden":
                section = _section_of(err["loc"][:-1])
                known = ", ".join(section.model_fields) if section else ""
                lines.append(f"  {key}: unknown key (known here: {known}) ({source})")
            else:
                lines.append(f"  {key}: {err['msg']} (got {err.get('input')!r}) ({source})")
        raise ConfigError("Invalid configuration:\n" + "\n".join(lines)) from None


def _section_of(loc: tuple) -> type[BaseModel] | None:
    model: Any = Config
    for part in loc:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        if field is None or not (isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)):
            return None
        model = field.annotation
    return model
