"""The registry path end to end: a model logged and registered in a temporary SQLite MLflow store,
served through its champion alias, cached locally, and reloaded when the alias moves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from classifier import ModelLoadError, NarrativeClassifier
from service.loader import LAST_GOOD_FILE, REGISTRATION_FILE, load
from tests.service_fixtures import (
    ADMIN_KEY,
    bearer,
    classify,
    make_settings,
    running_client,
    save_test_model,
)
from tests.service_registry import NAME, Registry

TEXT = "فرضت واشنطن عقوبات جديدة على شركات شحن"


@pytest.mark.slow
def test_the_champion_is_served_from_the_registry_and_reloaded_when_it_moves(
    tiny_model: NarrativeClassifier, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = Registry.create(tmp_path, monkeypatch)
    tracking_uri, client = registry.tracking_uri, registry.client
    missing = make_settings(
        "models:/nobody@champion", tmp_path / "cache", tracking_uri=tracking_uri
    )
    with pytest.raises(ModelLoadError, match="cannot resolve model 'nobody' @champion"):
        load(missing)

    # Training's layout: the saved folder is named after the artifact key, "classifier".
    first = save_test_model(tiny_model, tmp_path / "v1" / "classifier")
    v1, run1 = registry.register(first)

    cache = tmp_path / "cache"
    settings = make_settings(
        f"models:/{NAME}@champion", cache, tracking_uri=tracking_uri, admin_keys=[ADMIN_KEY]
    )
    with running_client(settings) as api:
        body = classify(api, TEXT)
        assert body["model"] == {"name": NAME, "version": v1, "run_id": run1}
        assert body["results"][0]["primary"] == "sanctions"
        info = api.get("/v1/model").json()
        assert (info["version"], info["run_id"]) == (v1, run1)
        assert info["source_uri"] == f"models:/{NAME}@champion"
        assert info["metrics"]["micro_f1"] == 0.81

        # The downloaded copy is cached per version, with a pointer to the last good one.
        assert (cache / NAME / v1 / "manifest.json").is_file()
        pointer = json.loads((cache / NAME / LAST_GOOD_FILE).read_text())
        assert (pointer["version"], pointer["run_id"], pointer["folder"]) == (v1, run1, v1)
        assert pointer["sha256"] == info["sha256"]

        # A new champion: reload picks it up and swaps it in. Its folder has another name, so
        # MLflow stores it as artifacts/m2: the loader follows the MLmodel file to find it.
        second = save_test_model(tiny_model, tmp_path / "m2", run_id="x")
        v2, run2 = registry.register(second)
        assert v2 != v1
        response = api.post("/v1/model/reload", headers=bearer(ADMIN_KEY))
        assert response.status_code == 200, response.text
        assert response.json()["previous"]["version"] == v1
        assert response.json()["current"]["version"] == v2
        assert classify(api, TEXT)["model"] == {"name": NAME, "version": v2, "run_id": run2}
        assert f'version="{v2}"' in api.get("/metrics").text
        assert json.loads((cache / NAME / LAST_GOOD_FILE).read_text())["version"] == v2

        # An alias that points nowhere: the reload fails, the current champion keeps serving.
        client.delete_registered_model_alias(NAME, "champion")
        failed = api.post("/v1/model/reload", headers=bearer(ADMIN_KEY))
        assert failed.status_code == 503
        assert f"still serving {NAME} version {v2}" in failed.json()["error"]["message"]
        assert "@champion" in failed.json()["error"]["message"]
        assert classify(api, TEXT)["model"]["version"] == v2

    # A fixed version URI resolves too, and is served from the cache without a new download.
    cached = cache / NAME / v1
    marker = cached / "marker"
    marker.touch()
    fixed = make_settings(f"models:/{NAME}/{v1}", cache, tracking_uri=tracking_uri)
    with running_client(fixed) as api:
        assert classify(api, TEXT)["model"]["version"] == v1
    assert marker.exists()

    # A cached copy of another registration under the same number (a store wiped and refilled)
    # is not trusted: the version is downloaded again.
    registration = json.loads((cached / REGISTRATION_FILE).read_text())
    assert registration["run_id"] == run1
    (cached / REGISTRATION_FILE).write_text(json.dumps({**registration, "run_id": "other"}))
    with running_client(fixed) as api:
        assert classify(api, TEXT)["model"]["run_id"] == run1
    assert not marker.exists()
    assert json.loads((cached / REGISTRATION_FILE).read_text()) == registration
