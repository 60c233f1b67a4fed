"""Prometheus metrics: a registry per app, a request-timing middleware, and the model gauge."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.loader import LoadedModel

UNROUTED = "unrouted"
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class _ModelInfoCollector(Collector):
    """Reports the serving model at scrape time, so the gauge can never show a stale version."""

    def __init__(self, current: Callable[[], LoadedModel | None]) -> None:
        self._current = current

    def collect(self) -> Iterable[Metric]:
        info = GaugeMetricFamily(
            "narratives_model_info",
            "The model serving now (value 1), identified by its labels.",
            labels=["name", "version", "run_id"],
        )
        loaded = GaugeMetricFamily(
            "narratives_model_loaded", "1 when a model is loaded and requests can be served."
        )
        degraded = GaugeMetricFamily(
            "narratives_model_degraded",
            "1 when the model serving is a fallback (the last good local copy), not the one the"
            " settings name.",
        )
        model = self._current()
        if model is not None:
            info.add_metric([model.name, model.version, model.run_id or ""], 1.0)
        loaded.add_metric([], 1.0 if model is not None else 0.0)
        degraded.add_metric([], 1.0 if model is not None and model.degraded else 0.0)
        yield info
        yield loaded
        yield degraded


class ServiceMetrics:
    """The service's metrics, in a registry of their own.

    A per-app registry (rather than prometheus_client's global one) lets many apps live in one
    process, as they do in tests, without "duplicated timeseries" errors.

    Args:
        current_model: Returns the model serving now (read at every scrape).
    """

    def __init__(self, current_model: Callable[[], LoadedModel | None]) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "narratives_http_requests",
            "HTTP requests answered, by method, route template and status code.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "narratives_http_request_duration_seconds",
            "Time to answer HTTP requests, by method, route template and status code.",
            ["method", "route", "status"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.predictions = Counter(
            "narratives_predictions",
            "Labels assigned to classified texts, by label.",
            ["label"],
            registry=self.registry,
        )
        self.texts = Counter(
            "narratives_texts_classified",
            "Texts classified (with or without a label).",
            registry=self.registry,
        )
        self.reloads = Counter(
            "narratives_model_reloads",
            "Model reload attempts, by outcome.",
            ["outcome"],
            registry=self.registry,
        )
        self.registry.register(_ModelInfoCollector(current_model))

    def count_predictions(self, label_sets: Sequence[Sequence[str]]) -> None:
        """Count classified texts and the labels assigned to them.

        Args:
            label_sets: The assigned labels of each classified text.
        """
        self.texts.inc(len(label_sets))
        for labels in label_sets:
            for label in labels:
                self.predictions.labels(label=label).inc()

    def render(self) -> tuple[bytes, str]:
        """The metrics in Prometheus text format, with their content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def route_template(scope: Scope) -> str:
    """The template of the route that answered a request (``/v1/classify``), not its raw path.

    Templates keep the label set small whatever paths clients send. The router records the
    route in the scope while it handles the request; requests answered before routing (a 413
    from the body limit) or that matched nothing (404) are ``"unrouted"``.

    Args:
        scope: The request's ASGI scope, after the application has answered.

    Returns:
        The route's path template, or ``"unrouted"``.
    """
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) and path else UNROUTED


class MetricsMiddleware:
    """Times every HTTP request and counts it by route template and status code.

    It sits outside the other middleware, so responses they produce themselves (413 from the body
    limit) are counted too.

    Args:
        app: The wrapped ASGI application.
        metrics: Where to record.
    """

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = str(scope["method"])
        status = 500
        start = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - start
            labels = {"method": method, "route": route_template(scope), "status": str(status)}
            self.metrics.requests.labels(**labels).inc()
            self.metrics.latency.labels(**labels).observe(elapsed)
