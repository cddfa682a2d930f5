"""Configuration as plain dataclasses, validated once at the edge.

A run is described by a ``RunConfig``: which model family, which data, the family's own
model settings and the shared training settings. Values come from defaults, then an optional
TOML file, then ``--set section.key=value`` overrides; an unknown key or a value of the wrong
type is a ``GankitError`` naming the key and what it accepts.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import sys
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

from gankit.errors import GankitError

LossName = Literal["nonsaturating", "minimax", "lsgan", "hinge"]


@dataclass
class TrainConfig:
    """Settings of the shared training loop; the same for every model family."""

    steps: int = 2000  # generator updates; the budget unless epochs or minutes is set
    epochs: float = 0.0  # if > 0, the budget in passes over the data (overrides steps)
    minutes: float = 0.0  # if > 0, a wall-clock budget that ends training early
    batch_size: int = 64
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    lr_decay: float = 0.0  # the last fraction of the budget over which both lrs fall linearly to 0
    d_steps: int = 1  # discriminator updates per generator update (k in the GAN paper)
    ema: float = 0.999  # decay of the generator's moving average; 0 turns it off
    ema_every: int = 4  # steps between the average's updates after its warm-up (train/ema.py); 1: every step
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: int = 0  # CPU threads for PyTorch; 0 keeps PyTorch's choice
    compile: bool = False  # torch.compile G and D for the training passes (falls back to eager on failure)
    # Minutes a rank of a distributed run waits in a collective before it gives up (a rank that
    # died on another machine); 0 keeps PyTorch's: 10 for NCCL, 30 for gloo. Rank 0's pauses
    # (checkpoints, sample grids, eval_every's scores) must fit in it.
    dist_timeout: float = 0.0
    log_every: int = 50
    sample_every: int = 500
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    rollbacks: int = 0  # on a non-finite loss, roll back to the last checkpoint this many times
    rollback_lr_factor: float = 0.5  # ... multiplying both learning rates by this each time
    eval_every: int = 0  # quick FID during training every N steps; 0 turns it off
    eval_samples: int = 2000
    progress: bool = True
    init: str = ""  # a run folder whose generator starts this one (SRGAN from SRResNet)


@dataclass
class DataConfig:
    spec: str = ""  # empty: the model family's default dataset
    image_size: int = 0  # resize images to this size; 0 keeps the source's default
    channels: int = 0  # 1 (grayscale) or 3 (RGB); 0 keeps the source's default

    def validate(self) -> None:
        """The settings' ranges, checked by the CLI and by ``load_dataset`` alike."""
        if type(self.channels) is not int or self.channels not in (0, 1, 3):
            raise GankitError(f"data.channels must be 1 (grayscale) or 3 (RGB), not {self.channels!r}.")
        if type(self.image_size) is not int or not 0 <= self.image_size <= MAX_IMAGE_SIZE:
            raise GankitError(f"data.image_size must be between 0 (the source's own size) and {MAX_IMAGE_SIZE:,} "
                              f"pixels, not {self.image_size!r}.")


@dataclass
class RunConfig:
    model: str
    model_cfg: Any  # the family's own dataclass
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "data": dataclasses.asdict(self.data),
            "train": dataclasses.asdict(self.train),
            # "model" is the family's name; its settings (--set model.KEY) are kept under "model_cfg".
            "model_cfg": dataclasses.asdict(self.model_cfg),
        }


MIN_DIST_TIMEOUT, MAX_DIST_TIMEOUT = 1, 1440  # minutes: a checkpoint's pause, a day
# Beyond these, a typo's extra zeros: a year of minutes; more threads than any CPU has cores (100,000
# ran out of memory in PyTorch's thread pool).
MAX_BUDGET = {"train.steps": 10**9, "train.epochs": 10**6, "train.minutes": 525_600, "train.threads": 1024}
SECTIONS = ("train", "data", "model")
RUN_CONFIG_KEYS = ("model", "train", "data", "model_cfg")  # what RunConfig.to_dict writes to config.json


def section_object(cfg: RunConfig, section: str) -> Any:
    return {"train": cfg.train, "data": cfg.data, "model": cfg.model_cfg}[section]


def _describe_type(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (tuple,):
        item = typing.get_args(tp)[0]
        return {int: "comma-separated whole numbers such as 256,512", float: "comma-separated numbers"}.get(
            item, "a comma-separated list")
    return {int: "an integer", float: "a number", bool: "true or false", str: "text"}.get(
        tp, str(tp)
    )


def _convert(value: Any, tp: Any) -> Any:
    """Convert ``value`` to type ``tp`` or raise ValueError."""
    origin = typing.get_origin(tp)
    if origin is Literal:
        if value not in typing.get_args(tp):
            raise ValueError
        return value
    if origin is tuple:
        item_type = typing.get_args(tp)[0]
        if not isinstance(value, (str, list, tuple)):
            raise ValueError
        items = value.split(",") if isinstance(value, str) else list(value)
        return tuple(_convert(v.strip() if isinstance(v, str) else v, item_type) for v in items if v != "")
    if tp is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "1", "yes", "on"):
            return True
        if text in ("false", "0", "no", "off"):
            return False
        raise ValueError
    if isinstance(value, bool):  # TOML true is not a number
        raise ValueError
    if tp is int:  # a float is refused, as "1e3" is from --set: 1e3 or 5.0 is a typo's kind of integer
        if not isinstance(value, (numbers.Integral, str)):  # numpy's integers too, from a Python caller
            raise ValueError
        return int(value.strip()) if isinstance(value, str) else int(value)
    if tp is float:
        if not isinstance(value, (numbers.Real, str)):  # a TOML date or table
            raise ValueError
        result = float(value)
        if not math.isfinite(result):
            raise ValueError
        return result
    if tp is str:
        if not isinstance(value, str):
            raise ValueError
        return value
    raise TypeError(f"unsupported setting type {tp}")  # a bug in a config class, not user input


def coerce(value: Any, tp: Any, where: str, fix: str = "") -> Any:
    """Convert ``value`` (text from --set, or a TOML/JSON value) to the field type ``tp``; ``where``
    names the setting (and its file) in the error, which ends with ``fix`` when one is given."""
    try:
        return _convert(value, tp)
    except (ValueError, OverflowError):
        raise GankitError(f"{where} must be {_describe_type(tp)}, not {value!r}{'; ' + fix if fix else ''}.") from None


# The fix for a bad entry in a file gankit wrote (a run's config.json, generator.json)
RESTORE = "restore the file as gankit wrote it"


def set_value(cfg: RunConfig, key: str, value: Any, file: Path | None = None, saved: bool = False) -> None:
    """Apply one ``section.key=value`` setting, validating the key and the value's type. ``file`` is
    the TOML file (or, when ``saved``, the run's config.json) it came from, for the error message."""
    section, _, name = key.partition(".")
    if section not in SECTIONS or not name:
        raise GankitError(
            f"Unknown setting {key!r}: use section.key with a section among {', '.join(SECTIONS)}."
        )
    target = section_object(cfg, section)
    hints = typing.get_type_hints(type(target))
    named = f" in {file}" if file is not None else ""
    if name not in hints:
        if saved:
            raise GankitError(f"{key}{named} is not a setting of this gankit version; the file was written by another "
                              "version: resume the run with that version, or remove the entry.")
        valid = ", ".join(f.name for f in dataclasses.fields(target))
        raise GankitError(f"Unknown setting {key!r}{named}; valid keys in [{section}] are: {valid}.")
    setattr(target, name, coerce(value, hints[name], key + named, RESTORE if saved else ""))


def parse_set(assignment: str) -> tuple[str, str]:
    key, sep, value = assignment.partition("=")
    if not sep or not key.strip():
        raise GankitError(f"--set {assignment!r} must look like section.key=value, e.g. train.lr_g=1e-4.")
    return key.strip(), value.strip()


def config_from_dict(cls: type, values: dict[str, Any], file: Path, key: str) -> Any:
    """Build dataclass ``cls`` from the values saved under ``key`` in ``file`` (JSON turns tuples
    into lists), checking each entry."""
    if not isinstance(values, dict):
        raise GankitError(f"{key} in {file} must hold a table of settings, not {values!r}; {RESTORE}.")
    hints = typing.get_type_hints(cls)
    obj = cls()
    for name, value in values.items():
        if name not in hints:
            raise GankitError(f"{key}.{name} in {file} is not a setting of this gankit version; the file was written "
                              "by another version: use that version, or remove the entry.")
        setattr(obj, name, coerce(value, hints[name], f"{key}.{name} in {file}", RESTORE))
    return obj


def load_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise GankitError(f"Config file {path} does not exist; check the path given to --config.") from None
    except OSError as e:
        raise GankitError(f"Cannot read the config file {path} ({e.strerror}); give --config a readable TOML "
                          "file.") from None
    except UnicodeDecodeError:
        raise GankitError(f"Config file {path} is not UTF-8 text; give --config a TOML file.") from None
    except tomllib.TOMLDecodeError as e:
        raise GankitError(f"Config file {path} is not valid TOML ({e}); fix the syntax.") from None


def apply_mapping(cfg: RunConfig, mapping: dict[str, Any], file: Path | None = None, saved: bool = False) -> None:
    """Apply a mapping of sections to key/value tables: the TOML ``file`` given to --config, or
    (``saved``) a run's config.json, whose fix for a bad entry differs."""
    named = f" in {file}" if file is not None else ""
    for section, table in mapping.items():
        if section == "model" and isinstance(table, str):
            if table != cfg.model:  # the family is chosen on the command line
                raise GankitError(f"The config file{named} names model {table!r} but the command trains {cfg.model}; "
                                  f"run `gankit train {table} --config ...` or drop the model line.")
            continue
        home = next((s for s in SECTIONS if section in typing.get_type_hints(type(section_object(cfg, s)))), None)
        if section not in SECTIONS and home and not saved:  # `steps = 5` written above any [table]
            raise GankitError(f"{section}{named} is outside any table; put it under [{home}].")
        if section not in SECTIONS:
            raise GankitError(f"Unknown config section [{section}]{named}; valid sections are {', '.join(SECTIONS)}.")
        if not isinstance(table, dict):
            fix = (f"{RESTORE}, or start a new run with --out" if saved
                   else f"write [{section}] on its own line, then one key = value per line")
            raise GankitError(f"{section}{named} must be a table of settings, not {table!r}; {fix}.")
        for name, value in table.items():
            set_value(cfg, f"{section}.{name}", value, file, saved)


MAX_IMAGE_SIZE = 1024  # a side in pixels: larger is a typo here (one such dataset of 5,000 images is 60 GB)
# Super-resolution works on LR tiles of this side. Each tile carries G's receptive radius (about 40
# pixels) of context on every side, so small tiles repeat much of the work: at 96 a 192x192 image
# took 3.7x as long as one pass. At 192 a tile's largest map (256 channels at twice its side) is ~300 MB.
TILE = 192
MIN_SCORED_SAMPLES = 10  # IS uses 10 splits and precision/recall 3 neighbours (metrics/evaluate.py)
TRAIN_SEED_MAX = 2**31 - 1  # the noise streams derive seeds from it (seed * 7919 + ...), which must fit in 64 bits


def require_whole(value: object, what: str, low: int, high: int) -> int:
    """A count or seed as an int in [low, high] (numpy ints too; not 2.5, not True)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not low <= value <= high:
        raise GankitError(f"{what} must be a whole number between {low} and {high:,}, not {value!r}.")
    return int(value)


def check_types(cfg: RunConfig) -> None:
    """Each setting as its field's type, as --set and a TOML file would give it: a Python caller sets
    fields directly (``steps=2.5`` trained a fractional budget, ``precision="fp16"`` ran as auto)."""
    for section in SECTIONS:
        target = section_object(cfg, section)
        hints = typing.get_type_hints(type(target))
        for f in dataclasses.fields(target):
            value = getattr(target, f.name)
            converted = coerce(value, hints[f.name], f"{section}.{f.name}")
            if not (type(value) is int and type(converted) is float):  # 500000 for a float setting stays as written
                setattr(target, f.name, converted)


def validate(cfg: RunConfig) -> None:
    """Types, then range checks that a type alone does not express."""
    check_types(cfg)
    t = cfg.train
    require_whole(t.seed, "train.seed", 0, TRAIN_SEED_MAX)
    positive = {
        "train.d_steps": t.d_steps, "train.log_every": t.log_every,
        "train.sample_every": t.sample_every, "train.checkpoint_every": t.checkpoint_every,
        "train.keep_checkpoints": t.keep_checkpoints, "train.eval_samples": t.eval_samples,
        "train.ema_every": t.ema_every,
    }
    for key, value in positive.items():
        if value < 1:
            raise GankitError(f"{key} must be at least 1, not {value}.")
    if t.batch_size < 2:  # BatchNorm in training mode needs two samples to take statistics from
        raise GankitError(f"train.batch_size must be at least 2, not {t.batch_size}.")
    cfg.data.validate()
    non_negative = {"train.steps": t.steps, "train.epochs": t.epochs, "train.minutes": t.minutes,
                    "train.eval_every": t.eval_every, "train.threads": t.threads, "train.rollbacks": t.rollbacks,
                    "train.dist_timeout": t.dist_timeout}
    for key, value in non_negative.items():
        if value < 0:
            raise GankitError(f"{key} must not be negative, not {value}.")
    for key, limit in MAX_BUDGET.items():
        value = getattr(t, key.removeprefix("train."))
        if value > limit:
            raise GankitError(f"{key} must be at most {limit:,}, not {value:,}.")
    if t.dist_timeout and not MIN_DIST_TIMEOUT <= t.dist_timeout <= MAX_DIST_TIMEOUT:
        raise GankitError(f"train.dist_timeout must be 0 (PyTorch's default) or between {MIN_DIST_TIMEOUT} and "
                          f"{MAX_DIST_TIMEOUT:,} minutes, long enough for rank 0 to save a checkpoint while the "
                          f"others wait, not {t.dist_timeout}.")
    if t.eval_every and t.eval_samples < MIN_SCORED_SAMPLES:
        raise GankitError(f"train.eval_samples must be at least {MIN_SCORED_SAMPLES} when train.eval_every is set, "
                          f"not {t.eval_samples}.")
    if t.steps == 0 and t.epochs == 0 and t.minutes == 0:
        raise GankitError("The training budget is empty: set --steps, --epochs or --minutes above 0.")
    for key, value in {"train.lr_g": t.lr_g, "train.lr_d": t.lr_d}.items():
        if not 0 < value < 1:
            raise GankitError(f"{key} must be between 0 and 1, not {value}.")
    if not 0 <= t.lr_decay <= 1:
        raise GankitError(f"train.lr_decay must be in [0, 1], not {t.lr_decay}.")
    if not 0 < t.rollback_lr_factor <= 1:
        raise GankitError(f"train.rollback_lr_factor must be in (0, 1], not {t.rollback_lr_factor}.")
    for key, value in {"train.beta1": t.beta1, "train.beta2": t.beta2, "train.ema": t.ema}.items():
        if not 0 <= value < 1:
            raise GankitError(f"{key} must be in [0, 1), not {value}.")
    check = getattr(cfg.model_cfg, "validate", None)
    if check is not None:
        check()
