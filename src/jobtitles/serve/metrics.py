"""Prometheus metrics for GET /metrics (prometheus_client): requests by route and status, request latency, titles
predicted and cut, model-call time and size, the queue waiting for a worker.

One registry per app, so two apps in one process (tests, notebooks) never add to each other's counters. Routes
are labelled by their template ("/predict"), never by the requested path, so unknown URLs cannot grow the label set.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, Info, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
SECONDS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
TITLES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


@dataclass
class ServeMetrics:
    registry: CollectorRegistry
    requests: Counter
    latency: Histogram
    titles: Counter
    truncated: Counter
    model_call: Histogram
    batch_titles: Histogram
    queue_depth: Gauge
    model: Info

    def observe_model_call(self, titles: int, seconds: float) -> None:
        """Called by the batcher's worker threads after each model call (prometheus_client is thread-safe)."""
        self.titles.inc(titles)
        self.batch_titles.observe(titles)
        self.model_call.observe(seconds)

    def watch_queue(self, depth: Callable[[], int]) -> None:
        self.queue_depth.set_function(depth)

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def create_metrics() -> ServeMetrics:
    r = CollectorRegistry()
    return ServeMetrics(
        registry=r,
        requests=Counter("jobtitles_http_requests", "HTTP requests answered", ["route", "method", "status"],
                         registry=r),
        latency=Histogram("jobtitles_http_request_duration_seconds", "Time from request to the end of the answer",
                          ["route"], buckets=SECONDS, registry=r),
        titles=Counter("jobtitles_titles_predicted", "Titles run through the model", registry=r),
        truncated=Counter("jobtitles_titles_truncated", "Titles longer than max_length tokens, cut to it", registry=r),
        model_call=Histogram("jobtitles_model_call_duration_seconds", "One worker's model call (tokenize, forward "
                             "passes, decide)", buckets=SECONDS, registry=r),
        batch_titles=Histogram("jobtitles_model_call_titles", "Titles per model call (requests batched together)",
                               buckets=TITLES, registry=r),
        queue_depth=Gauge("jobtitles_queue_depth", "Request parts waiting for a model worker", registry=r),
        model=Info("jobtitles_model", "The model being served", registry=r),
    )


def _route(scope: Scope) -> str:
    route = scope.get("route")  # set by FastAPI's router on the scope once a route matched
    if route is not None and getattr(route, "path", None):
        return route.path
    # no route: a 404, or a body the size limit refused before routing
    return "/static" if scope.get("path", "").startswith("/static/") else "unrouted"


class MetricsMiddleware:
    """Pure ASGI: counts every answer, the body-limit middleware's 413s and the error handlers' 4xx included."""

    def __init__(self, app: ASGIApp, metrics: ServeMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # 499 (nginx's "client closed request"): no answer was started because the client went away mid-body
        start, status = time.perf_counter(), 499

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            route = _route(scope)
            # h11 accepts any method token: unknown ones share one label value, so clients cannot add series
            method = scope["method"] if scope["method"] in METHODS else "other"
            self.metrics.requests.labels(route, method, str(status)).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - start)
