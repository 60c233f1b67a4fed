"""Model reload: swaps atomically, requests in flight finish on the old model, failures keep it."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from classifier import ModelLoadError, NarrativeClassifier, Prediction
from classifier.artifact import PIPELINE_FILE
from service.api import INLINE_MAX_CHARS
from service.loader import LoadedModel, load_local
from service.settings import Settings
from tests.service_fixtures import (
    ADMIN_KEY,
    bearer,
    classify,
    make_settings,
    running_client,
    save_test_model,
)

TEXT = "فرضت واشنطن عقوبات جديدة على شركات شحن"
ADMIN = bearer(ADMIN_KEY)


def _settings(folder: Path, tmp_path: Path) -> Settings:
    return make_settings(folder, tmp_path / "cache", admin_keys=[ADMIN_KEY])


def _reload(client: TestClient) -> Any:
    return client.post("/v1/model/reload", headers=ADMIN)


def test_reload_swaps_in_the_new_model(tiny_model: NarrativeClassifier, tmp_path: Path) -> None:
    folder = save_test_model(tiny_model, tmp_path / "model", run_id="run-1")
    with running_client(_settings(folder, tmp_path)) as client:
        first = client.get("/v1/model").json()
        assert classify(client, TEXT)["model"]["run_id"] == "run-1"

        # A new model is published where the settings point (as a new champion would be).
        shutil.rmtree(folder)
        save_test_model(tiny_model, folder, run_id="run-2")
        response = _reload(client)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["previous"]["run_id"] == "run-1"
        assert body["current"]["run_id"] == "run-2"
        assert body["changed"] is True  # same weights, but another run

        assert classify(client, TEXT)["model"]["run_id"] == "run-2"
        assert client.get("/readyz").json()["model"]["run_id"] == "run-2"
        info = client.get("/v1/model").json()
        assert info["run_id"] == "run-2"
        assert info["loaded_at"] > first["loaded_at"]
        metrics = client.get("/metrics").text
        assert 'narratives_model_info{name="model",run_id="run-2",version="local"} 1.0' in metrics
        assert 'run_id="run-1"' not in metrics
        assert 'narratives_model_reloads_total{outcome="success"} 1.0' in metrics


def test_reload_of_the_same_artifact_reports_no_change(
    tiny_model: NarrativeClassifier, tmp_path: Path
) -> None:
    folder = save_test_model(tiny_model, tmp_path / "model")
    with running_client(_settings(folder, tmp_path)) as client:
        body = _reload(client).json()
        assert body["changed"] is False
        assert body["previous"]["sha256"] == body["current"]["sha256"]


@pytest.mark.parametrize("damage", ["tamper", "truncate", "delete"])
def test_a_failed_reload_keeps_the_old_model_and_says_why(
    tiny_model: NarrativeClassifier, tmp_path: Path, damage: str
) -> None:
    folder = save_test_model(tiny_model, tmp_path / "model", run_id="run-1")
    with running_client(_settings(folder, tmp_path)) as client:
        pipeline = folder / PIPELINE_FILE
        if damage == "tamper":
            data = bytearray(pipeline.read_bytes())
            data[len(data) // 2] ^= 0xFF
            pipeline.write_bytes(bytes(data))
        elif damage == "truncate":
            pipeline.write_bytes(pipeline.read_bytes()[:100])
        else:
            shutil.rmtree(folder)

        response = _reload(client)
        assert response.status_code == 503
        error = response.json()["error"]
        assert error["code"] == "reload_failed"
        assert "still serving model version local" in error["message"]
        reason = "no model manifest" if damage == "delete" else "checksum mismatch"
        assert reason in error["message"]

        # The old model keeps answering, and says it is ready.
        assert classify(client, TEXT)["model"]["run_id"] == "run-1"
        assert client.get("/readyz").status_code == 200
        assert (
            'narratives_model_reloads_total{outcome="failure"} 1.0' in client.get("/metrics").text
        )


def test_reload_brings_up_a_service_that_started_without_a_model(
    tiny_model: NarrativeClassifier, tmp_path: Path
) -> None:
    folder = tmp_path / "model"
    with running_client(_settings(folder, tmp_path)) as client:
        assert client.get("/readyz").status_code == 503
        failed = _reload(client)
        assert failed.status_code == 503
        assert "no model is loaded" in failed.json()["error"]["message"]

        save_test_model(tiny_model, folder, run_id="run-9")
        response = _reload(client)
        assert response.status_code == 200
        assert response.json()["previous"] is None
        assert client.get("/readyz").status_code == 200
        assert classify(client, TEXT)["model"]["run_id"] == "run-9"


class _GatedClassifier(NarrativeClassifier):
    """Blocks in predict until released, so a test can reload while a request is running."""

    entered: threading.Event
    release: threading.Event

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        self.entered.set()
        assert self.release.wait(30), "the test never released the request"
        return super().predict(texts)


def test_a_request_in_flight_finishes_on_the_model_it_started_with(
    tiny_model: NarrativeClassifier, tmp_path: Path
) -> None:
    folder = save_test_model(tiny_model, tmp_path / "model")
    real = load_local(folder)
    assert real.classifier.scorer is not None
    gated = _GatedClassifier.from_scorer(
        real.classifier.scorer, real.classifier.labels, real.classifier.thresholds
    )
    gated.entered, gated.release = threading.Event(), threading.Event()
    versions = iter(
        [replace(real, classifier=gated, version="1"), replace(real, version="2", run_id="r2")]
    )

    def loader(_: Settings) -> LoadedModel:
        try:
            return next(versions)
        except StopIteration:
            raise ModelLoadError("no more versions") from None

    result: dict[str, Any] = {}
    with running_client(_settings(folder, tmp_path), loader=loader) as client:
        # Long enough to be scored in a worker thread (short ones are scored on the event loop,
        # where nothing else can run meanwhile, a reload included).
        long_text = " ".join([TEXT] * (INLINE_MAX_CHARS // len(TEXT) + 1))

        def slow_request() -> None:
            result["response"] = client.post("/v1/classify", json={"text": long_text})

        worker = threading.Thread(target=slow_request)
        worker.start()
        try:
            assert gated.entered.wait(30), "the request never reached the model"
            # The request now holds version 1 and is inside predict(); swap version 2 in.
            swapped = _reload(client)
            assert swapped.status_code == 200, swapped.text
            assert swapped.json()["current"]["version"] == "2"
            assert classify(client, TEXT)["model"]["version"] == "2"
        finally:
            gated.release.set()
            worker.join(30)
        response = result["response"]
        assert response.status_code == 200, response.text
        assert response.json()["model"]["version"] == "1"
        assert response.json()["results"][0]["labels"]
