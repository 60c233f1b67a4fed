"""Every error of the API: 422 naming the field, 413, 415, 503 without a model, 404/405, no 500."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.types import Message, Receive, Scope, Send

from service.limits import BodyLimitMiddleware
from tests.service_fixtures import classify, make_settings, running_client

TEXT = "فرضت واشنطن عقوبات جديدة"


@pytest.fixture
def client(model_dir: Path, tmp_path: Path) -> Iterator[TestClient]:
    settings = make_settings(
        model_dir, tmp_path / "cache", max_texts=4, max_chars=50, max_body_bytes=2000
    )
    with running_client(settings) as c:
        yield c


def _error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    error: dict[str, Any] = body["error"]
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and error["message"]
    return error


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"text": ""}, "text"),
        ({"text": " \n\t "}, "text"),
        ({"texts": ["نص", "نص", "نص", "   "]}, "texts[3]"),
        ({"texts": []}, "texts"),
        ({"texts": "not a list"}, "texts"),
        ({"texts": ["نص", 7]}, "texts[1]"),
        ({"text": 12}, "text"),
        ({"text": None}, "text"),
        ({}, "text"),
        ({"text": TEXT, "texts": [TEXT]}, "texts"),
        ({"text": TEXT, "k": 0}, "k"),
        ({"text": TEXT, "k": "many"}, "k"),
        ({"text": TEXT, "explain": "perhaps"}, "explain"),
        ({"text": TEXT, "segmnet": True}, "segmnet"),
        ({"text": "a" * 51}, "text"),
        ({"texts": [TEXT, "a" * 51]}, "texts[1]"),
        ({"texts": [TEXT] * 5}, "texts"),
        ([TEXT], "body"),
        ("just a string", "body"),
    ],
)
def test_invalid_bodies_get_422_naming_the_field(client: TestClient, body: Any, field: str) -> None:
    error = _error(client.post("/v1/classify", json=body), 422)
    assert error["field"] == field
    assert error["code"] == "invalid_input"


def test_texts_at_the_limits_are_accepted(client: TestClient) -> None:
    results = classify(client, [TEXT, "ع" * 50, TEXT, TEXT])["results"]
    assert len(results) == 4


@pytest.mark.parametrize(
    "raw",
    [
        b'{"text": ',  # truncated
        b"{'text': 'single quotes'}",
        b'{"text": "\xff\xfe broken utf-8"}',
        b"[" * 600 + b"]" * 600,  # nested, but a list where an object is expected
        b'{"text": "\\ud800 lone surrogate"}',
    ],
)
def test_unparseable_json_gets_422_on_the_body(client: TestClient, raw: bytes) -> None:
    response = client.post(
        "/v1/classify", content=raw, headers={"content-type": "application/json"}
    )
    error = _error(response, 422)
    assert error["field"] in {"body", "text"}


def test_json_nested_deeper_than_the_parser_allows_gets_422(
    model_dir: Path, tmp_path: Path
) -> None:
    with running_client(make_settings(model_dir, tmp_path / "cache")) as client:
        response = client.post(
            "/v1/classify",
            content=b'{"text": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
            headers={"content-type": "application/json"},
        )
    error = _error(response, 422)
    assert (error["field"], error["message"]) == ("body", "the body is not valid UTF-8 JSON")


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_bodies_not_sent_as_json_get_415(client: TestClient, content_type: str | None) -> None:
    headers = {"content-type": content_type} if content_type else {}
    response = client.post(
        "/v1/classify", content=json.dumps({"text": TEXT}).encode(), headers=headers
    )
    assert _error(response, 415)["code"] == "unsupported_media_type"


def test_json_with_a_charset_or_a_json_suffix_is_accepted(client: TestClient) -> None:
    for content_type in ("application/json; charset=utf-8", "application/vnd.api+json"):
        response = client.post(
            "/v1/classify",
            content=json.dumps({"text": TEXT}).encode(),
            headers={"content-type": content_type},
        )
        assert response.status_code == 200, (content_type, response.text)


def test_a_declared_oversized_body_gets_413(client: TestClient) -> None:
    body = json.dumps({"text": "ع" * 3000}).encode()
    response = client.post(
        "/v1/classify", content=body, headers={"content-type": "application/json"}
    )
    error = _error(response, 413)
    assert error["code"] == "payload_too_large"
    assert "2000" in error["message"]


def test_a_streamed_oversized_body_gets_413(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"texts": ['
        for _ in range(100):
            yield b'"' + "ع".encode() * 20 + b'",'
        yield b'"x"]}'

    # A generator body is sent chunked, without a Content-Length.
    response = client.post(
        "/v1/classify", content=chunks(), headers={"content-type": "application/json"}
    )
    _error(response, 413)


def test_413_is_counted_in_the_metrics(client: TestClient) -> None:
    client.post("/v1/classify", content=b"x" * 5000, headers={"content-type": "application/json"})
    assert 'route="unrouted",status="413"' in client.get("/metrics").text


class _Recorder:
    """A tiny ASGI app that records whether it was reached and what body it read."""

    def __init__(self) -> None:
        self.reached = False
        self.body = b""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.reached = True
        while True:
            message = await receive()
            self.body += message.get("body", b"")
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


def _call(app: BodyLimitMiddleware, chunks: list[bytes], headers: list[tuple[bytes, bytes]]) -> int:
    messages: list[Message] = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        return messages.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    scope: Scope = {"type": "http", "method": "POST", "path": "/", "headers": headers}
    asyncio.run(app(scope, receive, send))
    status = sent[0]["status"]
    assert isinstance(status, int)
    return status


def test_the_body_limit_counts_bytes_even_when_the_length_header_lies() -> None:
    inner = _Recorder()
    limiter = BodyLimitMiddleware(inner, max_bytes=10)
    assert _call(limiter, [b"12345", b"67890", b"1"], [(b"content-length", b"5")]) == 413
    assert not inner.reached


def test_the_body_limit_refuses_a_declared_length_without_reading() -> None:
    inner = _Recorder()
    limiter = BodyLimitMiddleware(inner, max_bytes=10)
    # receive() would fail if called: there are no messages to give.
    assert _call(limiter, [], [(b"content-length", b"11")]) == 413
    assert not inner.reached


def test_the_body_limit_passes_bodies_at_the_limit_unchanged() -> None:
    inner = _Recorder()
    limiter = BodyLimitMiddleware(inner, max_bytes=10)
    assert _call(limiter, [b"12345", b"67890"], [(b"content-length", b"10")]) == 200
    assert inner.body == b"1234567890"


@pytest.fixture
def no_model_client(tmp_path: Path) -> Iterator[TestClient]:
    with running_client(make_settings(tmp_path / "missing-model", tmp_path / "cache")) as c:
        yield c


def test_without_a_model_the_service_is_alive_but_answers_503(
    no_model_client: TestClient,
) -> None:
    client = no_model_client
    assert client.get("/healthz").status_code == 200
    error = _error(client.get("/readyz"), 503)
    assert error["code"] == "model_unavailable"
    assert "no model manifest" in error["message"]
    for response in (
        client.post("/v1/classify", json={"text": TEXT}),
        client.get("/v1/labels"),
        client.get("/v1/model"),
    ):
        assert _error(response, 503)["code"] == "model_unavailable"
    assert "narratives_model_loaded 0.0" in client.get("/metrics").text
    assert client.get("/").status_code == 200


def test_require_model_refuses_to_start_without_one(tmp_path: Path) -> None:
    from classifier import ModelLoadError

    settings = make_settings(tmp_path / "missing", tmp_path / "cache", require_model=True)
    with pytest.raises(ModelLoadError), running_client(settings):
        pass


def test_unsupported_model_uri_schemes_are_a_load_error(tmp_path: Path) -> None:
    settings = make_settings("s3://bucket/model", tmp_path / "cache")
    with running_client(settings) as client:
        assert "cannot load a model from" in _error(client.get("/readyz"), 503)["message"]


def test_unknown_routes_and_methods_use_the_error_shape(client: TestClient) -> None:
    assert _error(client.get("/v2/classify"), 404)["code"] == "not_found"
    assert _error(client.get("/v1/classify"), 405)["code"] == "method_not_allowed"
    assert _error(client.put("/v1/model/reload"), 405)["code"] == "method_not_allowed"


@pytest.mark.parametrize(
    "body",
    [
        {"text": "😀😀😀"},
        {"text": "<script>alert(1)</script>"},
        {"text": "\u200f\u202e\u2066"},  # bidi controls only: not white space, nothing left
        {"text": "\x00\x01\x02 نص"},
        {"text": "..."},
        {"text": "https://example.org/a @user x@y.org"},
        {"text": "ع", "explain": True, "segment": True},
        {"texts": ["ا"] * 4, "explain": True},
        {"text": "\u200f\u202e", "explain": True, "segment": True},
    ],
)
def test_odd_but_valid_text_never_gives_a_server_error(client: TestClient, body: Any) -> None:
    response = client.post("/v1/classify", json=body)
    assert response.status_code == 200, response.text
    assert len(response.json()["results"]) == len(body.get("texts", [None]))
