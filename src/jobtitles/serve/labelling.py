"""The page's labelling view (`serve --label_folder DIR`): GET /label/queue offers the rows of DIR/suggestions.csv
(`jobtitles suggest`) not yet in DIR/labelled.csv, with labels pre-selected; POST /label/accept appends the
rows a person confirmed to DIR/labelled.csv (label_store.py) in the model's training schema. Titles typed on the
page are scored with POST /predict. Off without --label_folder: the routes answer 404 saying how to turn it on.
Behind the API key like every other route."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable, Sequence

from fastapi import APIRouter, Depends, FastAPI
from starlette.concurrency import run_in_threadpool

from jobtitles.core.label_groups import AT_MOST_ONE, LabelGroup
from jobtitles.core.titles import MAX_TITLE_CHARS, is_blank
from jobtitles.core.training_schema import TrainingSchema
from jobtitles.serve.guards import JSONRoute, ProtectedRoute, api_key_dependency
from jobtitles.serve.http_errors import ApiError, shown
from jobtitles.serve.label_store import SUGGESTIONS, LabelStore, Suggestion, read_labelled, read_suggestions, title_key
from jobtitles.serve.schemas import (
    AcceptRequest, AcceptResponse, ErrorResponse, LabelGroupInfo, QueueItem, QueueResponse, SkippedRow, WrittenRow,
)

MAX_LABEL_ROWS = 200  # rows per queue answer and per accept: a page's worth, a bounded request
SURROGATE = re.compile("[\ud800-\udfff]")
ERRORS = {code: {"model": ErrorResponse} for code in (400, 401, 404, 409, 413, 415, 422, 500, 503, 507)}
Predict = Callable[[list[str]], Awaitable[list[list[str]]]]  # titles -> the model's label sets


@dataclass(frozen=True)
class LabelSpace:
    """What a labelled row may hold: the model's labels, its groups (one label each at most: the decision
    rule's groups and the training file's column families), and its empty label ("none of the others",
    written as empty cells, never beside another label)."""
    labels: tuple[str, ...]
    groups: tuple[LabelGroup, ...]
    empty_label: str | None
    schema: TrainingSchema

    @staticmethod
    def from_config(cfg: dict[str, Any], where: str) -> "LabelSpace":
        from jobtitles.core.decision_rule import DecisionRule
        from jobtitles.core.model_folder import labels_of

        labels = labels_of(cfg, where)
        rule = DecisionRule.from_config(cfg, labels, where)
        schema = TrainingSchema.from_config(cfg, labels, where)
        groups = list(rule.groups)
        taken = {lab for g in groups for lab in g.labels}
        families: dict[int, list[str]] = {}
        for lab, col in schema.column_of:  # a family per column of the training file: one label per column
            families.setdefault(col, []).append(lab)
        for col, members in sorted(families.items()):
            if len(members) > 1 and not taken & set(members):
                groups.append(LabelGroup(f"Column {col + 1}", tuple(sorted(members)), AT_MOST_ONE))
        empty = next((e for e in (schema.empty_label, rule.exclusive_label) if e in labels), None)
        return LabelSpace(tuple(labels), tuple(groups), empty, schema)

    def preselected(self, labels: Sequence[str]) -> list[str]:
        """Suggested labels made a valid choice: the model's labels only, one per group, the empty label alone."""
        out: list[str] = []
        for lab in dict.fromkeys(labels):
            group = self.group_of(lab)
            if lab in self.labels and not (group and set(group.labels) & set(out)):
                out.append(lab)
        return [lab for lab in out if lab != self.empty_label] or out

    def group_of(self, label: str) -> LabelGroup | None:
        return next((g for g in self.groups if label in g.labels), None)


def label_space(folder: Path | None, model_dir: Path, cfg: dict[str, Any]) -> LabelSpace | None:
    """The view's label space, None when it is off; a folder it cannot use or a damaged training schema in the
    model's config is a UserError (one line at start, before any model loads)."""
    if folder is None:
        return None
    from jobtitles.serve.label_store import check_label_folder

    check_label_folder(folder, model_dir)
    return LabelSpace.from_config(cfg, str(model_dir / "config.json"))


def _title_problem(title: str, delimiter: str) -> tuple[str, str] | None:
    """(code, what is wrong) for a title the training file cannot hold as one row."""
    if is_blank(title):
        return "empty_title", "empty title; expected text such as 'VP of Sales'"
    bad = None if title.isascii() else SURROGATE.search(title)
    if bad:
        return "invalid_text", f"a lone UTF-16 surrogate at character {bad.start()}: not text; send valid Unicode"
    if len(title.strip().splitlines()) > 1:
        return "multiline_title", "the title spans several lines; a job title is one line"
    if len(title) > MAX_TITLE_CHARS:
        return "title_too_long", f"{len(title):,} characters; a title has at most {MAX_TITLE_CHARS:,}"
    if title.count(delimiter) > 1:  # the training reader takes that for a broken quote (data.check_fields)
        return "invalid_text", (f"the title holds the delimiter {delimiter!r} {title.count(delimiter)} times; "
                                f"the training file allows it once per field")
    return None


def _label_problem(space: LabelSpace, labels: Sequence[str], field: str) -> tuple[str, str, str] | None:
    """(code, field, what is wrong) for a label set the model's training file cannot hold."""
    for j, lab in enumerate(labels):
        if lab not in space.labels:
            return "unknown_label", f"{field}[{j}]", (f"{shown(lab, 60)!r} is not one of the model's labels "
                                                      f"({', '.join(space.labels)}); choose from those")
    for group in space.groups:
        both = [lab for lab in dict.fromkeys(labels) if lab in group.labels]
        if len(both) > 1:
            return "exclusive_group", field, (f"{', '.join(map(repr, both))} are all in the label group "
                                              f"'{group.name}', which holds one label per title: keep one")
    if space.empty_label in labels and len(set(labels)) > 1:
        return "empty_label_with_others", field, (f"'{space.empty_label}' is the empty label (none of the "
                                                  "others) and never stands beside another label: keep one side")
    return None


def checked_rows(body: AcceptRequest, space: LabelSpace) -> list[tuple[int, str, tuple[str, ...]]]:
    """(row, title as the training file holds it, labels) for each row, or a 4xx naming the row and field."""
    if not body.rows:
        raise ApiError(422, "empty_list", "rows: the list is empty; expected at least one {\"title\", \"labels\"}",
                       "rows")
    if len(body.rows) > MAX_LABEL_ROWS:
        raise ApiError(413, "too_many_rows", f"rows: {len(body.rows):,} rows; at most {MAX_LABEL_ROWS} per request: "
                       "send them in parts", "rows")
    out = []
    for i, row in enumerate(body.rows):
        problem = _title_problem(row.title, space.schema.delimiter)
        if problem:
            raise ApiError(422, problem[0], f"rows[{i}].title: {problem[1]}", f"rows[{i}].title")
        bad = _label_problem(space, row.labels, f"rows[{i}].labels")
        if bad:
            raise ApiError(422, bad[0], f"{bad[1]}: {bad[2]}", bad[1])
        labels = tuple(dict.fromkeys(row.labels)) or ((space.empty_label,) if space.empty_label else ())
        out.append((i, " ".join(row.title.split()), labels))  # the reader collapses spaces: written as read back
    return out


def _how_to_suggest(store: LabelStore) -> str:
    folder = store.shown.rsplit("/", 1)[0]
    return (f"no {SUGGESTIONS} in the label folder ({folder}); make one with `jobtitles suggest --model <model> "
            f"--pool <titles> --n 200 --output {folder}/{SUGGESTIONS}`, or type titles to label below")


async def queue(store: LabelStore, space: LabelSpace, predict: Predict) -> QueueResponse:
    """The first MAX_LABEL_ROWS suggestions not yet labelled; the model's labels where the file has none."""
    suggestions = await run_in_threadpool(read_suggestions, store.folder, space.schema)
    labelled = await run_in_threadpool(read_labelled, store.folder, space.schema)
    seen, todo = set(labelled.keys), []
    for s in suggestions or []:
        if title_key(s.title) not in seen:
            seen.add(title_key(s.title))
            todo.append(s)
    page: list[Suggestion] = todo[:MAX_LABEL_ROWS]
    unsuggested = [s.title for s in page if s.labels is None]
    predicted = iter(await predict(unsuggested) if unsuggested else [])
    items = [QueueItem(title=s.title, labels=space.preselected(s.labels if s.labels is not None else next(predicted)),
                       reason=s.reason, pool_count=s.pool_count, rank=s.rank) for s in page]
    return QueueResponse(items=items, remaining=len(todo) - len(page), labels=list(space.labels),
                         label_groups=[LabelGroupInfo(**g.to_json()) for g in space.groups],
                         empty_label=space.empty_label, file=store.shown, labelled=len(labelled.keys),
                         message=_how_to_suggest(store) if suggestions is None else None)


def label_routes(app: FastAPI, folder: Path | None, space: LabelSpace | None, predict: Predict) -> None:
    """GET /label/queue and POST /label/accept; both answer 404 (after the key check) when `folder` is None."""
    guard = [Depends(api_key_dependency)]
    reads = APIRouter(route_class=ProtectedRoute, dependencies=guard, responses=ERRORS, tags=["label"])
    writes = APIRouter(route_class=JSONRoute, dependencies=guard, responses=ERRORS, tags=["label"])
    store = LabelStore(folder, space.schema) if folder is not None and space is not None else None

    def on() -> tuple[LabelStore, LabelSpace]:
        if store is None or space is None:
            raise ApiError(404, "labelling_off", "the labelling view is off; start the server with --label_folder "
                           "DIR (a writable folder for labelled.csv, with suggestions.csv from jobtitles suggest)")
        return store, space

    @reads.get("/label/queue", response_model=QueueResponse)
    async def label_queue() -> QueueResponse:
        """Titles to label next (DIR/suggestions.csv less DIR/labelled.csv), labels pre-selected."""
        return await queue(*on(), predict)

    @writes.post("/label/accept", response_model=AcceptResponse)
    async def label_accept(body: AcceptRequest) -> AcceptResponse:
        """Append the rows to DIR/labelled.csv in the training schema; titles already there are skipped."""
        st, sp = on()
        done = await run_in_threadpool(st.append, checked_rows(body, sp))
        return AcceptResponse(written=[WrittenRow(row=i, title=t, labels=list(lab)) for i, t, lab in done.written],
                              skipped=[SkippedRow(row=i, title=t, reason=f"already in {st.shown}")
                                       for i, t in done.skipped],
                              file=st.shown, labelled=done.total)

    app.include_router(reads)
    app.include_router(writes)
