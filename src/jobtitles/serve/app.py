"""The FastAPI app: `create_app(settings)`; the model is loaded in the lifespan handler.

Routes: GET / (the page) and /static/*, GET /health, GET /info, GET /metrics (Prometheus), POST /predict,
POST /predict_csv, GET /label/queue and POST /label/accept (the labelling view: labelling.py), and POST / in the
Hugging Face text-classification inference API format, so huggingface_hub.InferenceClient(base_url=...) works
unchanged (it posts {"inputs": ..., "parameters": {...}} to the base URL itself).

Every client is treated as hostile: bodies are bounded in size and time (limits.py), request heads too
(connections.py, through runner.uvicorn_config), titles that are not text are refused with the item's index,
a bug answers the JSON 500 (failures.py), and no answer names a server path.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import AsyncIterator, Awaitable, Callable, Sequence

from fastapi import APIRouter, Depends, FastAPI, File, UploadFile
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from jobtitles.core.titles import is_blank
from jobtitles.serve.backend import BackendChoice, choose_backend
from jobtitles.serve.batching import MicroBatcher
from jobtitles.serve.failures import FailureMiddleware
from jobtitles.serve.guards import JSONRoute, ProtectedRoute, UploadRoute, api_key_dependency
from jobtitles.serve.hf_compat import hf_scores
from jobtitles.serve.http_errors import ApiError, install_handlers
from jobtitles.serve.labelling import label_routes, label_space
from jobtitles.serve.limits import BodyLimitMiddleware
from jobtitles.serve.metrics import MetricsMiddleware, ServeMetrics, create_metrics
from jobtitles.serve.model_info import CardFacts, read_card, without_paths
from jobtitles.serve.model_watch import ModelWatch
from jobtitles.core.dedupe import RecentTitles
from jobtitles.serve.predictor import Prediction, Predictor
from jobtitles.serve.schemas import (
    CVMetric, ErrorResponse, HealthResponse, HFRequest, InfoResponse, LabelScore, PredictRequest, PredictResponse,
    TitleResult,
)
from jobtitles.serve.settings import ServeSettings
from jobtitles.serve.uploads import read_upload

logger = logging.getLogger("jobtitles.serve")
STATIC = Path(__file__).with_name("static")
ERRORS = {code: {"model": ErrorResponse} for code in (400, 401, 408, 413, 415, 422, 500, 503)}
SURROGATE = re.compile("[\ud800-\udfff]")
PROTECTED = [Depends(api_key_dependency)]  # declares the key in /docs; the route classes check it (guards.py)


@dataclass
class Loaded:
    predictor: Predictor
    batcher: MicroBatcher
    backend: BackendChoice
    card: CardFacts
    threads_per_worker: int
    watch: ModelWatch


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def _load(settings: ServeSettings, backend: BackendChoice | None, metrics: ServeMetrics) -> Loaded:
    from jobtitles.predict.inference import TitleClassifier

    choice = backend or choose_backend(settings.model_dir, settings.backend)
    logger.info("backend %s (%s)", choice.backend, choice.reason)
    watch = ModelWatch(settings.model_dir)  # after a first-use export, before loading: what is served
    on_gpu = choice.backend == "torch" and _cuda_available()
    workers, threads = settings.worker_count(on_gpu), settings.worker_threads(on_gpu)
    predictors = []
    # one cache for all workers, new with every (re)load: answers never outlive the model that gave them
    cache = RecentTitles(settings.cache_titles) if settings.cache_titles else None
    for _ in range(workers):
        clf = TitleClassifier(settings.model_dir, backend=choice.backend, batch_size=settings.batch_size,
                              threads=threads, cache=cache)
        predictor = Predictor(clf)
        predictor.predict(["warm-up"])  # first call allocates; do it before the first request
        predictors.append(predictor)
    # The loaded libraries leave ~350,000 long-lived objects that every full garbage collection walks again
    # (90-180 ms each, stalling every request in flight); freezing them keeps those collections to a few ms
    # (docs/benchmarks.md).
    if settings.gc_freeze:
        gc.collect()
        gc.freeze()
    batcher = MicroBatcher(predictors, settings.batch_wait_ms, settings.max_batch_titles, settings.batching,
                           on_call=metrics.observe_model_call)
    metrics.watch_queue(batcher.queued)
    card = read_card(settings.model_dir)
    metrics.model.info({"model": card.model_name or "unnamed", "backend": choice.backend,
                        "workers": str(workers), "threads_per_worker": str(threads)})
    return Loaded(predictors[0], batcher, choice, card, threads, watch)


def _text_problem(title: str) -> tuple[str, str] | None:
    """(code, what is wrong) for a title no model should see, whatever the lower layers would do with it."""
    bad = None if title.isascii() else SURROGATE.search(title)
    if bad:  # JSON can carry "\ud800", which is no character: it cannot be tokenized nor sent back as UTF-8
        return "invalid_text", (f"a lone UTF-16 surrogate ({ascii(bad.group())}) at character {bad.start()}, "
                                f"which is not text; send valid Unicode (was a character cut in half?)")
    if is_blank(title):  # the scan stops at the first visible character: a megabyte of blanks costs little
        return "empty_title", "empty title; expected text such as 'VP of Sales'"
    return None


def check_texts(titles: Sequence[str], where: Sequence[str], field: str | None = None) -> None:
    """The first title that is not text is refused: 422 naming it by `where[i]` (titles[3], mine.csv row 5)."""
    for i, title in enumerate(titles):
        problem = _text_problem(title)
        if problem:
            code, text = problem
            raise ApiError(422, code, f"{where[i]}: {text}", field or where[i])


def _checked_titles(titles: str | list[str], settings: ServeSettings, field: str) -> list[str]:
    titles = [titles] if isinstance(titles, str) else titles
    if not titles:
        raise ApiError(422, "empty_list", f"{field}: the list is empty; expected at least one title", field)
    if len(titles) > settings.max_titles:
        raise ApiError(413, "too_many_titles", f"{field}: {len(titles):,} titles; at most {settings.max_titles:,} "
                       f"per request (--max_titles): split the list", field)
    check_texts(titles, [f"{field}[{i}]" for i in range(len(titles))])
    return titles


def _response(preds: list[Prediction], loaded: Loaded, rows: list[int] | None = None,
              gold: list[list[str]] | None = None) -> PredictResponse:
    results = [TitleResult(title=p.title, labels=p.labels, scores=p.scores, truncated=p.truncated,
                           row=rows[i] if rows else None, gold=gold[i] if gold else None)
               for i, p in enumerate(preds)]
    return PredictResponse(predictions=results, labels=loaded.predictor.labels,
                           max_length=int(loaded.predictor.clf.max_length),
                           n_truncated=sum(p.truncated for p in preds))


def _info(settings: ServeSettings, loaded: Loaded) -> InfoResponse:
    clf, card = loaded.predictor.clf, loaded.card
    return InfoResponse(
        model_name=card.model_name, base_model=card.base_model,
        labels=list(clf.labels), thresholds={lab: float(t) for lab, t in zip(clf.labels, clf.thresholds)},
        at_least_one=bool(getattr(clf, "at_least_one", True)), max_length=int(clf.max_length),
        exclusive_label=clf.exclusive_label, label_groups=[g.to_json() for g in clf.label_groups],
        pipeline_gap=clf.pipeline_gap,
        backend=loaded.backend.backend, backend_reason=without_paths(loaded.backend.reason),
        cv_metrics=[CVMetric(name=n, value=v) for n, v in card.cv_metrics],
        cv_micro_f1=card.metric("CV micro-F1"), cv_subset_accuracy=card.metric("CV subset accuracy"),
        max_titles=settings.max_titles, max_body_mb=settings.max_body_mb,
        batching={"enabled": settings.batching, "wait_ms": settings.batch_wait_ms,
                  "max_batch_titles": settings.max_batch_titles, "workers": loaded.batcher.workers,
                  "threads_per_worker": loaded.threads_per_worker},
        api_key_required=bool(settings.api_key), labelling=settings.label_folder is not None)


def _time_left(app: FastAPI, settings: ServeSettings) -> float:
    """Seconds left of the shutdown deadline (set by runner.Server when uvicorn's shutdown begins)."""
    deadline = getattr(app.state, "shutdown_deadline", None)
    return settings.shutdown_timeout if deadline is None else max(0.0, deadline - time.monotonic())


def create_app(settings: ServeSettings, backend: BackendChoice | None = None) -> FastAPI:
    """The app for one model folder. `backend`: already chosen (serve.py chooses it before uvicorn starts, so an
    export problem is one line); None: chosen when the model loads. A folder that is not a trained model is a
    UserError here, before any server (the settings checked themselves when they were built)."""
    from jobtitles.core.model_folder import read_model_config

    cfg = read_model_config(settings.model_dir)
    space = label_space(settings.label_folder, settings.model_dir, cfg)  # None: the labelling view is off
    metrics = create_metrics()
    app = FastAPI(title="jobtitles", version="1", lifespan=_lifespan(settings, backend, metrics),
                  description="Multi-label job-title classification (labels and a sigmoid score per label).")
    app.state.settings = settings
    app.state.loaded = None
    app.state.metrics = metrics
    app.state.startup_error = None  # a UserError that stopped the model from loading (FailureMiddleware)
    install_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes, timeout=settings.body_timeout)
    app.add_middleware(FailureMiddleware, shutdown_timeout=settings.shutdown_timeout)
    app.add_middleware(MetricsMiddleware, metrics=metrics)  # added last: outermost, so it sees the 413s and 500s
    _status_routes(app, settings, metrics)
    predicted = _predicted(app, metrics)
    _predict_routes(app, settings, predicted)

    async def label_sets(titles: list[str]) -> list[list[str]]:
        return [p.labels for p in await predicted(titles)]

    label_routes(app, settings.label_folder, space, label_sets)

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def _lifespan(settings: ServeSettings, backend: BackendChoice | None, metrics: ServeMetrics):
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loaded = app.state.loaded = _load(settings, backend, metrics)  # a UserError: one line (FailureMiddleware)
        logger.info("ready: %s", settings.model_dir)
        watching = asyncio.create_task(loaded.watch.run(settings.model_check_s)) if settings.model_check_s else None
        yield
        if watching is not None:
            watching.cancel()
        # uvicorn has let the requests in flight finish (or cancelled them at the deadline): what is still
        # computing is for nobody, so the workers get only what is left of the deadline
        loaded.batcher.close(timeout=_time_left(app, settings))
        if settings.gc_freeze:
            gc.unfreeze()  # a process that goes on (tests, notebooks) collects those objects again
        app.state.loaded = None

    return lifespan


def _loaded(app: FastAPI) -> Loaded:
    if app.state.loaded is None:
        raise ApiError(503, "loading", "the model is still loading; retry in a moment")
    return app.state.loaded


def _status_routes(app: FastAPI, settings: ServeSettings, metrics: ServeMetrics) -> None:
    reads = APIRouter(route_class=ProtectedRoute, dependencies=PROTECTED, responses=ERRORS)

    @app.get("/health", response_model=HealthResponse, tags=["status"])
    async def health() -> JSONResponse:
        state = app.state.loaded
        if state is None:
            return JSONResponse({"status": "loading", "model_changed": False}, status_code=503)
        # still 200 when the folder changed: the loaded model keeps serving correctly until a restart
        return JSONResponse({"status": "ok", "model_changed": state.watch.changed})

    @reads.get("/info", response_model=InfoResponse, tags=["status"])
    async def info() -> InfoResponse:
        return _info(settings, _loaded(app))

    @reads.get("/metrics", tags=["status"], response_class=Response,
                responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}})
    async def prometheus_metrics() -> Response:
        """Prometheus metrics: requests, latency, titles, model calls, queue depth."""
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)

    app.include_router(reads)


def _predicted(app: FastAPI, metrics: ServeMetrics) -> Callable[[list[str]], Awaitable[list[Prediction]]]:
    async def predicted(titles: list[str]) -> list[Prediction]:
        """The model's answer for every route that predicts, so the metrics count titles from all of them."""
        preds = await _loaded(app).batcher.predict(titles)
        metrics.truncated.inc(sum(p.truncated for p in preds))
        return preds

    return predicted


def _predict_routes(app: FastAPI, settings: ServeSettings,
                    predicted: Callable[[list[str]], Awaitable[list[Prediction]]]) -> None:
    api = APIRouter(route_class=JSONRoute, dependencies=PROTECTED, responses=ERRORS)
    uploads = APIRouter(route_class=UploadRoute, dependencies=PROTECTED, responses=ERRORS)

    @api.post("/predict", response_model=PredictResponse, response_model_exclude_none=True, tags=["predict"])
    async def predict(body: PredictRequest) -> PredictResponse:
        state = _loaded(app)
        titles = _checked_titles(body.titles, settings, "titles")
        return _response(await predicted(titles), state)

    @uploads.post("/predict_csv", response_model=PredictResponse, response_model_exclude_none=True, tags=["predict"])
    async def predict_csv(file: UploadFile = File(description="CSV in the project's schema (Title;Column 1;...) "
                                                              "or .txt, one title per line")) -> PredictResponse:
        state = _loaded(app)
        upload = await read_upload(file, settings.max_titles)
        check_texts(upload.titles, [f"{upload.name} row {row}" for row in upload.rows], "file")
        return _response(await predicted(upload.titles), state, upload.rows, upload.gold)

    @api.post("/", response_model=list[list[LabelScore]], tags=["Hugging Face inference API"])
    async def hf_text_classification(body: HFRequest) -> list[list[LabelScore]]:
        """The Hugging Face text-classification API: a label/score list per input, best first."""
        titles = _checked_titles(body.inputs, settings, "inputs")
        params = body.parameters
        preds = await predicted(titles)
        return [hf_scores(p.scores, params.top_k if params else None,
                          params.function_to_apply if params else None) for p in preds]

    app.include_router(api)
    app.include_router(uploads)
