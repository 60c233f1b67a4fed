"""Helpers for the service tests: model folders saved from the tiny model, settings, clients."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import joblib
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from classifier import NarrativeClassifier, save_model
from service.app import create_app
from service.lifecycle import Loader
from service.loader import load
from service.settings import Settings
from tests.conftest import DIP, EI, SAN

DEFINITIONS = {
    EI: "Claims of foreign or covert interference in elections.",
    DIP: "Relations between states: visits, talks, envoys, protests.",
    SAN: "Sanctions, embargoes, asset freezes and export controls.",
}
ADMIN_KEY = "admin-key-7f3a9c"
API_KEY = "client-key-51b2e8"


def save_test_model(
    clf: NarrativeClassifier, folder: Path, run_id: str = "run-1", name: str | None = None
) -> Path:
    """Save ``clf`` as a local model folder with the metadata training would record."""
    metadata: dict[str, Any] = {
        "run_id": run_id,
        "trained_at": "2025-01-02T03:04:05+00:00",
        "data_digest": "sha256:feedface",
        "metrics": {"micro_f1": 0.81, "macro_f1": 0.78, "not_finite": float("nan")},
    }
    if name is not None:
        metadata["name"] = name
    save_model(clf, folder, label_definitions=DEFINITIONS, metadata=metadata)
    return folder


def make_settings(model_uri: str | Path, cache_dir: Path, **overrides: Any) -> Settings:
    """Settings for a test, every field that matters given so the environment cannot leak in."""
    values: dict[str, Any] = {
        "model_uri": str(model_uri),
        "tracking_uri": None,
        "cache_dir": cache_dir,
        "api_keys": [],
        "admin_keys": [],
        "cors_origins": [],
        "max_texts": 256,
        "max_chars": 20_000,
        "max_body_bytes": 8 * 1024 * 1024,
        "require_model": False,
        "fast_start": False,
    }
    values.update(overrides)
    return Settings(**values)


@contextmanager
def running_client(settings: Settings, loader: Loader = load) -> Iterator[TestClient]:
    """A TestClient whose app has run its lifespan (so the model is loaded)."""
    with TestClient(create_app(settings, loader=loader)) as client:
        yield client


def bearer(key: str) -> dict[str, str]:
    """Authorization header for a key."""
    return {"Authorization": f"Bearer {key}"}


def classify(client: TestClient, texts: Sequence[str] | str, **options: Any) -> Any:
    """POST /v1/classify and return the parsed body, failing on any non-200."""
    body: dict[str, Any] = {"text": texts} if isinstance(texts, str) else {"texts": list(texts)}
    body.update(options)
    response = client.post("/v1/classify", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def all_labels_variant(clf: NarrativeClassifier) -> NarrativeClassifier:
    """The same pipeline with every threshold at 0: it assigns every label to every text.

    Two model versions that answer differently show which one produced a response.
    """
    assert clf.pipeline is not None
    thresholds = dict.fromkeys(clf.labels, 0.0)
    return NarrativeClassifier.from_pipeline(clf.pipeline, clf.labels, thresholds, clf.config)


@contextmanager
def serving(app: FastAPI, timeout: float = 60.0) -> Iterator[str]:
    """Serve ``app`` with a real uvicorn server on 127.0.0.1 (a free port) in a thread.

    uvicorn's loggers are left unconfigured (``log_config=None``), so its access and error logs
    reach the root logger, where ``caplog`` sees them.

    Yields:
        The base URL.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=True, lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    # uvicorn offers no event to wait on; `started` flips once the lifespan ran and it listens.
    while not server.started:
        assert thread.is_alive(), "the server stopped during start-up"
        assert time.monotonic() < deadline, f"the server did not start within {timeout}s"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout)
        sock.close()


class _WritesMarker:
    """Unpickling this calls ``Path.touch(marker)``: proof that a pickle was executed."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[Path]]:
        return (Path.touch, (self.marker,))


def write_marker_pickle(target: Path, marker: Path) -> None:
    """Write a joblib file at ``target`` whose loading would create the file ``marker``."""
    joblib.dump(_WritesMarker(marker), target)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (closed right after it was found)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
