"""Run configuration: ``params/*.yaml`` merged with overrides and validated.

A params file may start from another with ``base: other.yaml`` (path relative to the file);
``--set key.sub=value`` overrides any field (the value is read as YAML). Unknown keys and
wrong types are errors that name the key and the file.
"""
from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class _Loader(yaml.SafeLoader):
    """YAML 1.1 reads ``1e-3`` as a string; read it as the float a researcher means."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$|^[-+]?(?:[0-9][0-9_]*)\.[0-9_]*$"
               r"|^[-+]?\.[0-9_]+(?:[eE][-+][0-9]+)?$|^[-+]?\.(?:inf|Inf|INF)$|^\.(?:nan|NaN|NAN)$"),
    list("-+0123456789."))


def cross_validated(cv: bool | None, source: str) -> bool:
    """``data.cv`` resolved: unset means CK+ only (it has no fixed splits)."""
    return cv if cv is not None else source == "ckplus"


class ConfigError(ValueError):
    """A params file or override that does not fit the schema; the message names the key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, validate_default=True)


class DataConfig(_Section):
    source: Literal["auto", "synthetic", "fer2013", "fer2013-csv", "ckplus", "digits"] = "auto"
    dir: str | None = Field(None, description="data directory; default FER_DATA_DIR")
    fold: int = Field(0, ge=0, description="cross-validation fold used as the test split (the next one validates)")
    n_folds: int = Field(10, ge=2)
    cv: bool | None = Field(None, description="subject-independent k-fold cross-validation; None: CK+ only "
                                              "(true lets the synthetic set stand in for CK+)")
    with_contempt: bool = True
    strict_size: bool = False
    subset: dict[Literal["train", "val", "test"], int] | None = Field(
        None, description="at most this many images per split, stratified (quick profiles)")
    synthetic_size: list[int] = Field([3500, 700, 700], min_length=3, max_length=3)
    seed: int = Field(0, description="seed of the synthetic set and of subset sampling")


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
    betas: list[float] = Field([0.9, 0.999], min_length=2, max_length=2)


class SchedulerConfig(_Section):
    name: Literal["none", "plateau", "step", "cosine"] = "none"
    factor: float = Field(0.1, gt=0, lt=1, description="plateau: lr multiplier")
    patience: int = Field(5, ge=0, description="plateau: epochs without val-accuracy gain")
    step_size: int = Field(10, ge=1, description="step: epochs between decays")
    gamma: float = Field(0.1, gt=0, description="step: lr multiplier")
    min_lr: float = Field(0.0, ge=0)


class TrainConfig(_Section):
    epochs: int = Field(10, ge=1)
    batch_size: int = Field(64, ge=1)
    eval_batch_size: int = Field(256, ge=1)
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    scheduler: SchedulerConfig = Field(default_factory=SchedulerConfig)
    early_stopping: int | None = Field(None, ge=1, description="patience in epochs on val accuracy")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    amp: bool | None = Field(None, description="bf16 autocast; None: on for CUDA, off on CPU")
    channels_last: bool | None = Field(None, description="None: on for CUDA")
    progress: bool = True


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


class EvalConfig(_Section):
    tta: bool = Field(False, description="also report ten-crop + flip test-time augmentation")
    tta_crop: int = Field(44, ge=8, le=48, description="ten-crop size at 48x48")


class OutputConfig(_Section):
    results_dir: str = "results"
    checkpoint_dir: str = "checkpoints"
    overwrite: bool = Field(False, description="replace an existing run (the old one is kept aside)")


class Config(_Section):
    experiment: str = Field("default", pattern=r"^[\w.-]+$")
    run: str | None = Field(None, pattern=r"^[\w.-]+$", description="None: <model>-<data>-s<seed>")
    seed: int = 0
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    loss: LossConfig = Field(default_factory=LossConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)

    @model_validator(mode="after")
    def _check_ranges(self):
        lo, hi = self.augment.crop_scale
        if not 0 < lo <= hi <= 1:
            raise ValueError("augment.crop_scale must be [lo, hi] with 0 < lo <= hi <= 1")
        return self

    @property
    def run_name(self) -> str:
        if self.run:
            return self.run
        from .data import resolve  # 'auto' is named after the source it resolves to

        source = resolve(self.data.source, self.data.dir)[0]
        fold = f"-fold{self.data.fold}" if cross_validated(self.data.cv, source) else ""
        return f"{self.model.name}-{source}{fold}-s{self.seed}"

    def to_dict(self) -> dict:
        return self.model_dump(mode="json")


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
    and keyword fields (``load_config(p, seed=1)``), validate, and return the :class:`Config`."""
    where = str(params) if isinstance(params, (str, Path)) else "config"
    raw = read_params(params) if isinstance(params, (str, Path)) else copy.deepcopy(params or {})
    for item in overrides:
        raw = _merge(raw, parse_override(item))
    raw = _merge(raw, fields)
    try:
        return Config.model_validate(raw)
    except ValidationError as e:
        lines = []
        for err in e.errors():
            key = ".".join(str(p) for p in err["loc"]) or "(top level)"
            if err["type"] == "extra_forbidden":
                section = _section_of(err["loc"][:-1])
                known = ", ".join(section.model_fields) if section else ""
                lines.append(f"  {key}: unknown key (known here: {known})")
            else:
                lines.append(f"  {key}: {err['msg']} (got {err.get('input')!r})")
        raise ConfigError(f"Invalid configuration in {where}:\n" + "\n".join(lines)) from None


def _section_of(loc: tuple) -> type[BaseModel] | None:
    model: Any = Config
    for part in loc:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        if field is None or not (isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)):
            return None
        model = field.annotation
    return model
