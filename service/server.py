"""Run the service with uvicorn."""

from __future__ import annotations

import os
import sys

import uvicorn

from classifier.errors import ModelLoadError
from service.app import create_app
from service.lifecycle import Loader
from service.loader import LoadedModel, load, load_cached
from service.settings import Settings

FACTORY = "service.app:create_app"
# The code uvicorn itself exits with when an application fails to start.
EXIT_STARTUP_FAILED = 3


def _one_line(message: str) -> str:
    return " ".join(message.split())


def preload(settings: Settings, loader: Loader = load) -> LoadedModel | None:
    """Load the model before the server starts when the settings require one.

    Failing here, before uvicorn binds the port, gives the operator one readable line and an
    exit code rather than a traceback from inside the ASGI lifespan.

    Args:
        settings: Service settings.
        loader: How to load the model (after the local copy, with ``fast_start``).

    Returns:
        The model, or None when ``require_model`` is off (the app loads it, or starts unready).
        With ``fast_start``, the verified local copy when there is one (the app checks the
        registry once it serves).

    Raises:
        SystemExit: The model is required and cannot be loaded (code 3, the reason on stderr).
    """
    if not settings.require_model:
        return None
    try:
        if settings.fast_start:
            cached = load_cached(settings)
            if cached is not None:
                return cached
        return loader(settings)
    except ModelLoadError as exc:
        print(
            f"error: cannot start: {_one_line(str(exc))} (NARRATIVES_REQUIRE_MODEL is set)",
            file=sys.stderr,
            flush=True,
        )
        raise SystemExit(EXIT_STARTUP_FAILED) from None


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


def run(settings: Settings | None = None, initial: LoadedModel | None = None) -> None:
    """Serve the API and the analysts' page until interrupted.

    With one worker the app is built here from ``settings``. With several, uvicorn starts
    processes that each build their own app (and load their own model copy) from the
    environment, so the settings are passed to them as ``NARRATIVES_*`` variables.

    With ``require_model`` set, the model is loaded (and verified) before the server starts:
    when that fails, the process prints one line saying why and exits with code 3.

    Args:
        settings: Service settings; read from the environment if omitted.
        initial: A model the caller has already loaded (and verified) for these settings.

    Raises:
        SystemExit: The model is required and cannot be loaded.
    """
    settings = settings if settings is not None else Settings()
    model = initial if initial is not None else preload(settings, load)
    if settings.workers == 1:
        app = create_app(settings, loader=load, initial=model)
        uvicorn.run(app, host=settings.host, port=settings.port)
        return
    # Each worker process loads its own copy; the load above only proved that it can be done.
    del model
    os.environ.update(settings_env(settings))
    uvicorn.run(
        FACTORY, factory=True, host=settings.host, port=settings.port, workers=settings.workers
    )
