"""The project's settings, in four parts by purpose (the data, the model and its training, the decision rule, what
the run does). Each part checks its own fields when it is built; the parser (config.py) fills them from YAML and
flags, so every field is a key of the one flat config file."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Literal, Optional

import yaml

from jobtitles.core.data import LabeledData, load_labeled_csv
from jobtitles.core.decision_rule import DecisionRule
from jobtitles.selection.decisions import threshold_vector
from jobtitles.core.errors import UserError


@dataclass
class DataArgs:
    """The training CSV and how to read it."""
    _argument_group_name = "data: the CSV, its schema and its labels"  # own --help section

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
    label_groups: str = field(
        default="auto", metadata={"help": "auto: detect exclusive label groups (each Column N its own label family); "
                                          "none; or a YAML list of {labels: [...], exactly_one: true|false}. "
                                          "Group decoding is adopted only when it wins cross-fitted."}
    )
    max_train_rows: Optional[int] = field(default=None, metadata={"help": "Use only the first N rows (debugging)."})

    def __post_init__(self) -> None:
        if len(self.delimiter) != 1 or self.delimiter in "\"\r\n":
            raise UserError(f"delimiter must be one character other than a quote or line break, found "
                            f"{self.delimiter!r}; e.g. ';' or ','")
        if self.max_train_rows is not None and self.max_train_rows < 1:
            raise UserError(f"max_train_rows must be a positive number of rows (or unset), found {self.max_train_rows}")
        if isinstance(self.empty_label, str) and self.empty_label.strip().lower() in ("", "none", "null"):
            self.empty_label = None
        self.label_groups_spec()  # validate early

    def label_groups_spec(self):
        from jobtitles.core.label_groups import parse_groups_setting

        return parse_groups_setting(self.label_groups)

    def load(self, n_splits: int) -> LabeledData:
        """The training CSV, read and checked with these settings (`n_splits`: each label needs that many rows
        to be stratified)."""
        return load_labeled_csv(
            self.train_file, text_column=self.text_column, label_prefix=self.label_column_prefix,
            delimiter=self.delimiter, encoding=self.encoding, empty_label=self.empty_label,
            empty_titles=self.empty_titles, merge_label_variants=self.merge_label_variants, n_splits=n_splits,
            max_rows=self.max_train_rows, label_groups=self.label_groups_spec())


@dataclass
class ModelArgs:
    """The encoder and how it is trained: tokens, head, loss, steps, precision, threads."""
    _argument_group_name = "model: the encoder, its head and how it trains"  # own --help section

    model_name_or_path: str = field(
        default="embedded", metadata={"help": "'embedded' (offline all-MiniLM-L6-v2), a local folder or a Hub id."}
    )
    max_length: int = field(default=64, metadata={"help": "Tokens per title; longer titles are truncated (reported)."})
    title_normalization: Literal["none", "abbreviations"] = field(
        default="none", metadata={"help": "abbreviations: the tokenizer expands VP, SVP, Sr., Dir., Mgr, CEO ... and "
                                          "drops German gender forms and (m/w/d) / (Full-time) notices, in training "
                                          "and every prediction path, a plain pipeline included (it is saved in "
                                          "tokenizer.json); none: titles as written."}
    )
    pad_to_max_length: bool = field(
        default=False, metadata={"help": "Pad every title to max_length (the classic recipe; slow). Default: "
                                         "dynamic padding per batch."}
    )
    head_init: Literal["linear_probe", "random"] = field(
        default="linear_probe", metadata={"help": "linear_probe: fit the classification head on frozen encoder "
                                                  "features (logistic regression) before fine-tuning (LP-FT); "
                                                  "random: the architecture's random head."}
    )
    probe_c: float = field(default=1.0, metadata={"help": "Inverse L2 strength of the linear probe."})
    pos_weight: Literal["none", "sqrt_inverse_frequency", "inverse_frequency"] = field(
        default="sqrt_inverse_frequency",
        metadata={"help": "Positive-class weights of BCE, from each model's training rows: sqrt(negatives / "
                          "positives) per label lets the transformer learn labels of a handful of rows itself."}
    )
    repeat_factor_threshold: float = field(
        default=0.0, metadata={"help": "Repeat-factor sampling (LVIS): a training row whose rarest label is on a "
                                       "fraction f of the rows below this threshold t appears sqrt(t/f) times in "
                                       "its model's training rows (seeded; an epoch gets longer unless the step "
                                       "count is fixed; measured without pos_weight only; 0: off)."}
    )
    group_loss: Literal["bce", "softmax"] = field(
        default="bce", metadata={"help": "bce: an independent sigmoid per label; softmax: cross-entropy within each "
                                         "exclusive label group (see label_groups), sigmoids for the other labels, "
                                         "and group scores that sum to one (TitleClassifier, predict.py, serve, "
                                         "Spark; transformers' pipeline still shows sigmoids)."}
    )
    hp_search_trials: int = field(
        default=0, metadata={"help": "Optuna trials of the Trainer's hyperparameter_search per model (learning rate, "
                                     "weight decay, warmup, batch size), on that model's own training rows only "
                                     "(a fold's training split; all rows for the final model): nested, so the "
                                     "CV figures stay honest; costs about (trials + 1) x the training. 0: off."}
    )
    min_train_steps: int = field(
        default=200, metadata={"help": "At least this many optimizer steps per model: small data sets get more "
                                       "epochs than num_train_epochs (0: epochs as configured; max_steps wins)."}
    )
    step_growth: Literal["sqrt", "linear"] = field(
        default="sqrt", metadata={"help": "sqrt: above step_growth_from rows a model's optimizer steps grow with the "
                                          "square root of its rows (fewer epochs on large sets, where 4 full epochs "
                                          "buy no quality: docs/benchmarks.md); linear: num_train_epochs at any size."}
    )
    step_growth_from: int = field(
        default=6000, metadata={"help": "Rows up to which a model trains num_train_epochs full epochs (step_growth)."}
    )
    gpu_batch_size: int = field(
        default=512, metadata={"help": "On a CUDA GPU the training batch grows to this (a multiple of "
                                       "per_device_train_batch_size), the learning rate with gpu_lr_scaling and "
                                       "min_train_steps shrinks alike: the same titles in fewer, larger steps "
                                       "(0: the configured batch on a GPU too; a CPU run keeps it always)."}
    )
    gpu_lr_scaling: Literal["sqrt", "linear", "none"] = field(
        default="sqrt", metadata={"help": "How the learning rate follows gpu_batch_size's growth k: x sqrt(k), x k, "
                                          "or unchanged."}
    )
    precision: Literal["auto", "fp32", "bf16", "fp16"] = field(
        default="auto", metadata={"help": "auto: bf16 autocast where the hardware computes bf16 natively (recent GPUs; "
                                          "CPUs with AVX512-BF16 or AMX), else fp32; fp32/bf16/fp16 force it."}
    )
    cpu_threads: int = field(
        default=0, metadata={"help": "Torch threads per process when training on CPU; 0 = the cores this process "
                                     "may use divided by the processes on this machine (`accelerate launch` "
                                     "alone would set 1)."}
    )

    def __post_init__(self) -> None:
        if self.cpu_threads < 0:
            raise UserError(f"cpu_threads must be 0 (auto) or a positive number of threads, found {self.cpu_threads}")
        if not (math.isfinite(self.probe_c) and self.probe_c > 0):
            raise UserError(f"probe_c must be a number greater than 0, found {self.probe_c}")
        if not (0.0 <= self.repeat_factor_threshold <= 1.0):
            raise UserError(f"repeat_factor_threshold must be a fraction of the rows from 0 (off) to 1, found "
                            f"{self.repeat_factor_threshold}")
        if self.max_length < 4:
            raise UserError(f"max_length must be at least 4 tokens, found {self.max_length}")
        if self.step_growth_from < 1:
            raise UserError(f"step_growth_from must be a positive number of rows, found {self.step_growth_from}")
        if self.hp_search_trials < 0:
            raise UserError(f"hp_search_trials must be 0 (off) or a number of trials, found {self.hp_search_trials}")
        if self.min_train_steps < 0:
            raise UserError(f"min_train_steps must be 0 or more, found {self.min_train_steps}")
        if self.gpu_batch_size < 0:
            raise UserError(f"gpu_batch_size must be 0 (the configured batch) or a number of titles, found "
                            f"{self.gpu_batch_size}")


@dataclass
class DecisionArgs:
    """How scores become labels, and what the run may tune (cross-fitted)."""
    _argument_group_name = "decisions: how scores become label sets"  # own --help section

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
    at_least_one: bool = field(
        default=True, metadata={"help": "A title with no score over its threshold gets its top label."}
    )
    score_sources: Literal["auto", "transformer"] = field(
        default="transformer",
        metadata={"help": "transformer: every label is scored by the transformer, so a plain transformers "
                          "pipeline shows the shipped scores with group_loss: bce (the run still reports what "
                          "auto would change); "
                          "auto: a label's score may come from the TF-IDF baseline or the mean of both where its "
                          "own cross-fitted gain beats its noise (needs baseline: true)."}
    )

    def __post_init__(self) -> None:
        if not 0.0 < self.decision_threshold < 1.0:  # also false for nan
            raise UserError(f"decision_threshold must be between 0 and 1, found {self.decision_threshold}")
        if self.tune_min_support < 0:
            raise UserError(f"tune_min_support must be 0 or more positives, found {self.tune_min_support}")
        self.label_threshold_map()  # validate early

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


@dataclass
class RunArgs:
    """What the run does and leaves: folds, the baseline, the label-issue list, the final model."""
    _argument_group_name = "run: folds, baseline, reports and the run folder"  # own --help section

    n_splits: int = field(default=5, metadata={"help": "Folds of MultilabelStratifiedKFold."})
    cv_shuffle: bool = field(default=True, metadata={"help": "Shuffle before splitting (seeded by `seed`)."})
    report_train_metrics: bool = field(
        default=True, metadata={"help": "Also score each fold model on its own training split."}
    )
    baseline: bool = field(default=True, metadata={"help": "Run the TF-IDF + logistic regression baseline."})
    label_issues: bool = field(
        default=True, metadata={"help": "After CV, list the rows whose labels are probably wrong in label_issues.csv "
                                        "(cleanlab ranking with the label-issues extra; conflicting duplicates "
                                        "always) and add a report section."}
    )
    final_model: bool = field(default=True, metadata={"help": "Train and save the final model on all rows."})
    fold_average: bool = field(
        default=False, metadata={"help": "Ship the uniform average of the weights of the fold models and the final "
                                         "model (a model soup: one model, no cost at prediction time); the fold "
                                         "models are saved in folds/fold_k/model for it. The CV figures remain "
                                         "those of the fold models."}
    )
    overwrite: bool = field(
        default=False, metadata={"help": "Start over even if the run folder holds a run with other inputs."}
    )
    time_budget: Optional[str] = field(
        default=None, metadata={"help": "Wall time the run may take, e.g. 30m, 2h, 1h30m: it measures its own "
                                        "throughput first and plans steps per model, folds and (above a size) a "
                                        "stratified sample for cross-validation to fit (the final model trains on "
                                        "all rows). Default: no budget."}
    )
    progress: Literal["auto", "bar", "log", "none"] = field(
        default="auto", metadata={"help": "Training progress: a bar per model with the time left for it and the run "
                                          "(bar), a log line a minute (log), or nothing (none); auto: bar when "
                                          "stderr is a terminal, else log."}
    )

    def __post_init__(self) -> None:
        if self.n_splits < 2:
            raise UserError(f"n_splits must be at least 2, found {self.n_splits}")
        if self.fold_average and not self.final_model:
            raise UserError("fold_average is true but final_model is false: the fold models are averaged into the "
                            "final model; set final_model: true or fold_average: false")
        self.budget_seconds()  # validate early

    def budget_seconds(self) -> float | None:
        from jobtitles.train.budget import parse_duration

        return parse_duration(self.time_budget)


PARTS = (DataArgs, ModelArgs, DecisionArgs, RunArgs)


@dataclass(frozen=True)
class ProjectArgs:
    """Everything that is not a TrainingArguments field. Defaults are the project's recommended settings."""

    data: DataArgs = field(default_factory=DataArgs)
    model: ModelArgs = field(default_factory=ModelArgs)
    decision: DecisionArgs = field(default_factory=DecisionArgs)
    run: RunArgs = field(default_factory=RunArgs)

    def __post_init__(self) -> None:
        if self.model.hp_search_trials and self.run.time_budget:
            raise UserError("hp_search_trials and time_budget are both set, but the budget's plan does not count "
                            "search trials; set hp_search_trials: 0 or remove time_budget")

    def as_dict(self) -> dict[str, Any]:
        """Every field by its config key (one flat mapping, as the YAML file and run_info.json have them)."""
        return {k: v for part in (self.data, self.model, self.decision, self.run)
                for k, v in dataclasses.asdict(part).items()}

    def configured_rule(self, labels: list[str]) -> DecisionRule:
        """The rule as configured (before any tuning or group decoding), for these labels."""
        d = self.decision
        thresholds = threshold_vector(labels, d.decision_threshold, d.label_threshold_map())
        exclusive = self.data.empty_label if self.data.empty_label in labels else None
        return DecisionRule(tuple(labels), tuple(float(t) for t in thresholds), d.at_least_one, exclusive)
