"""Run the service with uvicorn."""

from __future__ import annotations

import os

import uvicorn

from service.app import create_app
from service.settings import Settings

FACTORY = "service.app:create_app"


def settings_env(settings: Settings) -> dict[str, str]:
    """Express settings as ``NARRATIVES_*`` environment variables (for worker processes).

    Args:
        settings: The settings to pass on.

    Returns:
        One variable per setting that has a value; lists comma-separated.
    """
    env: dict[str, str] = {}
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if value is None:
            continue
        if isinstance(value, list):
            text = ",".join(
                item.get_secret_value() if hasattr(item, "get_secret_value") else str(item)
                for item in value
            )
        else:
            text = str(value)
        env[f"NARRATIVES_{name.upper()}"] = text
    return env


def run(settings: Settings | None = None) -> None:
    """Serve the API and the analysts' page until interrupted.

    With one worker the app is built here from ``settings``. With several, uvicorn starts
    processes that each build their own app (and load their own model copy) from the
    environment, so the settings are passed to them as ``NARRATIVES_*`` variables.

    Args:
        settings: Service settings; read from the environment if omitted.
    """
    settings = settings if settings is not None else Settings()
    if settings.workers == 1:
        uvicorn.run(create_app(settings), host=settings.host, port=settings.port)
        return
    os.environ.update(settings_env(settings))
    uvicorn.run(
        FACTORY, factory=True, host=settings.host, port=settings.port, workers=settings.workers
    )
