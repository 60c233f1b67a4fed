"""Fast start: a restart serves the verified local copy of the champion at once, then checks the
registry while serving and swaps in the champion if it has moved."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from classifier import NarrativeClassifier
from service.loader import load, load_cached
from service.settings import Settings
from tests.conftest import ROOT
from tests.service_fixtures import classify, make_settings, running_client, save_test_model
from tests.service_registry import NAME, Registry

TEXT = "فرضت واشنطن عقوبات جديدة على شركات شحن"
CHAMPION = f"models:/{NAME}@champion"


def _wait_for(client: TestClient, done: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """Poll /v1/model until ``done`` holds (the registry check runs in the background)."""
    deadline = time.monotonic() + 60
    while True:
        info: dict[str, Any] = client.get("/v1/model").json()
        if done(info) or time.monotonic() > deadline:
            return info
        time.sleep(0.05)


def _champion_served_once(
    model: NarrativeClassifier, root: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Registry, Settings, str, str]:
    """A store whose champion a previous start served (so a local copy is recorded)."""
    registry = Registry.create(root, monkeypatch)
    version, run_id = registry.register(save_test_model(model, root / "v1" / "classifier"))
    settings = make_settings(
        CHAMPION, root / "cache", tracking_uri=registry.tracking_uri, fast_start=True
    )
    load(settings)
    return registry, settings, version, run_id


@pytest.mark.slow
def test_only_a_verified_copy_of_the_same_store_and_alias_starts_fast(
    tiny_model: NarrativeClassifier, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = Registry.create(tmp_path, monkeypatch)
    version, _ = registry.register(save_test_model(tiny_model, tmp_path / "v1" / "classifier"))
    cache = tmp_path / "cache"
    settings = make_settings(CHAMPION, cache, tracking_uri=registry.tracking_uri, fast_start=True)
    # Nothing served yet: there is no copy to start from.
    assert load_cached(settings) is None
    load(settings)
    cached = load_cached(settings)
    assert cached is not None
    assert (cached.version, cached.source, cached.degraded) == (version, "cache", False)
    # Another store, a pinned version or another alias: no fast start.
    other_store = settings.model_copy(update={"tracking_uri": f"sqlite:///{tmp_path / 'x.db'}"})
    pinned = settings.model_copy(update={"model_uri": f"models:/{NAME}/{version}"})
    other_alias = settings.model_copy(update={"model_uri": f"models:/{NAME}@challenger"})
    for unusable in (other_store, pinned, other_alias):
        assert load_cached(unusable) is None
    # A copy that does not verify is not served.
    pipeline = cache / NAME / version / "pipeline.joblib"
    pipeline.write_bytes(pipeline.read_bytes()[:-10])
    assert load_cached(settings) is None


@pytest.mark.slow
def test_the_copy_is_confirmed_or_replaced_by_the_registry_check(
    tiny_model: NarrativeClassifier, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry, settings, v1, run1 = _champion_served_once(tiny_model, tmp_path, monkeypatch)

    # Still the champion: served from the copy, then confirmed (source becomes "registry").
    with running_client(settings) as api:
        info = _wait_for(api, lambda i: i["source"] == "registry")
        assert (info["version"], info["run_id"], info["degraded"]) == (v1, run1, False)

    # The champion moved while the service was down: the copy serves until the check swaps in
    # the new champion.
    v2, run2 = registry.register(save_test_model(tiny_model, tmp_path / "v2" / "classifier", "r2"))
    with running_client(settings) as api:
        info = _wait_for(api, lambda i: i["version"] == v2)
        assert (info["version"], info["run_id"], info["source"]) == (v2, run2, "registry")
        assert classify(api, TEXT)["model"]["version"] == v2


@pytest.mark.slow
def test_an_unreachable_store_leaves_the_copy_serving_degraded(
    tiny_model: NarrativeClassifier, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, settings, v1, _ = _champion_served_once(tiny_model, tmp_path, monkeypatch)
    shutil.move(tmp_path / "mlflow.db", tmp_path / "away.db")
    with running_client(settings) as api:
        info = _wait_for(api, lambda i: i["degraded"])
        assert (info["version"], info["source"], info["degraded"]) == (v1, "cache", True)
        assert "unreachable" in info["reason"]
        assert classify(api, TEXT)["model"]["version"] == v1
        assert api.get("/readyz").json()["degraded"] is True


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve_until_ready(workdir: Path, env: dict[str, str]) -> tuple[str, dict[str, Any]]:
    """Run `narratives serve`, wait for /readyz, then for the registry-confirmed model."""
    port = _free_port()
    log = workdir / f"serve-{port}.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "training.cli", "serve", "--port", str(port)],
            cwd=workdir,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 120
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            while True:
                assert proc.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                try:
                    if client.get("/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
            while (info := client.get("/v1/model").json())["source"] != "registry":
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
    return log.read_text(), info


@pytest.mark.slow
def test_narratives_serve_restarts_from_the_local_copy(
    tiny_model: NarrativeClassifier, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = Registry.create(tmp_path, monkeypatch)
    version, _ = registry.register(save_test_model(tiny_model, tmp_path / "v1" / "classifier"))
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "MLFLOW_TRACKING_URI": registry.tracking_uri,
        "NARRATIVES_CACHE_DIR": str(tmp_path / "cache"),
    }
    first, info = _serve_until_ready(tmp_path, env)
    assert f"champion: {NAME} v{version}" in first
    assert info["version"] == version
    second, info = _serve_until_ready(tmp_path, env)
    assert f"champion: {NAME} v{version}, the local copy recorded last" in second
    assert info["version"] == version
