"""Request and response bodies (pydantic): what /docs shows and what every route validates against."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    titles: StrictStr | list[StrictStr] = Field(
        description="One title or a list of titles (at most --max_titles).",
        examples=[["VP of Sales", "Senior Software Engineer"]])


class TitleResult(BaseModel):
    title: str
    labels: list[str] = Field(description="The label set: saved per-label thresholds and the decision rules.")
    scores: dict[str, float] = Field(description="Sigmoid score of every label.")
    truncated: bool = Field(description="True when the title had more tokens than max_length and was cut.")
    row: int | None = Field(None, description="CSV uploads: the line number in the file.")
    gold: list[str] | None = Field(None, description="CSV uploads with label columns: the file's labels.")


class PredictResponse(BaseModel):
    predictions: list[TitleResult]
    labels: list[str]
    max_length: int
    n_truncated: int


class HFParameters(BaseModel):
    model_config = ConfigDict(extra="allow")  # other clients' parameters are accepted and ignored
    top_k: StrictInt | None = Field(None, ge=1)  # strict: "2" and true are refused, not read as 2 and 1
    function_to_apply: Literal["sigmoid", "softmax", "none"] | None = None


class HFRequest(BaseModel):
    """The Hugging Face text-classification inference API body: {"inputs": "...", "parameters": {...}}."""
    model_config = ConfigDict(extra="allow")
    inputs: StrictStr | list[StrictStr]
    parameters: HFParameters | None = None


class LabelScore(BaseModel):
    label: str
    score: float


class CVMetric(BaseModel):
    name: str
    value: float


class LabelGroupInfo(BaseModel):
    name: str
    labels: list[str]
    kind: Literal["exactly_one", "at_most_one"] = Field(
        description="exactly_one: the group's top label is always kept; at_most_one: only if it passes.")


class InfoResponse(BaseModel):
    model_name: str | None = Field(description="The model card's name; no server path is ever shown.")
    base_model: str | None
    labels: list[str]
    thresholds: dict[str, float]
    at_least_one: bool
    exclusive_label: str | None = Field(None, description="The empty label: never decided beside another label "
                                                          "(where both pass, the higher score wins).")
    label_groups: list[LabelGroupInfo] = Field(default_factory=list, description="Groups decided one label per "
                                               "group (the group's top score).")
    pipeline_gap: str | None = Field(None, description="Labels a plain transformers pipeline answers differently "
                                                       "for (scored outside the transformer or by a group "
                                                       "softmax), with the agreement.")
    max_length: int
    backend: str
    backend_reason: str
    cv_metrics: list[CVMetric]
    cv_micro_f1: float | None
    cv_subset_accuracy: float | None
    max_titles: int
    max_body_mb: float
    batching: dict[str, float | int | bool]
    api_key_required: bool
    labelling: bool = Field(False, description="The labelling view is on (--label_folder): /label/queue, "
                                               "/label/accept.")


class HealthResponse(BaseModel):
    status: Literal["ok", "loading"]
    model_changed: bool = Field(False, description="The model folder on disk changed since it was loaded (still "
                                                   "serving the loaded model; restart to serve the new files).")


class ErrorDetail(BaseModel):
    code: str
    message: str
    field: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorDetail


class QueueItem(BaseModel):
    title: str
    labels: list[str] = Field(description="Pre-selected: the file's suggested labels (the model's own where it "
                                          "has none), one per label group.")
    reason: str = Field(description="Why this title was suggested (jobtitles suggest).")
    pool_count: int | None = Field(None, description="How often the title occurs in the pool.")
    rank: int | None = None


class QueueResponse(BaseModel):
    items: list[QueueItem] = Field(description="Suggested titles not yet in labelled.csv, in the file's order.")
    remaining: int = Field(description="More such titles after these (answered once these are labelled).")
    labels: list[str]
    label_groups: list[LabelGroupInfo] = Field(description="At most one label of each group per title.")
    empty_label: str | None = Field(None, description="The label for 'none of the others', never beside another.")
    file: str = Field(description="Where accepted rows go: labelled.csv in the label folder.")
    labelled: int = Field(description="Titles in labelled.csv.")
    message: str | None = Field(None, description="Why the queue is empty, and how to fill it.")


class AcceptRow(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: StrictStr
    labels: list[StrictStr] = Field(description="The model's labels; [] is the empty label.")


class AcceptRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rows: list[AcceptRow] = Field(examples=[[{"title": "VP of Sales", "labels": ["Vice President"]}]])


class WrittenRow(BaseModel):
    row: int = Field(description="The row's index in the request.")
    title: str = Field(description="As written: spaces collapsed, as the training reader reads it.")
    labels: list[str]


class SkippedRow(BaseModel):
    row: int
    title: str
    reason: str


class AcceptResponse(BaseModel):
    written: list[WrittenRow]
    skipped: list[SkippedRow] = Field(description="Rows whose title was already in labelled.csv (or earlier in "
                                                  "the request): nothing replaced.")
    file: str
    labelled: int = Field(description="Titles in labelled.csv now.")
