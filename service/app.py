"""The application factory: settings, model lifespan, routes, middleware and error handling."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from anyio import CapacityLimiter
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from service import api, ops
from service.errors import register_error_handlers
from service.lifecycle import Loader, ModelHolder
from service.limits import BodyLimitMiddleware
from service.loader import LoadedModel, load
from service.metrics import MetricsMiddleware, ServiceMetrics
from service.page import mount_page
from service.schemas import document_limits
from service.settings import Settings
from service.state import ServiceState, attach_state

DESCRIPTION = """
Labels Arabic news text by disinformation narrative (election interference, diplomacy,
sanctions, ...), with scores, optional evidence terms and per-passage results for long documents.

Errors always have the body `{"error": {"code", "message", "field"?}}`. When API keys are
configured, `/v1` routes need `Authorization: Bearer <key>` or `X-API-Key: <key>`.
"""


def _package_version() -> str:
    try:
        return version("narrative-classifier")
    except PackageNotFoundError:
        return "0+unknown"


def create_app(
    settings: Settings | None = None,
    *,
    loader: Loader = load,
    initial: LoadedModel | None = None,
) -> FastAPI:
    """Build the prediction service.

    Nothing is loaded here: the model is loaded once, by the lifespan, when the server starts.

    Args:
        settings: Service settings; read from ``NARRATIVES_*`` environment variables if omitted.
        loader: How to load the model (tests may inject their own; defaults to
            :func:`service.loader.load`).
        initial: A model already loaded (and verified) before the server started; the
            lifespan serves it instead of loading one.

    Returns:
        The FastAPI application.
    """
    settings = settings if settings is not None else Settings()
    holder = ModelHolder(settings, loader, initial)
    metrics = ServiceMetrics(lambda: holder.current)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await holder.load_initial()
        # After a fast start the registry check runs while the server already answers.
        check = asyncio.create_task(holder.check_registry())
        try:
            yield
        finally:
            if not check.done():
                check.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await check

    app = FastAPI(
        title="Narrative classifier",
        version=_package_version(),
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    scoring = CapacityLimiter(settings.scoring_threads)
    attach_state(
        app, ServiceState(settings=settings, holder=holder, metrics=metrics, scoring=scoring)
    )
    generate_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        # FastAPI builds the document once and caches it on the app (the same dict it returns):
        # the limits are written into it then.
        schema = app.openapi_schema
        if schema is None:
            schema = generate_openapi()
            document_limits(schema, settings.max_texts, settings.max_chars)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
    register_error_handlers(app)
    app.include_router(api.router)
    app.include_router(ops.router)
    mount_page(app)

    # Added innermost first: metrics see every response, including the body limit's 413.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type"],
        )
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app
