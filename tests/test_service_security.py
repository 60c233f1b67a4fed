"""API keys: optional client keys, required admin keys, constant-time checks, nothing logged."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from service.security import key_matches
from service.settings import Settings
from tests.service_fixtures import (
    ADMIN_KEY,
    API_KEY,
    bearer,
    make_settings,
    running_client,
)

BODY = {"text": "فرضت واشنطن عقوبات جديدة"}


@pytest.fixture
def keyed(model_dir: Path, tmp_path: Path) -> Iterator[TestClient]:
    settings = make_settings(
        model_dir, tmp_path / "cache", api_keys=[API_KEY, "second-key"], admin_keys=[ADMIN_KEY]
    )
    with running_client(settings) as client:
        yield client


@pytest.fixture
def open_client(model_dir: Path, tmp_path: Path) -> Iterator[TestClient]:
    with running_client(make_settings(model_dir, tmp_path / "cache")) as client:
        yield client


def test_without_keys_configured_v1_is_open_and_admin_is_disabled(
    open_client: TestClient,
) -> None:
    assert open_client.post("/v1/classify", json=BODY).status_code == 200
    assert open_client.get("/v1/labels").status_code == 200
    response = open_client.post("/v1/model/reload", headers=bearer("anything"))
    assert response.status_code == 403
    assert "admin routes are disabled" in response.json()["error"]["message"]


def test_a_missing_key_gets_401(keyed: TestClient) -> None:
    for response in (
        keyed.post("/v1/classify", json=BODY),
        keyed.get("/v1/labels"),
        keyed.get("/v1/model"),
        keyed.post("/v1/model/reload"),
    ):
        assert response.status_code == 401, response.text
        assert response.json()["error"]["code"] == "unauthorized"
        assert response.headers["www-authenticate"] == "Bearer"


def test_a_wrong_key_gets_403(keyed: TestClient) -> None:
    for headers in (bearer("wrong"), {"X-API-Key": "wrong"}, bearer(API_KEY + "x")):
        response = keyed.post("/v1/classify", json=BODY, headers=headers)
        assert response.status_code == 403, response.text
        assert response.json()["error"]["code"] == "forbidden"


def test_a_key_is_accepted_as_bearer_token_or_x_api_key(keyed: TestClient) -> None:
    for headers in (bearer(API_KEY), bearer("second-key"), {"X-API-Key": API_KEY}):
        assert keyed.post("/v1/classify", json=BODY, headers=headers).status_code == 200


def test_an_admin_key_also_opens_the_client_routes(keyed: TestClient) -> None:
    assert keyed.get("/v1/model", headers=bearer(ADMIN_KEY)).status_code == 200


def test_a_client_key_cannot_reload(keyed: TestClient) -> None:
    response = keyed.post("/v1/model/reload", headers=bearer(API_KEY))
    assert response.status_code == 403
    assert response.json()["error"]["message"] == "the key is not an admin key"


def test_the_admin_key_reloads(keyed: TestClient) -> None:
    response = keyed.post("/v1/model/reload", headers={"X-API-Key": ADMIN_KEY})
    assert response.status_code == 200, response.text


def test_operational_routes_and_the_page_need_no_key(keyed: TestClient) -> None:
    for path in ("/healthz", "/readyz", "/metrics", "/", "/static/app.js", "/openapi.json"):
        assert keyed.get(path).status_code == 200, path


def test_keys_never_reach_the_logs_or_the_responses(
    keyed: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    responses = [
        keyed.post("/v1/classify", json=BODY, headers=bearer("guess-" + API_KEY)),
        keyed.post("/v1/model/reload", headers=bearer(API_KEY)),
        keyed.post("/v1/model/reload", headers=bearer(ADMIN_KEY)),
        keyed.get("/metrics"),
    ]
    for key in (API_KEY, ADMIN_KEY):
        assert key not in caplog.text
        for response in responses:
            assert key not in response.text


def test_settings_keep_keys_secret_and_read_comma_separated_lists(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NARRATIVES_API_KEYS", f"{API_KEY}, second-key")
    monkeypatch.setenv("NARRATIVES_ADMIN_KEYS", ADMIN_KEY)
    monkeypatch.setenv("NARRATIVES_CORS_ORIGINS", "http://localhost:3000,https://a.example")
    monkeypatch.setenv("NARRATIVES_MAX_TEXTS", "12")
    settings = Settings()
    assert [k.get_secret_value() for k in settings.api_keys] == [API_KEY, "second-key"]
    assert [k.get_secret_value() for k in settings.admin_keys] == [ADMIN_KEY]
    assert settings.cors_origins == ["http://localhost:3000", "https://a.example"]
    assert settings.max_texts == 12
    for text in (repr(settings), str(settings), settings.model_dump_json()):
        assert API_KEY not in text and ADMIN_KEY not in text


def test_settings_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("API_KEYS", "ADMIN_KEYS", "MODEL_URI", "TRACKING_URI", "MAX_TEXTS", "PORT"):
        monkeypatch.delenv(f"NARRATIVES_{name}", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    settings = Settings()
    assert settings.model_uri == "models:/narrative-classifier@champion"
    assert (settings.host, settings.port, settings.workers) == ("127.0.0.1", 8000, 1)
    assert (settings.max_texts, settings.max_chars) == (256, 20_000)
    assert settings.api_keys == [] and settings.admin_keys == []
    assert settings.resolved_tracking_uri() == f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracking:5000")
    assert settings.resolved_tracking_uri() == "http://tracking:5000"
    explicit = Settings(tracking_uri="sqlite:////data/store.db")
    assert explicit.resolved_tracking_uri() == "sqlite:////data/store.db"


def test_blank_keys_are_refused_in_settings() -> None:
    with pytest.raises(ValueError, match="must not be empty"):
        Settings(api_keys=[SecretStr("")])


def test_key_matches_compares_against_every_key() -> None:
    keys = [SecretStr("alpha"), SecretStr("beta")]
    assert key_matches("beta", keys)
    assert not key_matches("bet", keys)
    assert not key_matches("", keys)
    assert not key_matches("alpha", [])
    assert key_matches("مفتاح", [SecretStr("مفتاح")])


def test_cors_allows_only_the_configured_origins(model_dir: Path, tmp_path: Path) -> None:
    settings = make_settings(model_dir, tmp_path / "cache", cors_origins=["http://analyst.local"])
    with running_client(settings) as client:
        allowed = client.options(
            "/v1/classify",
            headers={
                "Origin": "http://analyst.local",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type,authorization",
            },
        )
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "http://analyst.local"
        other = client.get("/healthz", headers={"Origin": "http://elsewhere.example"})
        assert "access-control-allow-origin" not in other.headers
