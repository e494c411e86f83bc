"""The layout of the training file a model was trained from, saved in its config.json, so rows written for it
later (`jobtitles suggest`'s output, the page's labelling view) can be appended to that file and read back the
same way: the same title column, label-column prefix and delimiter, and each label of a column family (a label
group detected column by column) in its own column, so the grown file keeps its label groups.

    schema = TrainingSchema.from_config(cfg, labels, where)   # every key checked: a folder may be hostile
    schema.header(n_columns)                                  # ["Title", "Column 1", ...]
    schema.cells(["Director", "Sales"], n_columns)            # the label cells of one row
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Sequence

from jobtitles.core.errors import UserError
from jobtitles.core.label_groups import LabelGroup
from jobtitles.core.spreadsheet import escape_cell

SCHEMA_KEY = "jobtitles_training_schema"
# what `jobtitles suggest` writes after the schema's columns (the training loader ignores them)
SUGGESTION_COLUMNS = ("suggested_labels", "reason", "pool_count", "rank")
MAX_LABEL_COLUMNS = 64  # more label columns than any label set needs; a hostile config may say millions


@dataclass(frozen=True)
class TrainingSchema:
    text_column: str = "Title"
    label_prefix: str = "Column"
    delimiter: str = ";"
    label_columns: int = 2  # label columns of the training file
    empty_label: str | None = "Not Required"  # written as empty cells: the loader reads them back as this label
    column_of: tuple[tuple[str, int], ...] = ()  # (label, 0-based column) for labels of a column family

    def header(self, n_columns: int) -> list[str]:
        return [self.text_column, *(f"{self.label_prefix} {i + 1}" for i in range(n_columns))]

    def columns_needed(self, label_sets: Sequence[Sequence[str]]) -> int:
        """The training file's label columns, or more where a row holds more labels than it has."""
        return max([self.label_columns, *(len(self.cells(s, 0)) for s in label_sets)])

    def cells(self, labels: Sequence[str], n_columns: int) -> list[str]:
        """One row's label cells, at least `n_columns` of them: a family's label in its family's column, the
        others in the free columns from the left; the empty label alone is no label at all."""
        labels = [lab for lab in dict.fromkeys(labels) if lab != self.empty_label]
        out = [""] * max(n_columns, len(labels))
        home = dict(self.column_of)
        rest = []
        for lab in labels:
            col = home.get(lab)
            if col is not None and col < len(out) and not out[col]:
                out[col] = lab
            else:
                rest.append(lab)
        free = iter(i for i, c in enumerate(out) if not c)
        for lab in rest:
            out[next(free)] = lab
        return out

    def to_config(self) -> dict[str, Any]:
        return {SCHEMA_KEY: {"text_column": self.text_column, "label_column_prefix": self.label_prefix,
                             "delimiter": self.delimiter, "label_columns": self.label_columns,
                             "empty_label": self.empty_label, "column_of": dict(self.column_of)}}

    @staticmethod
    def of_training(text_column: str, label_prefix: str, delimiter: str, label_columns: int,
                    empty_label: str | None, groups: Sequence[LabelGroup]) -> "TrainingSchema":
        """The schema of a training file: detected groups are named after their column ("Column 3")."""
        column_of = []
        for group in groups:
            match = re.fullmatch(r"Column (\d+)", group.name)
            if match:
                column_of += [(lab, int(match.group(1)) - 1) for lab in group.labels]
        return TrainingSchema(text_column, label_prefix, delimiter, max(1, label_columns), empty_label,
                              tuple(column_of))

    @staticmethod
    def from_config(cfg: dict[str, Any], labels: Sequence[str], where: str) -> "TrainingSchema":
        """The saved schema (the project's defaults for a folder that has none), every field checked."""
        raw = cfg.get(SCHEMA_KEY)
        if raw is None:
            return TrainingSchema()
        if not isinstance(raw, dict):
            raise UserError(f"{where}: {SCHEMA_KEY} must be an object, found {type(raw).__name__}; the folder is "
                            "damaged: re-copy it or retrain")
        text, prefix, delim = (raw.get(k) for k in ("text_column", "label_column_prefix", "delimiter"))
        n, empty, column_of = raw.get("label_columns"), raw.get("empty_label"), raw.get("column_of", {})
        ok = (all(isinstance(s, str) and 0 < len(s) <= 100 and not any(c in s for c in "\r\n\"")
                  for s in (text, prefix, delim)) and len(delim) == 1
              # header cells, written verbatim: no formula, no delimiter, what the loader reads (it strips them)
              and all(escape_cell(s) == s and delim not in s and s == s.strip() for s in (text, prefix))
              and isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= MAX_LABEL_COLUMNS
              and (empty is None or empty in labels) and isinstance(column_of, dict)
              and all(lab in labels and isinstance(c, int) and not isinstance(c, bool) and 0 <= c < n
                      for lab, c in column_of.items()))
        if not ok:
            raise UserError(f"{where}: {SCHEMA_KEY} is {raw!r:.200}; expected text_column and label_column_prefix "
                            "(text, neither formula-like nor holding the delimiter), a one-character delimiter, "
                            f"label_columns 1..{MAX_LABEL_COLUMNS}, empty_label one of the model's labels or null, "
                            "column_of {label: column}: re-copy the folder or retrain")
        return TrainingSchema(text, prefix, delim, n, empty, tuple(sorted(column_of.items())))
