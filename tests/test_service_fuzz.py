"""Schemathesis against the app's own OpenAPI document: every operation, generated valid and
invalid requests, no 5xx, and every response (errors included) as the document describes it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import jsonschema_rs
import pytest
import schemathesis
from hypothesis import settings

from classifier import ModelLoadError, NarrativeClassifier
from service.app import create_app
from service.loader import LoadedModel, load
from service.schemas import NOT_BLANK_PATTERN
from service.settings import Settings
from tests.service_fixtures import (
    ADMIN_KEY,
    API_KEY,
    make_settings,
    running_client,
    save_test_model,
)

MAX_TEXTS, MAX_CHARS = 8, 400
# The model folder is made by a fixture, after collection; the app loads it on first use.
_MODEL_FOLDER: list[Path] = []


def _fixture_model(settings: Settings) -> LoadedModel:
    if not _MODEL_FOLDER:
        raise ModelLoadError("the test model has not been saved yet")
    return load(settings.model_copy(update={"model_uri": str(_MODEL_FOLDER[0])}))


# Keys on, so the fuzzer's auth probes (no key, a wrong key) must be refused; small limits, so
# generated requests reach them.
APP = create_app(
    make_settings(
        "fixture-model",
        Path("unused-cache"),
        api_keys=[API_KEY],
        admin_keys=[ADMIN_KEY],
        max_texts=MAX_TEXTS,
        max_chars=MAX_CHARS,
    ),
    loader=_fixture_model,
)
# The admin key opens every route, the reload included, under either scheme.
CONFIG = schemathesis.Config.from_dict(
    {
        "auth": {
            "openapi": {
                "HTTPBearer": {"bearer": ADMIN_KEY},
                "APIKeyHeader": {"api_key": ADMIN_KEY},
            }
        }
    }
)
# Loaded from the document rather than through `from_asgi`, which would start the app (and load
# the model) at collection time; requests still go to APP in process, through its lifespan.
schema = schemathesis.openapi.from_dict(APP.openapi(), config=CONFIG)
schema.app = APP


@pytest.fixture(scope="module", autouse=True)
def _model(
    tiny_model: NarrativeClassifier, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    _MODEL_FOLDER.append(save_test_model(tiny_model, tmp_path_factory.mktemp("fuzz") / "model"))
    yield
    _MODEL_FOLDER.clear()


@pytest.mark.slow
@schema.parametrize()
@settings(max_examples=40, deadline=None)
def test_every_operation_answers_as_documented(case: schemathesis.Case) -> None:
    # All of schemathesis' checks: no 5xx (so the model was loaded: a 503 would fail), status
    # codes, content types, headers and bodies as documented (errors included), invalid data
    # refused, valid data accepted, missing or wrong keys refused, other methods answered 405.
    case.call_and_validate()


def test_the_document_served_is_the_one_fuzzed_and_states_the_limits(tmp_path: Path) -> None:
    # The document does not depend on the model: a folder that does not exist will do.
    limits = make_settings(
        tmp_path / "no-model", tmp_path / "cache", max_texts=MAX_TEXTS, max_chars=MAX_CHARS
    )
    with running_client(limits) as client:
        served = client.get("/openapi.json").json()
    assert served == APP.openapi()
    request = served["components"]["schemas"]["ClassifyRequest"]
    assert request["properties"]["text"]["maxLength"] == MAX_CHARS
    assert request["properties"]["texts"]["maxItems"] == MAX_TEXTS
    assert request["properties"]["texts"]["items"]["maxLength"] == MAX_CHARS
    assert request["oneOf"] == [{"required": ["text"]}, {"required": ["texts"]}]
    assert request["additionalProperties"] is False
    # Every operation documents its errors with the one error body.
    for path, item in served["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")):
                    ref = response["content"]["application/json"]["schema"]["$ref"]
                    assert ref.endswith("/ErrorResponse"), (method, path, status)


def test_the_not_blank_pattern_means_what_the_server_checks() -> None:
    """The documented pattern and the server's strip() agree on every code point, both under
    Python's regexes (the fuzzer's generator) and an ECMA-style engine (JSON Schema tools)."""
    python = re.compile(NOT_BLANK_PATTERN)
    rust = jsonschema_rs.validator_for({"type": "string", "pattern": NOT_BLANK_PATTERN})
    for code in range(0x110000):
        if 0xD800 <= code <= 0xDFFF:
            continue  # lone surrogates are refused before this check
        char = chr(code)
        blank = not char.strip()
        assert (python.search(char) is None) == blank, hex(code)
        assert rust.is_valid(char) != blank, hex(code)
