"""Prometheus metrics, request timing and health endpoints.

Each app has its own ``CollectorRegistry`` (no process-global state), so several apps can live
in one test process. The timing middleware is plain ASGI to keep the hot paths cheap, and labels
requests by route family rather than raw path (bounded cardinality, and no client keys in
metric labels).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from liftkit.platform import Platform

_FAMILIES = (
    ("/api/features/", "sdk_payload"),
    ("/sub/", "sdk_stream"),
    ("/api/eval/", "remote_eval"),
    ("/ofrep/", "ofrep"),
    ("/api/v1/events", "ingest"),
    ("/api/v1/", "rest"),
    ("/metrics", "metrics"),
)


def route_family(path: str) -> str:
    for prefix, family in _FAMILIES:
        if path.startswith(prefix):
            return family
    return "other"


class Metrics:
    """The platform's Prometheus instruments."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.request_seconds = Histogram(
            "liftkit_request_seconds",
            "HTTP request latency by route family",
            ["route", "method", "status"],
            registry=self.registry,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )
        self.payload_compiles = Counter(
            "liftkit_payload_compiles", "SDK payloads compiled", registry=self.registry
        )
        self.payload_compile_seconds = Histogram(
            "liftkit_payload_compile_seconds",
            "Time to compile every SDK connection's payload",
            registry=self.registry,
        )
        self.sse_clients = Gauge(
            "liftkit_sse_clients", "Connected SSE (streaming) SDK clients", registry=self.registry
        )
        self.publishes = Counter(
            "liftkit_publishes", "Changes published (seen by this process)", registry=self.registry
        )

    def watch_events(self, pipeline: Any, ingest_stats: Any) -> None:
        """Export the ingest pipeline's totals and the live exposure counters."""
        self.registry.register(_EventsCollector(pipeline, ingest_stats))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _EventsCollector(Collector):
    """Reads the pipeline's plain counters at scrape time (``events`` knows no Prometheus)."""

    def __init__(self, pipeline: Any, ingest_stats: Any) -> None:
        self.pipeline = pipeline
        self.ingest = ingest_stats

    def describe(self) -> list[Metric]:
        return []  # collected lazily: the live counters' labels are not known up front

    def collect(self) -> Iterator[Metric]:
        ingest = self.ingest
        received = CounterMetricFamily(
            "liftkit_events_received", "Events in ingest requests", labels=["outcome"]
        )
        received.add_metric(["accepted"], ingest.accepted)
        received.add_metric(["rejected"], ingest.rejected)
        yield received
        yield CounterMetricFamily(
            "liftkit_ingest_refused_requests",
            "Ingest requests refused as a whole (auth, limits, overload)",
            value=ingest.refused_requests,
        )
        pipeline = self.pipeline
        if pipeline.started:
            stats = pipeline.loader.stats
            stored = CounterMetricFamily(
                "liftkit_events_stored", "Events loaded into the store", labels=["table"]
            )
            stored.add_metric(["exposures"], stats.exposures)
            stored.add_metric(["events"], stats.events)
            yield stored
            yield CounterMetricFamily(
                "liftkit_events_duplicates", "Resent events dropped", value=stats.duplicates
            )
            yield CounterMetricFamily(
                "liftkit_events_load_failures", "Failed loads", value=stats.failures
            )
            yield CounterMetricFamily(
                "liftkit_events_store_busy", "Loads deferred: store locked", value=stats.busy
            )
            yield GaugeMetricFamily(
                "liftkit_events_spool_bytes",
                "Accepted events not yet loaded into the store",
                value=pipeline.spool.backlog_bytes,
            )
        units = GaugeMetricFamily(
            "liftkit_experiment_exposed_units",
            "Units exposed per experiment and variation (live, since the current phase began)",
            labels=["experiment", "variation"],
        )
        multiple = GaugeMetricFamily(
            "liftkit_experiment_multiple_exposures",
            "Units seen in more than one variation (live)",
            labels=["experiment"],
        )
        srm = GaugeMetricFamily(
            "liftkit_experiment_srm_p_value",
            "Chi-square SRM p-value of the live counts against the configured weights",
            labels=["experiment"],
        )
        for counts in pipeline.live():
            for index, n in enumerate(counts.units):
                units.add_metric([counts.experiment, str(index)], n)
            multiple.add_metric([counts.experiment], counts.multiple)
            if counts.srm_p_value is not None:
                srm.add_metric([counts.experiment], counts.srm_p_value)
        yield units
        yield multiple
        yield srm


class TimingMiddleware:
    """Records every HTTP request's latency in ``liftkit_request_seconds``."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = [500]

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self.metrics.request_seconds.labels(
                route_family(scope["path"]), scope["method"], str(status[0])
            ).observe(time.perf_counter() - start)


def routes(platform: Platform, metrics: Metrics, ready: Any) -> list[Route]:
    """``/metrics``, ``/healthz`` (the process is up) and ``/readyz`` (it can serve).

    ``ready`` is a callable returning a reason the server is not ready yet, or None.
    """

    async def metrics_endpoint(_: Request) -> Response:
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    async def healthz(_: Request) -> Response:
        return PlainTextResponse("ok")

    async def readyz(_: Request) -> Response:
        reason = ready()
        if reason is None:
            try:
                with platform.engine.connect() as conn:
                    conn.execute(text("SELECT 1"))
            except Exception as exc:
                reason = f"registry database unreachable: {type(exc).__name__}"
        if reason is not None:
            return JSONResponse({"ready": False, "reason": reason}, status_code=503)
        return JSONResponse({"ready": True})

    return [
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
    ]
