"""Run configuration: one YAML file sets the defaults, CLI flags override them (the TRL-script pattern).

Every `transformers.TrainingArguments` field and every `ProjectArgs` field below can be set in YAML or on the
command line; an unknown key is an error that names it and suggests the closest known key.
"""

from __future__ import annotations

import argparse
import difflib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional

import yaml
from transformers import HfArgumentParser, TrainingArguments

from jobtitles.decision_rule import DecisionRule
from jobtitles.decisions import threshold_vector
from jobtitles.errors import UserError


@dataclass
class ProjectArgs:
    """Everything that is not a TrainingArguments field. Defaults are the project's recommended settings."""

    # --- data ---
    train_file: str = field(default="data/job_titles.csv", metadata={"help": "Semicolon CSV: Title;Column 1;..."})
    text_column: str = field(default="Title", metadata={"help": "Header of the title column."})
    label_column_prefix: str = field(default="Column", metadata={"help": "Label columns are '<prefix> <N>'."})
    delimiter: str = field(default=";", metadata={"help": "CSV field delimiter."})
    encoding: str = field(default="utf-8", metadata={"help": "CSV encoding; a BOM is tolerated."})
    empty_label: Optional[str] = field(
        default="Not Required", metadata={"help": "Label for rows with no label; null keeps an all-zero target."}
    )
    empty_titles: Literal["drop", "error"] = field(
        default="drop", metadata={"help": "Rows with an empty title: drop them (reported) or stop."}
    )
    merge_label_variants: bool = field(
        default=False, metadata={"help": "Merge labels that differ only by case/spacing (always reported)."}
    )
    max_length: int = field(default=64, metadata={"help": "Tokens per title; longer titles are truncated (reported)."})
    pad_to_max_length: bool = field(
        default=False, metadata={"help": "Pad every title to max_length (the classic recipe; slow). Default: "
                                         "dynamic padding per batch."}
    )
    # --- model ---
    model_name_or_path: str = field(
        default="embedded", metadata={"help": "'embedded' (offline all-MiniLM-L6-v2), a local folder or a Hub id."}
    )
    # --- cross-validation ---
    n_splits: int = field(default=5, metadata={"help": "Folds of MultilabelStratifiedKFold."})
    cv_shuffle: bool = field(default=True, metadata={"help": "Shuffle before splitting (seeded by `seed`)."})
    report_train_metrics: bool = field(
        default=True, metadata={"help": "Also score each fold model on its own training split."}
    )
    # --- decisions ---
    decision_threshold: float = field(default=0.5, metadata={"help": "Global sigmoid threshold."})
    label_thresholds: Optional[str] = field(
        default=None, metadata={"help": "Per-label thresholds, a mapping (YAML) or JSON string {label: value}."}
    )
    tune_thresholds: bool = field(
        default=True, metadata={"help": "Tune per-label thresholds on out-of-fold scores (cross-fitted)."}
    )
    tune_min_support: int = field(
        default=10, metadata={"help": "Labels with fewer positives keep the global threshold."}
    )
    label_groups: str = field(
        default="auto", metadata={"help": "auto: detect exclusive label groups (each Column N its own label family); "
                                          "none; or a YAML list of {labels: [...], exactly_one: true|false}. "
                                          "Group decoding is adopted only when it wins cross-fitted."}
    )
    at_least_one: bool = field(
        default=True, metadata={"help": "A title with no score over its threshold gets its top label."}
    )
    score_sources: Literal["auto", "transformer"] = field(
        default="auto", metadata={"help": "auto: each label's score may come from the transformer, the TF-IDF "
                                          "baseline or their mean, chosen cross-fitted on out-of-fold scores and "
                                          "adopted only when it raises macro-F1 (needs baseline: true); "
                                          "transformer: always the transformer."}
    )
    # --- head ---
    head_init: Literal["linear_probe", "random"] = field(
        default="linear_probe", metadata={"help": "linear_probe: fit the classification head on frozen encoder "
                                                  "features (logistic regression) before fine-tuning (LP-FT); "
                                                  "random: the architecture's random head."}
    )
    probe_c: float = field(default=1.0, metadata={"help": "Inverse L2 strength of the linear probe."})
    # --- loss ---
    pos_weight: Literal["none", "sqrt_inverse_frequency", "inverse_frequency"] = field(
        default="none", metadata={"help": "Positive-class weights of BCE, from each fold's training split."}
    )
    group_loss: Literal["bce", "softmax"] = field(
        default="bce", metadata={"help": "bce: an independent sigmoid per label; softmax: cross-entropy within each "
                                         "exclusive label group (see label_groups), sigmoids for the other labels, "
                                         "and group scores that sum to one (TitleClassifier, predict.py, serve, "
                                         "Spark; transformers' pipeline still shows sigmoids)."}
    )
    # --- training budget ---
    min_train_steps: int = field(
        default=200, metadata={"help": "At least this many optimizer steps per model: small data sets get more "
                                       "epochs than num_train_epochs (0: epochs as configured; max_steps wins)."}
    )
    # --- run ---
    baseline: bool = field(default=True, metadata={"help": "Run the TF-IDF + logistic regression baseline."})
    label_issues: bool = field(
        default=True, metadata={"help": "After CV, list the rows whose labels are probably wrong in label_issues.csv "
                                        "(cleanlab ranking with the label-issues extra; conflicting duplicates "
                                        "always) and add a report section."}
    )
    final_model: bool = field(default=True, metadata={"help": "Train and save the final model on all rows."})
    precision: Literal["auto", "fp32", "bf16", "fp16"] = field(
        default="auto", metadata={"help": "auto: bf16 autocast where the hardware computes bf16 natively (recent GPUs; "
                                          "CPUs with AVX512-BF16 or AMX), else fp32; fp32/bf16/fp16 force it."}
    )
    overwrite: bool = field(
        default=False, metadata={"help": "Start over even if the run folder holds a run with other inputs."}
    )
    cpu_threads: int = field(
        default=0, metadata={"help": "Torch threads per process when training on CPU; 0 = the cores this process "
                                     "may use divided by the processes on this machine (`accelerate launch` "
                                     "alone would set 1)."}
    )
    max_train_rows: Optional[int] = field(default=None, metadata={"help": "Use only the first N rows (debugging)."})

    def __post_init__(self) -> None:
        if self.n_splits < 2:
            raise UserError(f"n_splits must be at least 2, found {self.n_splits}")
        if not 0.0 < self.decision_threshold < 1.0:  # also false for nan
            raise UserError(f"decision_threshold must be between 0 and 1, found {self.decision_threshold}")
        if self.cpu_threads < 0:
            raise UserError(f"cpu_threads must be 0 (auto) or a positive number of threads, found {self.cpu_threads}")
        if not (math.isfinite(self.probe_c) and self.probe_c > 0):
            raise UserError(f"probe_c must be a number greater than 0, found {self.probe_c}")
        if self.max_length < 4:
            raise UserError(f"max_length must be at least 4 tokens, found {self.max_length}")
        if len(self.delimiter) != 1 or self.delimiter in "\"\r\n":
            raise UserError(f"delimiter must be one character other than a quote or line break, found "
                            f"{self.delimiter!r}; e.g. ';' or ','")
        if self.max_train_rows is not None and self.max_train_rows < 1:
            raise UserError(f"max_train_rows must be a positive number of rows (or unset), found {self.max_train_rows}")
        if self.min_train_steps < 0:
            raise UserError(f"min_train_steps must be 0 or more, found {self.min_train_steps}")
        if self.tune_min_support < 0:
            raise UserError(f"tune_min_support must be 0 or more positives, found {self.tune_min_support}")
        if isinstance(self.empty_label, str) and self.empty_label.strip().lower() in ("", "none", "null"):
            self.empty_label = None
        self.label_threshold_map()  # validate early
        self.label_groups_spec()

    def label_groups_spec(self):
        from jobtitles.label_groups import parse_groups_setting

        return parse_groups_setting(self.label_groups)

    def label_threshold_map(self) -> dict[str, float]:
        if not self.label_thresholds:
            return {}
        try:
            parsed = yaml.safe_load(self.label_thresholds)
        except yaml.YAMLError as err:
            raise UserError(f"label_thresholds: expected a mapping {{label: threshold}}, found {self.label_thresholds!r}") from err
        if not isinstance(parsed, dict):
            raise UserError(f"label_thresholds: expected a mapping {{label: threshold}}, found {self.label_thresholds!r}")
        out: dict[str, float] = {}
        for label, value in parsed.items():
            try:
                out[str(label)] = float(value)
            except (TypeError, ValueError) as err:
                raise UserError(f"label_thresholds: threshold of {label!r} must be a number, found {value!r}") from err
            if not 0.0 < out[str(label)] < 1.0:
                raise UserError(f"label_thresholds: threshold of {label!r} must be between 0 and 1, found {value!r}")
        return out

    def configured_rule(self, labels: list[str]) -> DecisionRule:
        """The rule as configured (before any tuning or group decoding), for these labels."""
        thresholds = threshold_vector(labels, self.decision_threshold, self.label_threshold_map())
        exclusive = self.empty_label if self.empty_label in labels else None
        return DecisionRule(tuple(labels), tuple(float(t) for t in thresholds), self.at_least_one, exclusive)


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


def build_parser() -> _Parser:
    parser = _Parser((ProjectArgs, TrainingArguments), allow_abbrev=False)
    parser.add_argument("--config", default=None, help="YAML file with default values for any flag.")
    return parser


def _known_keys(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {a.dest: a for a in parser._actions if a.dest not in ("help", "config")}


def _convert(action: argparse.Action, key: str, value: Any, source: str) -> Any:
    """Convert one YAML value with the same converter the CLI flag uses, so YAML and CLI agree."""
    if key in ("label_thresholds", "label_groups") and isinstance(value, (dict, list)):
        return json.dumps(value)  # structured values travel as JSON text, parsed by ProjectArgs
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
        raise UserError(f"config file {path} not found; pass an existing YAML file with --config")
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
    config_path = _find_config(argv)
    known = _known_keys(parser)
    defaults = dict(TRAINING_DEFAULTS)
    if config_path is not None:
        path = Path(config_path)
        for key, value in read_yaml(path).items():
            if key not in known:
                close = difflib.get_close_matches(str(key), known, n=1)
                hint = f"; did you mean '{close[0]}'?" if close else "; see README.md for the keys"
                raise UserError(f"{path}: unknown config key '{key}'{hint}")
            defaults[key] = _convert(known[key], key, value, str(path))
        if defaults.get("output_dir") is None:
            defaults["output_dir"] = str(Path("outputs") / path.stem)
    if defaults.get("output_dir") is None:
        defaults["output_dir"] = "outputs/run"
    parser.set_defaults(**defaults)
    try:
        project, training = parser.parse_args_into_dataclasses(args=argv)[:2]
    except ValueError as err:  # unknown flags, or TrainingArguments.__post_init__ checks (e.g. bf16 on CPU)
        if "not used by the HfArgumentParser" in str(err):
            raise UserError(f"command line: unknown arguments {str(err).split(': ', 1)[-1]}; see --help") from err
        raise UserError(f"invalid training settings: {err}") from err
    validate_training(training)
    return project, training


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
