"""Load with reloads: sustained concurrent requests to a real uvicorn server on 127.0.0.1 while the
champion alias flips between two registered versions and the model is reloaded several times.

The two versions answer differently (the second assigns every label), so each response's labels
show which model produced it, and that must be the version the response names.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from classifier import NarrativeClassifier
from service.app import create_app
from tests.conftest import DIP, EI, SAN
from tests.service_fixtures import (
    ADMIN_KEY,
    all_labels_variant,
    bearer,
    make_settings,
    save_test_model,
    serving,
)
from tests.service_registry import NAME, Registry

TEXT = "فرضت وزارة الخزانة عقوبات جديدة على شركات شحن"
THREADS = 8
RELOADS = 6
MAX_REQUESTS_PER_THREAD = 600
# Requests that must complete between two reloads, so that each version carries real traffic.
REQUESTS_BETWEEN_RELOADS = 80
DEADLINE_S = 90.0


@dataclass(frozen=True)
class Outcome:
    """One request as a client saw it."""

    started: float
    ended: float
    status: int | None
    version: str | None
    labels: tuple[str, ...]
    error: str | None = None


@dataclass(frozen=True)
class Reload:
    """One reload: when it was asked for, when it answered, and the version it swapped in."""

    started: float
    ended: float
    version: str


class Traffic:
    """Worker threads posting classify requests until told to stop (or a bound is reached)."""

    def __init__(self, base_url: str, deadline: float) -> None:
        self.base_url = base_url
        self.deadline = deadline
        self.stop = threading.Event()
        self.done = threading.Condition()
        self.outcomes: list[Outcome] = []
        self.threads = [threading.Thread(target=self._work) for _ in range(THREADS)]

    def _work(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=30) as client:
            for _ in range(MAX_REQUESTS_PER_THREAD):
                if self.stop.is_set() or time.monotonic() > self.deadline:
                    return
                self._record(self._one(client))

    def _one(self, client: httpx.Client) -> Outcome:
        started = time.monotonic()
        try:
            response = client.post("/v1/classify", json={"texts": [TEXT]})
        except httpx.HTTPError as exc:
            return Outcome(started, time.monotonic(), None, None, (), repr(exc))
        ended = time.monotonic()
        if response.status_code != 200:
            return Outcome(started, ended, response.status_code, None, (), response.text)
        data = response.json()
        labels = tuple(data["results"][0]["labels"])
        return Outcome(started, ended, 200, data["model"]["version"], labels)

    def _record(self, outcome: Outcome) -> None:
        with self.done:
            self.outcomes.append(outcome)
            self.done.notify_all()

    def wait_for(self, count: int) -> None:
        """Block until ``count`` requests have completed in all (bounded by the deadline)."""
        with self.done:
            reached = self.done.wait_for(
                lambda: len(self.outcomes) >= count or time.monotonic() > self.deadline,
                timeout=max(0.0, self.deadline - time.monotonic()),
            )
        assert reached and len(self.outcomes) >= count, "the traffic stalled"

    def __enter__(self) -> Traffic:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(60)
            assert not thread.is_alive(), "a worker did not stop"


@pytest.mark.slow
def test_no_request_fails_and_each_names_its_model_while_reloading(
    tiny_model: NarrativeClassifier, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = Registry.create(tmp_path, monkeypatch)
    v1, _ = registry.register(save_test_model(tiny_model, tmp_path / "v1" / "classifier"))
    every_label = all_labels_variant(tiny_model)
    v2, _ = registry.register(
        save_test_model(every_label, tmp_path / "v2" / "classifier", run_id="all"), champion=False
    )
    # What each version answers for TEXT: the versions are told apart by their answers.
    expected = {v1: {SAN}, v2: {EI, DIP, SAN}}
    settings = make_settings(
        f"models:/{NAME}@champion",
        tmp_path / "cache",
        tracking_uri=registry.tracking_uri,
        admin_keys=[ADMIN_KEY],
    )
    reloads: list[Reload] = []
    began = time.monotonic()
    with (
        serving(create_app(settings)) as base,
        httpx.Client(base_url=base, timeout=60) as admin,
        Traffic(base, deadline=began + DEADLINE_S) as traffic,
    ):
        traffic.wait_for(REQUESTS_BETWEEN_RELOADS)
        for i in range(RELOADS):
            target = v2 if i % 2 == 0 else v1
            registry.set_champion(target)
            started = time.monotonic()
            response = admin.post("/v1/model/reload", headers=bearer(ADMIN_KEY))
            ended = time.monotonic()
            assert response.status_code == 200, response.text
            assert response.json()["current"]["version"] == target
            reloads.append(Reload(started, ended, target))
            traffic.wait_for(len(traffic.outcomes) + REQUESTS_BETWEEN_RELOADS)
    elapsed = time.monotonic() - began
    outcomes = traffic.outcomes

    failed = [o for o in outcomes if o.status != 200]
    assert not failed, failed[:5]
    versions = [o.version for o in outcomes]
    assert set(versions) == {v1, v2}
    for outcome in outcomes:
        assert outcome.version is not None
        assert set(outcome.labels) == expected[outcome.version], outcome
    # A request sent after a reload answered, and done before the next one was asked for, can
    # only have been served by the version that reload swapped in.
    windows = [(r.ended, nxt.started, r.version) for r, nxt in itertools.pairwise(reloads)]
    windows.append((reloads[-1].ended, float("inf"), reloads[-1].version))
    checked = 0
    for start, end, version in windows:
        inside = [o for o in outcomes if o.started > start and o.ended < end]
        assert inside, "no request ran between two reloads"
        assert {o.version for o in inside} == {version}
        checked += len(inside)

    latencies = sorted(o.ended - o.started for o in outcomes)
    print(
        f"\nload with reloads: {len(outcomes)} requests from {THREADS} threads in {elapsed:.1f}s"
        f" ({len(outcomes) / elapsed:.0f}/s), {len(reloads)} reloads"
        f" (slowest {max(r.ended - r.started for r in reloads):.2f}s), 0 failed;"
        f" v{v1}: {versions.count(v1)}, v{v2}: {versions.count(v2)};"
        f" {checked} checked against the reload timeline;"
        f" latency p50 {latencies[len(latencies) // 2] * 1000:.0f} ms,"
        f" p99 {latencies[int(len(latencies) * 0.99)] * 1000:.0f} ms"
    )
