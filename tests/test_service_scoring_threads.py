"""Requests too large for the event loop are scored in at most `scoring_threads` threads at once."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from classifier import NarrativeClassifier
from service import api
from service.app import create_app
from tests.service_fixtures import make_settings, save_test_model, serving

TEXT = "فرضت وزارة الخزانة عقوبات جديدة على شركات شحن"
REQUESTS = 6


class ConcurrencyProbe:
    """Wraps the scoring call: counts how many run at once, and holds each a little."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.lock = threading.Lock()
        self.running = 0
        self.most = 0

    def __call__(self, *args: Any) -> Any:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            time.sleep(0.2)  # long enough for queued requests to overlap if they could
            return self.inner(*args)
        finally:
            with self.lock:
                self.running -= 1


@pytest.mark.parametrize("threads", [1, 3])
def test_large_requests_share_the_scoring_threads(
    threads: int, tiny_model: NarrativeClassifier, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = save_test_model(tiny_model, tmp_path / "model")
    settings = make_settings(folder, tmp_path / "cache", scoring_threads=threads)
    probe = ConcurrencyProbe(api._classify)
    monkeypatch.setattr(api, "_classify", probe)
    # Longer than INLINE_MAX_CHARS, so each request goes to a scoring thread.
    long_text = " ".join([TEXT] * (api.INLINE_MAX_CHARS // len(TEXT) + 1))

    def post(base: str) -> int:
        with httpx.Client(base_url=base, timeout=60) as client:
            return client.post("/v1/classify", json={"text": long_text}).status_code

    with serving(create_app(settings)) as base, ThreadPoolExecutor(REQUESTS) as pool:
        statuses = list(pool.map(post, [base] * REQUESTS))
    assert statuses == [200] * REQUESTS
    assert probe.most == threads


def test_scoring_threads_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="scoring_threads"):
        make_settings(tmp_path, tmp_path / "cache", scoring_threads=0)
