"""The service's errors and the one place where every error becomes an HTTP response.

Error bodies always have the shape ``{"error": {"code": ..., "message": ..., "field": ...}}``
(``field`` only when one input field is at fault), whatever raised them: the classifier, the
service, request validation, routing, or the body-size middleware.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from classifier.errors import ClassifierError, EmptyTextError, ModelLoadError, NotFittedError

logger = logging.getLogger(__name__)


class ServiceError(Exception):
    """Base class of errors the service raises on purpose; each knows its HTTP status.

    Args:
        message: A sentence for the client saying what went wrong.
        field: The request field at fault, if one is (``texts[3]``).
    """

    status_code = 500
    code = "service_error"

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidInput(ServiceError):
    """A request is well-formed JSON but breaks a rule (a limit, a missing text, ...)."""

    status_code = 422
    code = "invalid_input"


class Unauthorized(ServiceError):
    """No credentials were sent where they are required."""

    status_code = 401
    code = "unauthorized"


class Forbidden(ServiceError):
    """The credentials sent do not allow this route (or admin routes are disabled)."""

    status_code = 403
    code = "forbidden"


class PayloadTooLarge(ServiceError):
    """The request body is larger than ``max_body_bytes``."""

    status_code = 413
    code = "payload_too_large"


class UnsupportedMediaType(ServiceError):
    """The request body is not declared as JSON."""

    status_code = 415
    code = "unsupported_media_type"


class ModelUnavailable(ServiceError):
    """No model is loaded, so nothing can be classified yet."""

    status_code = 503
    code = "model_unavailable"


class ReloadFailed(ServiceError):
    """Loading a new model failed; the model that was serving still is."""

    status_code = 503
    code = "reload_failed"


def error_body(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    """Build the JSON error body shared by every error response.

    Args:
        code: Stable machine-readable code.
        message: Human-readable explanation.
        field: The offending request field, if any.

    Returns:
        ``{"error": {...}}`` ready for a JSON response.
    """
    error: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        error["field"] = field
    return {"error": error}


def service_error_response(exc: ServiceError) -> JSONResponse:
    """Turn a :class:`ServiceError` into its JSON response (also used by the ASGI middleware)."""
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, Unauthorized) else None
    return JSONResponse(
        error_body(exc.code, exc.message, exc.field), status_code=exc.status_code, headers=headers
    )


def field_name(loc: Sequence[int | str]) -> str:
    """Render a pydantic error location as a field path: ``("body", "texts", 3)`` -> ``texts[3]``.

    Args:
        loc: The location tuple of a validation error.

    Returns:
        A dotted path with list indices in brackets; ``body`` when the whole body is at fault.
    """
    parts = list(loc)
    if len(parts) > 1 and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "body"


def _classifier_status(exc: ClassifierError) -> tuple[int, str]:
    if isinstance(exc, EmptyTextError):
        return 422, "empty_text"
    if isinstance(exc, ModelLoadError | NotFittedError):
        return 503, "model_unavailable"
    return 422, "classifier_error"


async def _on_service_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServiceError)
    return service_error_response(exc)


async def _on_classifier_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ClassifierError)
    status, code = _classifier_status(exc)
    if status >= 500:
        logger.error("classifier unavailable: %s", exc)
    return JSONResponse(error_body(code, str(exc)), status_code=status)


async def _on_validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    if not errors:
        return JSONResponse(error_body("invalid_input", "invalid request"), status_code=422)
    first = errors[0]
    field = field_name(first.get("loc", ()))
    message = f"{field}: {first.get('msg', 'invalid value')}"
    if first.get("type") == "json_invalid":
        field, message = "body", "the body is not valid JSON"
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more problem(s))"
    # The input itself is never echoed back: it may be large or sensitive.
    return JSONResponse(error_body("invalid_input", message, field), status_code=422)


async def _on_http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and isinstance(exc.__cause__, ValueError | RecursionError):
        # FastAPI turns a JSON body it cannot decode (invalid UTF-8, nesting too deep for the
        # parser) into a bare 400; answer it like any other unparseable body.
        return JSONResponse(
            error_body("invalid_input", "the body is not valid UTF-8 JSON", "body"),
            status_code=422,
        )
    code = {
        400: "bad_request",
        404: "not_found",
        405: "method_not_allowed",
        413: "payload_too_large",
    }.get(exc.status_code, "http_error")
    return JSONResponse(
        error_body(code, str(exc.detail)), status_code=exc.status_code, headers=exc.headers
    )


def register_error_handlers(app: FastAPI) -> None:
    """Install the exception handlers that map every expected error to its response.

    Args:
        app: The application to install them on.
    """
    app.add_exception_handler(ServiceError, _on_service_error)
    app.add_exception_handler(ClassifierError, _on_classifier_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
