"""Run configuration: one YAML file sets the defaults, CLI flags override them (the TRL-script pattern).

Every `transformers.TrainingArguments` field and every field of `project_args.ProjectArgs` can be set in YAML or on the
command line; an unknown key is an error that names it and suggests the closest known key.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import json
import math
from pathlib import Path
from typing import Any

import yaml
from transformers import HfArgumentParser, TrainingArguments

from jobtitles.core.errors import UserError
from jobtitles.train.project_args import PARTS, ProjectArgs
from jobtitles.train.tracking import check_report_to


# Project defaults for TrainingArguments (fast settings for short titles; see docs/benchmarks.md).
TRAINING_DEFAULTS: dict[str, Any] = {
    "output_dir": None,  # filled from the config file's name: outputs/<stem>
    "report_to": "none",
    "save_strategy": "no",  # CV fold models are never reloaded: checkpoints only cost time and disk
    "eval_strategy": "no",  # each fold is scored once, after training, with trainer.predict
    "logging_strategy": "steps",
    "logging_steps": 10,
    "disable_tqdm": True,
    "seed": 42,
}


class _Parser(HfArgumentParser):
    """HfArgumentParser whose errors become UserError (one line, exit 2) and name where the value came from."""

    source = "command line"

    def error(self, message: str):  # type: ignore[override]
        raise UserError(f"{self.source}: {message}")


# The configs shipped inside the package (configs/ in the repository points here), so an installed
# `jobtitles train` finds them by name: `--config base`, `--config distilbert`.
PACKAGED_CONFIGS = Path(__file__).resolve().parents[1] / "configs"
DEFAULT_CONFIG = "base"


def build_parser() -> _Parser:
    parser = _Parser((*PARTS, TrainingArguments), allow_abbrev=False,
                     usage="%(prog)s [-h] [--config FILE_OR_NAME] [--SETTING VALUE ...]",
                     description="Cross-validate, train and save a multi-label job-title classifier. A YAML file "
                                 "(--config) sets defaults, flags override them.")
    parser.add_argument("--config", default=DEFAULT_CONFIG, metavar="FILE_OR_NAME",
                        help=f"YAML file with default values for any flag, or the name of a packaged config "
                             f"({', '.join(packaged_configs())}). Default: {DEFAULT_CONFIG}.")
    _training_arguments_last(parser)
    return parser


def _training_arguments_last(parser: argparse.ArgumentParser) -> None:
    """--help leads with --config and the project's settings (one group per part), then the ~150
    TrainingArguments: HfArgumentParser puts a dataclass without a group name into argparse's default group,
    which argparse prints first, so those actions move into a group of their own printed last."""
    names = {f.name for f in dataclasses.fields(TrainingArguments)}
    group = parser.add_argument_group("transformers.TrainingArguments (the Trainer's own settings)")
    moved = [a for a in parser._optionals._group_actions if a.dest in names]
    for action in moved:
        parser._optionals._group_actions.remove(action)
        group._group_actions.append(action)


def packaged_configs() -> list[str]:
    return sorted(p.stem for p in PACKAGED_CONFIGS.glob("*.yaml"))


def config_file(name: str) -> Path:
    """A config path as given, or (when no such file exists) a packaged config named by its stem."""
    path = Path(name)
    if path.is_file() or path.parent != Path("."):
        return path
    packaged = PACKAGED_CONFIGS / f"{path.stem}.yaml"
    return packaged if path.suffix in ("", ".yaml") and packaged.is_file() else path


def _known_keys(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {a.dest: a for a in parser._actions if a.dest not in ("help", "config")}


def _convert(action: argparse.Action, key: str, value: Any, source: str) -> Any:
    """Convert one YAML value with the same converter the CLI flag uses, so YAML and CLI agree."""
    if key in ("label_thresholds", "label_groups") and isinstance(value, (dict, list)):
        return json.dumps(value)  # structured values travel as JSON text, parsed by ProjectArgs
    if key == "report_to" and isinstance(value, list):
        value = ",".join(map(str, value))  # a YAML list; the flag takes "mlflow,tensorboard"
    if value is None or isinstance(value, dict):
        return value
    values = value if isinstance(value, list) else [value]
    if action.nargs in (None, "?") and isinstance(value, list):
        raise UserError(f"{source}: key '{key}' expects a single value, found a list {value!r}")
    converted = []
    for item in values:
        text = str(item).lower() if isinstance(item, bool) else str(item)
        try:
            out = action.type(text) if callable(action.type) else item
        except (TypeError, ValueError, argparse.ArgumentTypeError) as err:
            expected = getattr(action.type, "__name__", "a valid value")
            raise UserError(f"{source}: key '{key}' expects {expected}, found {item!r}") from err
        if action.choices is not None and out not in action.choices:
            raise UserError(f"{source}: key '{key}' must be one of {sorted(map(str, action.choices))}, found {item!r}")
        converted.append(out)
    return converted if isinstance(value, list) else converted[0]


def read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise UserError(f"config file {path} not found; pass an existing YAML file with --config, or a "
                        f"packaged config by name ({', '.join(packaged_configs())})")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise UserError(f"{path}: not valid YAML ({str(err).splitlines()[0]}); fix the syntax") from err
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping of keys to values, found {type(data).__name__}")
    return data


def parse_config(argv: list[str] | None = None) -> tuple[ProjectArgs, TrainingArguments]:
    """YAML (from --config) sets defaults; remaining CLI flags override them."""
    parser = build_parser()
    path = config_file(_find_config(argv) or DEFAULT_CONFIG)
    known = _known_keys(parser)
    defaults = dict(TRAINING_DEFAULTS)
    for key, value in read_yaml(path).items():
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else "; see README.md for the keys"
            raise UserError(f"{path}: unknown config key '{key}'{hint}")
        defaults[key] = _convert(known[key], key, value, str(path))
    if defaults.get("output_dir") is None:
        defaults["output_dir"] = str(Path("outputs") / path.stem)
    parser.set_defaults(**defaults)
    try:
        *parts, training = parser.parse_args_into_dataclasses(args=argv)[:len(PARTS) + 1]
    except ValueError as err:  # unknown flags, or TrainingArguments.__post_init__ checks (e.g. bf16 on CPU)
        if "not used by the HfArgumentParser" in str(err):
            raise UserError(f"command line: unknown arguments {str(err).split(': ', 1)[-1]}; see --help") from err
        raise UserError(f"invalid training settings: {err}") from err
    validate_training(training)
    return ProjectArgs(*parts), training


# TrainingArguments settings that cannot work in this pipeline: folds are scored once, after training, on
# their test split, and no checkpoint is reloaded.
UNSUPPORTED_TRAINING = {
    "eval_strategy": ("no", "each fold is scored once after training on its test split (report.md); "
                            "evaluating during training would need a validation split this pipeline does not make"),
    "load_best_model_at_end": (False, "no evaluation runs during training, so there is no best checkpoint"),
}


def validate_training(training: TrainingArguments) -> None:
    """Refuse TrainingArguments values that would train nothing, crash inside the Trainer, or silently do
    something else than asked; before any data is read."""
    def bad(key: str, expected: str, found: Any) -> UserError:
        return UserError(f"{key} must be {expected}, found {found!r}")

    if training.max_steps is not None and training.max_steps > 0:
        pass  # max_steps overrides num_train_epochs
    elif not (math.isfinite(training.num_train_epochs) and training.num_train_epochs > 0):
        raise bad("num_train_epochs", "greater than 0 (or set max_steps)", training.num_train_epochs)
    for key in ("per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps"):
        if getattr(training, key) < 1:
            raise bad(key, "at least 1", getattr(training, key))
    if not (math.isfinite(training.learning_rate) and training.learning_rate > 0):
        raise bad("learning_rate", "a number greater than 0 (e.g. 2.0e-4)", training.learning_rate)
    if not (math.isfinite(training.weight_decay) and training.weight_decay >= 0):
        raise bad("weight_decay", "0 or more", training.weight_decay)
    if not 0 <= training.seed < 2**32:
        raise bad("seed", "between 0 and 2**32 - 1", training.seed)
    if not (math.isfinite(training.warmup_steps) and training.warmup_steps >= 0):
        raise bad("warmup_steps", "0 or more (a float below 1 is a fraction of the steps)", training.warmup_steps)
    # `--report_to mlflow,tensorboard`: the flag holds one string, the Trainer wants a list
    training.report_to = [name.strip() for item in training.report_to or [] for name in item.split(",")
                          if name.strip() and name.strip() != "none"]
    check_report_to(training.report_to)
    for key, (allowed, why) in UNSUPPORTED_TRAINING.items():
        value = getattr(training, key)
        value = getattr(value, "value", value)  # enums such as IntervalStrategy
        if value != allowed:
            raise UserError(f"{key}: only {allowed!r} is supported here, found {value!r}: {why}")


def _find_config(argv: list[str] | None) -> str | None:
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config", default=None)
    ns, _ = pre.parse_known_args(argv)
    return ns.config
