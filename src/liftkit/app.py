"""The one place that assembles liftkit's ASGI application from a ``Platform``.

Layout: a thin Starlette app whose first routes are the hot paths (SDK payloads, SSE, remote
evaluation, OFREP: plain routes serving pre-serialised bytes), then health and metrics and the
dashboard's packaged assets (``/static``), then the FastAPI app mounted at ``/``: the admin API
(REST under ``/api/v1``, OpenAPI at ``/openapi.json``) and the dashboard's pages (``liftkit.web``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.routing import Mount

import liftkit
from liftkit.api import delivery, ingest, observability, rest
from liftkit.api._http import Cors
from liftkit.api.auth import Authenticator
from liftkit.api.live import document_ingest, live_router
from liftkit.api.observability import Metrics, TimingMiddleware
from liftkit.api.payloads import PayloadCache
from liftkit.api.playbooks import playbooks_router
from liftkit.automation import Controller
from liftkit.events import Pipeline
from liftkit.knowledge.schedule import ReminderLoop
from liftkit.platform import Platform
from liftkit.web import Web
from liftkit.web import install as install_dashboard
from liftkit.web import static as dashboard_static


def create_app(
    platform: Platform, *, pipeline: Pipeline | None = None, controller: Controller | None = None
) -> Starlette:
    """The app; the playbook controller and the reminder loop run inside it unless turned off."""
    metrics = Metrics()
    cache = PayloadCache(platform, metrics)
    pipeline = pipeline or Pipeline(platform.settings, platform.registry)
    events = ingest.IngestEndpoint(
        platform.accounts, pipeline, Cors(platform.settings.cors_origins)
    )
    metrics.watch_events(pipeline, events.stats)
    controller = controller or Controller(
        platform,
        # New events in the store are what can change a playbook's decision: skip measuring
        # again until some arrive, and start a cycle as soon as they do.
        watermark=lambda: pipeline.loader.stats.loads if pipeline.started else None,
    )
    if platform.settings.controller:
        pipeline.on_loaded.append(controller.wake)

    api = FastAPI(
        title="liftkit",
        version=liftkit.__version__,
        description="Registry, flag delivery and experimentation API.",
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    rest.install(api, platform)
    api.include_router(
        live_router(pipeline, platform.registry, Authenticator(platform.accounts)),
        prefix=rest.PREFIX,
    )
    api.include_router(
        playbooks_router(platform, Authenticator(platform.accounts), controller),
        prefix=rest.PREFIX,
    )
    document_ingest(api)
    install_dashboard(api, Web(platform, pipeline=pipeline, controller=controller))
    reminder_loop = ReminderLoop(platform, interval=platform.settings.reminders_interval_seconds)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await anyio.to_thread.run_sync(pipeline.start)
        await cache.start()
        if platform.settings.controller:
            controller.start()
        reminder_loop.start()
        try:
            yield
        finally:
            await anyio.to_thread.run_sync(reminder_loop.stop)
            await anyio.to_thread.run_sync(controller.stop)
            await cache.stop()
            await anyio.to_thread.run_sync(pipeline.stop)

    app = Starlette(
        routes=[
            *delivery.routes(platform, cache, metrics),
            *ingest.routes(events),
            *observability.routes(platform, metrics, cache.not_ready_reason),
            dashboard_static(),
            Mount("/", app=api),
        ],
        lifespan=lifespan,
    )
    app.state.platform = platform
    app.state.cache = cache
    app.state.metrics = metrics
    app.state.pipeline = pipeline
    app.state.controller = controller
    app.add_middleware(TimingMiddleware, metrics=metrics)
    # Outermost: answers SDK payload requests before routing (measured: 60% → 80% of a bare
    # ASGI app's requests/s; benchmarks/README.md). It times them itself.
    app.add_middleware(delivery.HotPaths, platform=platform, cache=cache, metrics=metrics)
    return app
