"""Helpers for the service tests: model folders saved from the tiny model, settings, clients."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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
