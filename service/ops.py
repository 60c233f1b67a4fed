"""Operational routes: liveness, readiness and Prometheus metrics (no API key needed)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from service.schemas import ErrorResponse, HealthResponse, ReadyResponse, ready_response
from service.state import CurrentModel, State

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Liveness")
def healthz() -> HealthResponse:
    """Answer as long as the process runs, model or not."""
    return HealthResponse(status="ok")


@router.get(
    "/readyz",
    summary="Readiness",
    responses={503: {"model": ErrorResponse, "description": "No model is loaded (and why)."}},
)
def readyz(model: CurrentModel) -> ReadyResponse:
    """Answer 200 when a model is loaded and can serve, 503 with the reason when not.

    A service serving the last good local copy because the tracking store was unreachable is
    ready (it can answer) but says so: `degraded` is true and `reason` says why.
    """
    return ready_response(model)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format."}},
)
def metrics(state: State) -> Response:
    """Requests and latency by route and status, labels assigned, and the serving model."""
    body, content_type = state.metrics.render()
    return Response(content=body, media_type=content_type)
