"""A catalogue of hostile and odd input for POST /v1/classify, each with its defined answer.

The service runs with its default limits (256 texts, 20,000 characters a text, 8 MiB a body).
Every answer is JSON: 200 with one result per text, or an error body naming the field at fault.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi.testclient import TestClient

from classifier import NarrativeClassifier
from tests.conftest import SAN
from tests.service_fixtures import make_settings, running_client, save_test_model

MAX_TEXTS, MAX_CHARS, MAX_BODY = 256, 20_000, 8 * 1024 * 1024
SANCTIONS = "فرضت وزارة الخزانة عقوبات جديدة على شركات شحن"
TEN_MB = 10 * 1000 * 1000
NOT_ARABIC = ["mostly_non_arabic"]


@dataclass(frozen=True)
class Answer:
    """The defined answer: a status, and for errors the code and field, for 200 the results."""

    status: int
    code: str | None = None
    field: str | None = None
    results: int = 1
    labels: list[str] | None = None
    warnings: list[str] | None = None


@dataclass(frozen=True)
class Hostile:
    """One request body (raw bytes, so anything can be sent) and how it is declared."""

    content: bytes | Iterator[bytes]
    content_type: str | None = "application/json"
    extra: dict[str, Any] = field(default_factory=dict)


def body(value: Any) -> Hostile:
    return Hostile(json.dumps(value).encode())


def raw(content: bytes, content_type: str | None = "application/json") -> Hostile:
    return Hostile(content, content_type)


def chunked(size: int) -> Hostile:
    """A body sent in 64 KiB chunks with no Content-Length (a client can lie or not say)."""

    def chunks() -> Iterator[bytes]:
        sent = 0
        while sent < size:
            yield b"a" * 65536
            sent += 65536

    return Hostile(chunks())


def invalid(field_name: str, code: str = "invalid_input") -> Answer:
    return Answer(422, code=code, field=field_name)


OK_SANCTIONS = Answer(200, labels=[SAN], warnings=[])
OK_NOTHING_NOT_ARABIC = Answer(200, labels=[], warnings=NOT_ARABIC)

# (name, request, defined answer). The report's table is this list.
CATALOGUE: list[tuple[str, Hostile, Answer]] = [
    # Empty and white space.
    ("empty text", body({"text": ""}), invalid("text")),
    ("white space only", body({"text": " \n\t\u3000\u00a0"}), invalid("text")),
    ("white space among texts", body({"texts": [SANCTIONS, "  "]}), invalid("texts[1]")),
    ("empty list of texts", body({"texts": []}), invalid("texts")),
    ("empty body", raw(b""), invalid("body")),
    # Size: refused before anything parses the body.
    ("10 MB of valid JSON", body({"text": "ع" * (TEN_MB // 2)}), Answer(413, "payload_too_large")),
    ("10 MB that is not JSON", raw(b"x" * TEN_MB), Answer(413, "payload_too_large")),
    ("10 MB streamed, no length", chunked(TEN_MB), Answer(413, "payload_too_large")),
    # Structure.
    ("JSON nested 100,000 deep", raw(b"[" * 100_000 + b"]" * 100_000), invalid("body")),
    (
        "text nested 600 deep",
        raw(b'{"text": ' + b"[" * 600 + b"]" * 600 + b"}"),
        invalid("text"),
    ),
    ("body is a list", body([SANCTIONS]), invalid("body")),
    ("body is a string", body(SANCTIONS), invalid("body")),
    ("truncated JSON", raw(b'{"text": "abc'), invalid("body")),
    (
        "duplicate keys: the last counts",
        raw(b'{"text": "", "text": "' + b"a" * 3 + b'"}'),
        Answer(200, labels=[], warnings=NOT_ARABIC),
    ),
    # Wrong types and values.
    ("text is a number", body({"text": 12}), invalid("text")),
    ("text is null", body({"text": None}), invalid("text")),
    ("texts is a string", body({"texts": SANCTIONS}), invalid("texts")),
    ("a number among texts", body({"texts": [SANCTIONS, 7]}), invalid("texts[1]")),
    ("both text and texts", body({"text": SANCTIONS, "texts": [SANCTIONS]}), invalid("texts")),
    ("neither text nor texts", body({"explain": True}), invalid("text")),
    ("explain is a string", body({"text": SANCTIONS, "explain": "yes"}), invalid("explain")),
    ("k is a string", body({"text": SANCTIONS, "k": "5"}), invalid("k")),
    ("k is 0", body({"text": SANCTIONS, "k": 0}), invalid("k")),
    ("k is 10^30", body({"text": SANCTIONS, "k": 10**30}), invalid("k")),
    ("k is NaN", raw(b'{"text": "abc", "k": NaN}'), invalid("k")),
    ("k has 5,000 digits", raw(b'{"text": "abc", "k": ' + b"9" * 5000 + b"}"), invalid("body")),
    ("unknown field", body({"text": SANCTIONS, "model_uri": "/etc"}), invalid("model_uri")),
    # Encoding.
    ("invalid UTF-8", raw(b'{"text": "\xff\xfe\xc3("}'), invalid("body")),
    ("lone surrogate escape", raw(b'{"text": "\\ud800 abc"}'), invalid("text")),
    (
        "byte-order mark before the JSON",
        raw(b"\xef\xbb\xbf" + json.dumps({"text": SANCTIONS}).encode()),
        OK_SANCTIONS,
    ),
    (
        "sent as text/plain",
        Hostile(json.dumps({"text": SANCTIONS}).encode(), "text/plain"),
        Answer(415, "unsupported_media_type"),
    ),
    (
        "no content type",
        Hostile(json.dumps({"text": SANCTIONS}).encode(), None),
        Answer(415, "unsupported_media_type"),
    ),
    # Odd characters: answered, with a warning when there is (almost) no Arabic to go on.
    ("control characters", body({"text": "\x00\x01\x07\x1b " + SANCTIONS}), OK_SANCTIONS),
    ("bidi controls only", body({"text": "\u200f\u202e\u2066\u2069"}), OK_NOTHING_NOT_ARABIC),
    ("bidi-wrapped Arabic", body({"text": "\u202b" + SANCTIONS + "\u202c\u200f"}), OK_SANCTIONS),
    (
        "zero-width characters inside words",
        body({"text": "\u200bفرضت\u200c وزارة الخزانة عقوبات\u200d جديدة على شركات شحن"}),
        OK_SANCTIONS,
    ),
    ("emoji only", body({"text": "😀🔥🇸🇦👍🏽"}), OK_NOTHING_NOT_ARABIC),
    ("HTML script", body({"text": "<script>alert(1)</script>"}), OK_NOTHING_NOT_ARABIC),
    ("Arabic inside HTML tags", body({"text": f"<p dir='rtl'>{SANCTIONS}</p>"}), OK_SANCTIONS),
    (
        "Latin only",
        body({"text": "The Treasury imposed new sanctions on shipping firms"}),
        OK_NOTHING_NOT_ARABIC,
    ),
    ("mixed, mostly Arabic", body({"text": SANCTIONS + " (OFAC, SDN list)"}), OK_SANCTIONS),
    (
        "mixed, mostly Latin",
        body({"text": "Sanctions were announced by the US Treasury today: عقوبات"}),
        Answer(200, warnings=NOT_ARABIC),
    ),
    # Counts and lengths at and over the limits.
    ("a thousand tiny texts", body({"texts": ["ع"] * 1000}), invalid("texts")),
    ("exactly max_texts texts", body({"texts": ["ع"] * MAX_TEXTS}), Answer(200, results=MAX_TEXTS)),
    ("one text exactly max_chars long", body({"text": "ع" * MAX_CHARS}), Answer(200, warnings=[])),
    ("one text a character over", body({"text": "ع" * (MAX_CHARS + 1)}), invalid("text")),
    (
        "one of texts a character over",
        body({"texts": [SANCTIONS, "ع" * (MAX_CHARS + 1)]}),
        invalid("texts[1]"),
    ),
]


@pytest.fixture(scope="module")
def client(
    tiny_model: NarrativeClassifier, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    root = tmp_path_factory.mktemp("hostile")
    folder = save_test_model(tiny_model, root / "model")
    settings = make_settings(folder, root / "cache")
    assert (settings.max_texts, settings.max_chars, settings.max_body_bytes) == (
        MAX_TEXTS,
        MAX_CHARS,
        MAX_BODY,
    )
    with running_client(settings) as c:
        yield c


@pytest.mark.parametrize(
    ("request_", "answer"),
    [pytest.param(request_, answer, id=name) for name, request_, answer in CATALOGUE],
)
def test_hostile_input_gets_its_defined_answer(
    client: TestClient, request_: Hostile, answer: Answer
) -> None:
    headers = {"content-type": request_.content_type} if request_.content_type else {}
    response = client.post("/v1/classify", content=request_.content, headers=headers)
    assert response.status_code == answer.status, response.text[:500]
    assert response.headers["content-type"] == "application/json"
    data = response.json()
    if answer.status != 200:
        assert set(data) == {"error"}
        assert data["error"]["code"] == answer.code
        assert data["error"].get("field") == answer.field
        return
    assert len(data["results"]) == answer.results
    first = data["results"][0]
    if answer.labels is not None:
        assert first["labels"] == answer.labels
    if answer.warnings is not None:
        assert first["warnings"] == answer.warnings


def test_bodies_over_the_limit_are_refused_before_routing(client: TestClient) -> None:
    """413 comes from the middleware: no route (so no parser, no model) saw the request."""
    before = client.get("/metrics").text
    assert 'route="/v1/classify",status="413"' not in before
    response = client.post(
        "/v1/classify", content=b"{" * TEN_MB, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    metrics = client.get("/metrics").text
    assert 'route="unrouted",status="413"' in metrics
    assert 'route="/v1/classify",status="413"' not in metrics


def test_bidi_and_zero_width_characters_do_not_change_the_scores(client: TestClient) -> None:
    def scores(text: str) -> Any:
        response = client.post("/v1/classify", json={"text": text})
        assert response.status_code == 200
        return response.json()["results"][0]["scores"]

    assert scores("\u202b" + SANCTIONS + "\u202c\u200f") == scores(SANCTIONS)


def test_hostile_text_is_never_echoed_as_markup(client: TestClient) -> None:
    script = "<script>alert(1)</script> فرضت واشنطن عقوبات"
    response = client.post("/v1/classify", json={"text": script, "explain": True, "segment": True})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    # Passages quote the text as JSON strings; evidence terms are normalised words.
    for terms in response.json()["results"][0]["evidence"].values():
        for term in terms:
            assert "<" not in term["term"]
