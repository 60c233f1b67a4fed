"""Per-app state (settings, the model holder, metrics) and the dependencies that hand it out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from anyio import CapacityLimiter
from fastapi import Depends, FastAPI, Request

from service.errors import ModelUnavailable
from service.lifecycle import ModelHolder
from service.loader import LoadedModel
from service.metrics import ServiceMetrics
from service.settings import Settings


@dataclass(frozen=True, slots=True)
class ServiceState:
    """Everything one app instance owns; kept on ``app.state.service``.

    Attributes:
        settings: The service settings.
        holder: The serving model and its reloads.
        metrics: Prometheus metrics.
        scoring: Admits ``settings.scoring_threads`` scoring calls to worker threads at once.
    """

    settings: Settings
    holder: ModelHolder
    metrics: ServiceMetrics
    scoring: CapacityLimiter


def attach_state(app: FastAPI, state: ServiceState) -> None:
    """Store the service state on an app.

    Args:
        app: The application.
        state: Its state.
    """
    app.state.service = state


def state_of(request: Request) -> ServiceState:
    """The service state of the app serving ``request``.

    Args:
        request: The current request.

    Returns:
        The state stored by :func:`attach_state`.
    """
    state = request.app.state.service
    assert isinstance(state, ServiceState)
    return state


async def _state(request: Request) -> ServiceState:
    """:func:`state_of` as a dependency (async: no worker-thread hop for a lookup)."""
    return state_of(request)


async def current_model(request: Request) -> LoadedModel:
    """The model serving now, read once per request.

    The request keeps this object until it finishes, so a reload during the request does not
    affect it.

    Args:
        request: The current request.

    Returns:
        The loaded model.

    Raises:
        ModelUnavailable: No model is loaded (503).
    """
    holder = state_of(request).holder
    model = holder.current
    if model is None:
        reason = holder.last_error or "the model has not been loaded yet"
        raise ModelUnavailable(f"no model is loaded: {reason}")
    return model


# The dependencies are async functions that never block: FastAPI runs a plain `def` dependency in
# a worker thread, and that hand-off costs more than the lookup itself.
State = Annotated[ServiceState, Depends(_state)]
CurrentModel = Annotated[LoadedModel, Depends(current_model)]
