"""Security: admin keys enforced and never logged, no request reaches the file system, bodies
limited before parsing, artifacts verified before they are unpickled."""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import joblib
import pytest
from fastapi.testclient import TestClient

from classifier import NarrativeClassifier
from classifier.artifact import MANIFEST_FILE, PIPELINE_FILE, sha256_file
from service.app import create_app
from service.loader import LoadedModel, load
from service.settings import Settings
from tests.service_fixtures import (
    ADMIN_KEY,
    API_KEY,
    bearer,
    classify,
    make_settings,
    running_client,
    save_test_model,
    serving,
    write_marker_pickle,
)
from tests.service_registry import NAME, Registry

TEXT = "فرضت واشنطن عقوبات جديدة على شركات شحن"
RELOAD = "/v1/model/reload"


@pytest.fixture
def keyed(model_dir: Path, tmp_path: Path) -> Iterator[TestClient]:
    settings = make_settings(
        model_dir, tmp_path / "cache", api_keys=[API_KEY], admin_keys=[ADMIN_KEY]
    )
    with running_client(settings) as client:
        yield client


# --- Admin routes refuse missing or wrong keys -------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        pytest.param({}, 401, id="no key"),
        pytest.param({"Authorization": "Bearer"}, 401, id="empty bearer"),
        pytest.param({"Authorization": f"Basic {ADMIN_KEY}"}, 401, id="other scheme"),
        pytest.param({"X-API-Key": ""}, 401, id="empty x-api-key"),
        pytest.param(bearer("wrong"), 403, id="wrong bearer"),
        pytest.param({"X-API-Key": "wrong"}, 403, id="wrong x-api-key"),
        pytest.param(bearer(ADMIN_KEY.upper()), 403, id="admin key in upper case"),
        pytest.param(bearer(ADMIN_KEY[:-1]), 403, id="admin key cut short"),
        pytest.param(bearer(API_KEY), 403, id="client key"),
        pytest.param(bearer(ADMIN_KEY), 200, id="admin key as bearer"),
        pytest.param({"X-API-Key": ADMIN_KEY}, 200, id="admin key as x-api-key"),
    ],
)
def test_the_reload_route_takes_only_an_admin_key(
    keyed: TestClient, headers: dict[str, str], status: int
) -> None:
    response = keyed.post(RELOAD, headers=headers)
    assert response.status_code == status, response.text
    if status == 401:
        assert response.json()["error"]["code"] == "unauthorized"
        assert response.headers["www-authenticate"] == "Bearer"
    elif status == 403:
        assert response.json()["error"]["code"] == "forbidden"


def test_a_key_in_the_query_string_is_not_a_key(keyed: TestClient) -> None:
    # Keys go in headers only: a URL (which proxies and access logs record) never carries one.
    for query in ({"api_key": ADMIN_KEY}, {"key": ADMIN_KEY}, {"X-API-Key": ADMIN_KEY}):
        assert keyed.post(RELOAD, params=query).status_code == 401


def test_without_admin_keys_the_admin_routes_are_off(model_dir: Path, tmp_path: Path) -> None:
    # With client keys on, a client key gets past /v1 and is then refused; without, anyone is.
    for api_keys, headers in (([API_KEY], bearer(API_KEY)), ([], {}), ([], bearer(ADMIN_KEY))):
        settings = make_settings(model_dir, tmp_path / "cache", api_keys=api_keys)
        with running_client(settings) as client:
            response = client.post(RELOAD, headers=headers)
            assert response.status_code == 403
            assert "admin routes are disabled" in response.json()["error"]["message"]


# --- Keys never reach the logs -----------------------------------------------------------------


@pytest.mark.slow
def test_keys_never_appear_in_any_log_of_a_real_server(
    model_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """uvicorn's access and error logs and the service's own, at DEBUG, over real HTTP."""
    folder = Path(shutil.copytree(model_dir, tmp_path / "model"))
    settings = make_settings(folder, tmp_path / "cache", api_keys=[API_KEY], admin_keys=[ADMIN_KEY])
    caplog.set_level(logging.DEBUG)
    wrong = [f"guess-{ADMIN_KEY}", ADMIN_KEY[::-1], API_KEY + "x"]
    responses: list[httpx.Response] = []
    with serving(create_app(settings)) as base, httpx.Client(base_url=base, timeout=30) as http:
        for key in [API_KEY, ADMIN_KEY, *wrong]:
            for headers in (bearer(key), {"X-API-Key": key}):
                responses.append(http.post("/v1/classify", json={"text": TEXT}, headers=headers))
                responses.append(http.get("/v1/model", headers=headers))
                responses.append(http.post(RELOAD, headers=headers))
        # A failing reload logs an error (with the reason): still no key in it.
        (folder / PIPELINE_FILE).write_bytes(b"garbage")
        failed = http.post(RELOAD, headers=bearer(ADMIN_KEY))
        assert failed.status_code == 503
        responses.append(failed)
    logged = caplog.text
    # The capture did see uvicorn's access log and the service's error log.
    assert '"POST /v1/model/reload HTTP/1.1" 200' in logged
    assert '"POST /v1/model/reload HTTP/1.1" 403' in logged
    assert "reload failed" in logged
    assert {r.status_code for r in responses} == {200, 403, 503}
    for key in [API_KEY, ADMIN_KEY, *wrong]:
        assert key not in logged
        for response in responses:
            assert key not in response.text
            assert key not in str(response.headers)


# --- No request reaches the file system --------------------------------------------------------


def test_no_operation_takes_a_path_or_uri(keyed: TestClient) -> None:
    document = keyed.get("/openapi.json").json()
    bodies: set[str] = set()
    for path, item in document["paths"].items():
        assert "{" not in path, f"{path} has a path parameter"
        for method, operation in item.items():
            # Only headers: the API keys. No path, query or cookie parameter anywhere.
            params = [p for p in operation.get("parameters", []) if p["in"] != "header"]
            assert not params, (method, path, params)
            if "requestBody" in operation:
                schema = operation["requestBody"]["content"]["application/json"]["schema"]
                bodies.add(schema["$ref"].rsplit("/", 1)[1])
    assert bodies == {"ClassifyRequest"}
    request = document["components"]["schemas"]["ClassifyRequest"]
    assert set(request["properties"]) == {"text", "texts", "explain", "segment", "k"}
    assert request["additionalProperties"] is False
    text = json.dumps(document["components"])
    assert '"format": "uri' not in text and '"format": "path"' not in text


def _planted_model(tiny_model: NarrativeClassifier, folder: Path, marker: Path) -> Path:
    """A model folder that verifies (manifest and pipeline agree) but runs code if unpickled."""
    save_test_model(tiny_model, folder)
    write_marker_pickle(folder / PIPELINE_FILE, marker)
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    manifest["sha256"] = sha256_file(folder / PIPELINE_FILE)
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest))
    return folder


def test_the_reload_route_ignores_any_model_uri_it_is_sent(
    tiny_model: NarrativeClassifier, model_dir: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "planted-model-was-unpickled"
    planted = _planted_model(tiny_model, tmp_path / "planted", marker)
    seen: list[str] = []

    def spy(settings: Settings) -> LoadedModel:
        seen.append(settings.model_uri)
        return load(settings)

    settings = make_settings(model_dir, tmp_path / "cache", admin_keys=[ADMIN_KEY])
    attempts: list[dict[str, Any]] = [
        {"json": {"model_uri": str(planted)}},
        {"json": {"uri": planted.as_uri(), "path": str(planted / PIPELINE_FILE)}},
        {"params": {"model_uri": str(planted), "path": str(planted)}},
        {"content": str(planted).encode(), "headers": {"content-type": "text/plain"}},
    ]
    with running_client(settings, loader=spy) as client:
        for attempt in attempts:
            headers = {**bearer(ADMIN_KEY), **attempt.pop("headers", {})}
            response = client.post(RELOAD, headers=headers, **attempt)
            assert response.status_code == 200, response.text
            assert response.json()["current"]["source_uri"] == str(model_dir)
        assert classify(client, TEXT)["model"]["run_id"] == "run-1"
    assert seen == [str(model_dir)] * (1 + len(attempts))
    assert not marker.exists()


@pytest.mark.parametrize(
    "path",
    [
        "/static/../service/app.py",
        "/static/..%2fapp.py",
        "/static/%2e%2e/%2e%2e/pyproject.toml",
        "/static/..%5c..%5cpyproject.toml",
        "/static//etc/passwd",
    ],
)
def test_static_files_do_not_leave_their_folder(keyed: TestClient, path: str) -> None:
    response = keyed.get(path)
    assert response.status_code == 404, response.text[:200]
    assert "import" not in response.text and "root:" not in response.text


# --- Artifacts are verified before they are unpickled -----------------------------------------


def test_the_planted_pickle_would_run_if_loaded(tmp_path: Path) -> None:
    """The control: without verification, loading the file runs its code."""
    marker = tmp_path / "ran"
    write_marker_pickle(tmp_path / "evil.joblib", marker)
    joblib.load(tmp_path / "evil.joblib")
    assert marker.exists()


def test_a_tampered_artifact_is_never_unpickled_at_start_up_or_reload(
    tiny_model: NarrativeClassifier, tmp_path: Path
) -> None:
    marker = tmp_path / "pickle-was-executed"
    folder = save_test_model(tiny_model, tmp_path / "model", run_id="good")
    good_pipeline = (folder / PIPELINE_FILE).read_bytes()
    write_marker_pickle(folder / PIPELINE_FILE, marker)
    settings = make_settings(folder, tmp_path / "cache", admin_keys=[ADMIN_KEY])
    with running_client(settings) as client:
        # At start-up: refused, the service stays unready and says why.
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert "checksum mismatch" in ready.json()["error"]["message"]
        assert not marker.exists()

        # The genuine file back: served. Tampered again: the reload is refused, old model kept.
        (folder / PIPELINE_FILE).write_bytes(good_pipeline)
        assert client.post(RELOAD, headers=bearer(ADMIN_KEY)).status_code == 200
        write_marker_pickle(folder / PIPELINE_FILE, marker)
        failed = client.post(RELOAD, headers=bearer(ADMIN_KEY))
        assert failed.status_code == 503
        assert "checksum mismatch" in failed.json()["error"]["message"]
        assert classify(client, TEXT)["model"]["run_id"] == "good"
    assert not marker.exists()


@pytest.mark.slow
def test_a_tampered_cached_copy_is_downloaded_again_not_unpickled(
    tiny_model: NarrativeClassifier, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = Registry.create(tmp_path, monkeypatch)
    version, _ = registry.register(save_test_model(tiny_model, tmp_path / "m" / "classifier"))
    cache = tmp_path / "cache"
    settings = make_settings(f"models:/{NAME}@champion", cache, tracking_uri=registry.tracking_uri)
    genuine = load(settings).manifest.sha256
    marker = tmp_path / "pickle-was-executed"
    write_marker_pickle(cache / NAME / version / PIPELINE_FILE, marker)
    with running_client(settings) as client:
        info = client.get("/v1/model").json()
        assert (info["version"], info["sha256"], info["degraded"]) == (version, genuine, False)
    assert not marker.exists()
    assert sha256_file(cache / NAME / version / PIPELINE_FILE) == genuine
