"""API keys: optional for the /v1 routes, required for admin routes, compared in constant time.

A key is sent as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``. No key is ever logged
or echoed: the settings hold them as secrets and errors never quote them.

Missing credentials get 401; credentials that do not grant the route get 403.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr

from service.errors import Forbidden, Unauthorized
from service.state import state_of

_bearer = HTTPBearer(auto_error=False, description="An API key as a bearer token.")
_api_key_header = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="An API key in the X-API-Key header."
)


def _digest(key: str) -> bytes:
    # Hashing first makes every comparison the same length, so timing reveals nothing,
    # not even a key's length.
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


def key_matches(presented: str, keys: Sequence[SecretStr]) -> bool:
    """Whether ``presented`` is one of ``keys``, comparing in constant time.

    Every key is compared (no early exit), so the time taken does not tell which one matched.

    Args:
        presented: The key the client sent.
        keys: The accepted keys.

    Returns:
        True when it matches one of them.
    """
    wanted = _digest(presented)
    found = False
    for key in keys:
        found |= hmac.compare_digest(wanted, _digest(key.get_secret_value()))
    return found


async def presented_key(
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    header_key: Annotated[str | None, Depends(_api_key_header)],
) -> str | None:
    """The key a request carries, from ``Authorization: Bearer`` or ``X-API-Key``.

    Args:
        bearer: Parsed bearer credentials, if any.
        header_key: The ``X-API-Key`` header, if any.

    Returns:
        The key, or None when the request carries none.
    """
    if bearer is not None and bearer.credentials:
        return bearer.credentials
    return header_key or None


PresentedKey = Annotated[str | None, Depends(presented_key)]


async def require_api_key(request: Request, key: PresentedKey) -> None:
    """Let a request through to a /v1 route when API keys are off or its key is accepted.

    Admin keys are accepted as well: an admin can do whatever a client can.

    Args:
        request: The request (for the settings).
        key: The key it carries.

    Raises:
        Unauthorized: Keys are configured and the request carries none.
        Forbidden: The key is not an accepted one.
    """
    settings = state_of(request).settings
    if not settings.api_keys:
        return
    if key is None:
        raise Unauthorized("an API key is required: send Authorization: Bearer <key>")
    if not key_matches(key, [*settings.api_keys, *settings.admin_keys]):
        raise Forbidden("the API key is not valid")


async def require_admin_key(request: Request, key: PresentedKey) -> None:
    """Let a request through to an admin route only with an admin key.

    Args:
        request: The request (for the settings).
        key: The key it carries.

    Raises:
        Forbidden: Admin routes are disabled (no admin key configured) or the key is not an
            admin key.
        Unauthorized: The request carries no key.
    """
    settings = state_of(request).settings
    if not settings.admin_keys:
        raise Forbidden("admin routes are disabled: no admin key is configured")
    if key is None:
        raise Unauthorized("an admin key is required: send Authorization: Bearer <key>")
    if not key_matches(key, settings.admin_keys):
        raise Forbidden("the key is not an admin key")
