"""The HTTP API through TestClient with the lifespan: every endpoint's successful answers."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from classifier import NarrativeClassifier, split_passages
from service.page import CONTENT_SECURITY_POLICY
from tests.conftest import DIP, EI, SAN, SEED_ARTICLE
from tests.service_fixtures import (
    DEFINITIONS,
    classify,
    make_settings,
    running_client,
    save_test_model,
)

SANCTIONS_TEXT = "فرضت وزارة الخزانة عقوبات جديدة على شركات شحن متهمة بنقل النفط"
ELECTION_TEXT = "رصدت الاستخبارات حملة تضليل وحسابات وهمية تستهدف الناخبين قبل الانتخابات"


@pytest.fixture
def client(model_dir: Path, tmp_path: Path) -> Iterator[TestClient]:
    with running_client(make_settings(model_dir, tmp_path / "cache")) as c:
        yield c


def test_classify_one_text(client: TestClient) -> None:
    body = classify(client, SANCTIONS_TEXT)
    assert body["model"] == {"name": "tiny", "version": "local", "run_id": "run-1"}
    [result] = body["results"]
    assert result["labels"] == [SAN]
    assert result["primary"] == SAN
    assert set(result["scores"]) == {EI, DIP, SAN}
    assert all(0.0 <= s <= 1.0 for s in result["scores"].values())
    assert result["warnings"] == []
    assert result["evidence"] is None
    assert result["passages"] is None


def test_classify_many_texts_keeps_their_order(client: TestClient) -> None:
    texts = [SANCTIONS_TEXT, ELECTION_TEXT, "فاز النادي الأهلي على منافسه بهدفين"]
    results = classify(client, texts)["results"]
    assert [r["primary"] for r in results] == [SAN, EI, None]
    assert results[2]["labels"] == []


def test_classify_matches_the_classifier_itself(
    client: TestClient, tiny_model: NarrativeClassifier
) -> None:
    [result] = classify(client, [ELECTION_TEXT])["results"]
    [expected] = tiny_model.predict([ELECTION_TEXT])
    assert result["labels"] == list(expected.labels)
    assert result["scores"] == pytest.approx(expected.scores)


def test_latin_text_is_answered_with_a_warning(client: TestClient) -> None:
    [result] = classify(client, "Sanctions were announced today")["results"]
    assert result["warnings"] == ["mostly_non_arabic"]


def test_explain_gives_terms_whose_spans_point_into_the_text(client: TestClient) -> None:
    [result] = classify(client, SANCTIONS_TEXT, explain=True, k=3)["results"]
    evidence = result["evidence"]
    assert set(evidence) == {EI, DIP, SAN}
    assert 1 <= len(evidence[SAN]) <= 3
    assert "عقوبات" in {item["term"] for item in evidence[SAN]}
    weights = [item["weight"] for item in evidence[SAN]]
    assert weights == sorted(weights, reverse=True)
    for item in evidence[SAN]:
        assert item["spans"], item
        for start, end in item["spans"]:
            assert 0 <= start < end <= len(SANCTIONS_TEXT)
    found = {SANCTIONS_TEXT[s:e] for item in evidence[SAN] for s, e in item["spans"]}
    assert "عقوبات" in found


def test_segment_returns_one_passage_per_paragraph_of_the_seed_article(
    client: TestClient,
) -> None:
    article = SEED_ARTICLE.read_text(encoding="utf-8")
    [result] = classify(client, article, segment=True)["results"]
    passages = result["passages"]
    assert len(passages) == len(split_passages(article)) == 18
    for passage in passages:
        assert article[passage["start"] : passage["end"]] == passage["text"]
        assert set(passage["scores"]) == {EI, DIP, SAN}
    # The document aggregate: every passage label, each label's best passage score.
    assert set(result["labels"]) == {label for p in passages for label in p["labels"]}
    for label, score in result["scores"].items():
        assert score == pytest.approx(max(p["scores"][label] for p in passages))
    assert EI in result["labels"]
    assert result["evidence"] is None


def test_segment_and_explain_together(client: TestClient) -> None:
    text = f"{SANCTIONS_TEXT}\n\n{ELECTION_TEXT}"
    [result] = classify(client, text, segment=True, explain=True)["results"]
    assert [p["primary"] for p in result["passages"]] == [SAN, EI]
    for items in result["evidence"].values():
        for item in items:
            for start, end in item["spans"]:
                assert 0 <= start < end <= len(text)


def test_labels_lists_definitions_and_thresholds(client: TestClient) -> None:
    response = client.get("/v1/labels")
    assert response.status_code == 200
    body = response.json()
    assert body["model"]["run_id"] == "run-1"
    assert [item["name"] for item in body["labels"]] == [DIP, EI, SAN]
    for item in body["labels"]:
        assert item["definition"] == DEFINITIONS[item["name"]]
        assert 0.0 < item["threshold"] < 1.0


def test_model_describes_the_serving_model(client: TestClient, model_dir: Path) -> None:
    response = client.get("/v1/model")
    assert response.status_code == 200
    info = response.json()
    assert info["name"] == "tiny"
    assert info["version"] == "local"
    assert info["run_id"] == "run-1"
    assert info["source_uri"] == str(model_dir)
    assert info["trained_at"] == "2025-01-02T03:04:05+00:00"
    assert info["data_digest"] == "sha256:feedface"
    # A NaN metric cannot be JSON: it is left out instead of breaking the response.
    assert info["metrics"] == {"micro_f1": 0.81, "macro_f1": 0.78}
    assert info["labels"] == [DIP, EI, SAN]
    assert len(info["sha256"]) == 64
    assert info["loaded_at"]


def test_a_model_name_in_the_manifest_wins_over_the_folder_name(
    tiny_model: NarrativeClassifier, tmp_path: Path
) -> None:
    folder = save_test_model(tiny_model, tmp_path / "folder", name="narrative-classifier")
    with running_client(make_settings(folder, tmp_path / "cache")) as client:
        assert client.get("/v1/model").json()["name"] == "narrative-classifier"


def test_a_file_uri_is_a_local_model(model_dir: Path, tmp_path: Path) -> None:
    with running_client(make_settings(model_dir.as_uri(), tmp_path / "cache")) as client:
        assert client.get("/readyz").status_code == 200


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ready",
        "model": {"name": "tiny", "version": "local", "run_id": "run-1"},
        "source": "local",
        "degraded": False,
        "reason": None,
    }


def _metric(text: str, prefix: str) -> float:
    for line in text.splitlines():
        if line.startswith(prefix):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no sample {prefix!r} in:\n{text}")


def test_metrics_count_requests_latency_labels_and_model(client: TestClient) -> None:
    classify(client, [SANCTIONS_TEXT, SANCTIONS_TEXT, ELECTION_TEXT])
    client.post("/v1/classify", json={"texts": [" "]})
    client.get("/no/such/page")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    ok = 'method="POST",route="/v1/classify",status="200"'
    assert _metric(text, f"narratives_http_requests_total{{{ok}}}") == 1
    bad = 'method="POST",route="/v1/classify",status="422"'
    assert _metric(text, f"narratives_http_requests_total{{{bad}}}") == 1
    assert _metric(text, f"narratives_http_request_duration_seconds_count{{{ok}}}") == 1
    # Unknown paths are pooled, so clients cannot blow up the number of series.
    assert 'route="unrouted",status="404"' in text
    assert "/no/such/page" not in text
    assert _metric(text, f'narratives_predictions_total{{label="{SAN}"}}') == 2
    assert _metric(text, f'narratives_predictions_total{{label="{EI}"}}') == 1
    assert _metric(text, "narratives_texts_classified_total") == 3
    model = 'narratives_model_info{name="tiny",run_id="run-1",version="local"}'
    assert _metric(text, model) == 1
    assert _metric(text, "narratives_model_loaded") == 1


def test_each_app_has_its_own_metrics(model_dir: Path, tmp_path: Path) -> None:
    settings = make_settings(model_dir, tmp_path / "cache")
    with running_client(settings) as first, running_client(settings) as second:
        classify(first, SANCTIONS_TEXT)
        assert "narratives_texts_classified_total 1.0" in first.get("/metrics").text
        assert "narratives_texts_classified_total 0.0" in second.get("/metrics").text


def _schema_objects(schema: dict[str, Any]) -> dict[str, Any]:
    components: dict[str, Any] = schema["components"]["schemas"]
    return components


def test_openapi_describes_every_model_and_field(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    objects = _schema_objects(schema)
    for name in ("ClassifyRequest", "ClassifyResponse", "ClassifyResult", "ErrorResponse"):
        assert name in objects
    for name, obj in objects.items():
        if name in {"HTTPValidationError", "ValidationError"}:
            continue  # FastAPI's own, unused: our 422s have the ErrorResponse shape
        assert obj.get("description"), f"{name} has no description"
        for field, spec in obj.get("properties", {}).items():
            assert spec.get("description"), f"{name}.{field} has no description"
    classify_op = schema["paths"]["/v1/classify"]["post"]
    for status in ("413", "415", "422", "503"):
        assert status in classify_op["responses"]
    assert client.get("/docs").status_code == 200


def test_the_page_is_served_with_its_assets_and_a_strict_policy(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    html = page.text
    assert 'dir="rtl"' in html and 'lang="ar"' in html
    assert "http://" not in html and "https://" not in html
    for asset in ("static/app.js", "static/app.css"):
        assert asset in html
        response = client.get(f"/{asset}")
        assert response.status_code == 200
        assert "http://" not in response.text and "https://" not in response.text
    # User and model text goes in through textContent only: no HTML parsing of it anywhere.
    script = client.get("/static/app.js").text
    assert not re.search(r"\.(inner|outer)HTML\s*=|insertAdjacentHTML|document\.write", script)
