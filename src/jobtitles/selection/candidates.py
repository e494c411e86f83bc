"""The names of what a run compares: each candidate decision rule (configured, shrunk or tuned thresholds, with or
without one label per group) and the other rows of the report (the baseline, the training splits). Every module
that needs a key, a title or an order asks here, so a name is spelled once."""

from __future__ import annotations

from dataclasses import dataclass

# What the rule chooser maximises: the mean of micro-F1 and subset accuracy; subset accuracy alone where every
# title has exactly one label of each group (decisions.whole_label_sets)
MEAN_OBJECTIVE, SUBSET_OBJECTIVE = "mean of micro-F1 and subset accuracy", "subset accuracy"

BASES = ("configured", "shrunk", "tuned")  # where thresholds come from, simplest first: ties go to the earlier
CONFIGURED_THRESHOLDS, SHRUNK_THRESHOLDS, TUNED_THRESHOLDS = BASES
BASELINE, TRAIN = "baseline", "model_train"  # report rows that are not candidate rules
_BASE_TITLES = {"configured": "threshold as configured", "tuned": "tuned thresholds, cross-fitted",
                "shrunk": "shrunk thresholds, cross-fitted"}
_OTHER_TITLES = {BASELINE: "TF-IDF + logistic regression baseline", TRAIN: "transformer on its training splits"}


@dataclass(frozen=True)
class Candidate:
    base: str  # one of BASES: where the thresholds come from
    grouped: bool = False  # decode one label per exclusive group

    def __post_init__(self) -> None:
        if self.base not in BASES:
            raise ValueError(f"candidate base must be one of {BASES}, found {self.base!r}")

    @property
    def key(self) -> str:
        """'tuned+groups': the rule's name in cv_results.json (decision_rule.chosen, fold_micro_f1)."""
        return self.base + ("+groups" if self.grouped else "")

    @property
    def variant(self) -> str:
        """'model_tuned_groups': its row in the summary and per-label figures."""
        return "model" + ("" if self.base == "configured" else f"_{self.base}") + ("_groups" if self.grouped else "")

    @property
    def simplicity(self) -> tuple[int, bool]:
        return BASES.index(self.base), self.grouped

    @staticmethod
    def from_key(key: str) -> "Candidate":
        base, _, grouped = key.partition("+")
        return Candidate(base, grouped == "groups")


CONFIGURED = Candidate("configured")
# every candidate in the report's order (configured, tuned, shrunk; then the same with groups)
ALL = tuple(Candidate(b, g) for g in (False, True) for b in ("configured", "tuned", "shrunk"))
ORDER = tuple(c.variant for c in ALL) + (BASELINE, TRAIN)  # summary rows as the report lists them


def candidate_of(variant: str) -> Candidate | None:
    return next((c for c in ALL if c.variant == variant), None)


def title(variant: str) -> str:
    """'transformer (tuned, one label per group)' for a summary row."""
    c = candidate_of(variant)
    if c is None:
        return _OTHER_TITLES[variant]
    if not c.grouped:
        return f"transformer ({_BASE_TITLES[c.base]})"
    return "transformer (one label per group)" if c.base == "configured" else f"transformer ({c.base}, one label per group)"


def short_name(variant: str) -> str:
    """The console's column name: 'model@thr', 'model tuned+groups', 'tfidf+LR'."""
    c = candidate_of(variant)
    if c is None:
        return {BASELINE: "tfidf+LR", TRAIN: "model train"}[variant]
    return "model@thr" if c == CONFIGURED else "model " + c.key.replace("configured+", "")


def fold_key(variant: str) -> str:
    """The key of a row's figures in each fold record: 'test', 'test_tuned_groups', 'baseline'."""
    return {"model": "test", BASELINE: BASELINE}.get(variant, variant.replace("model", "test", 1))
