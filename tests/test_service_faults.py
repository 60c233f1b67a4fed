"""Faults at start-up and at reload: bad artifacts, and a tracking store that cannot be reached.

- A missing, truncated or tampered artifact at start-up, with a model required, ends the process
  with exit code 3 and one readable line on stderr (no traceback).
- The same faults at reload keep the old model serving (see also test_service_reload.py).
- An unreachable store at start-up falls back to the last good local copy of the champion, after
  checking it against its recorded checksum, and /readyz and /v1/model say so; a reload while
  the store is unreachable keeps the model serving, and one after it is back ends the fallback.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from classifier import ModelLoadError, NarrativeClassifier
from classifier.artifact import MANIFEST_FILE, PIPELINE_FILE, sha256_file
from service import server
from service.loader import LAST_GOOD_FILE, load
from service.settings import Settings
from tests.conftest import ROOT, SAN
from tests.service_fixtures import (
    ADMIN_KEY,
    bearer,
    classify,
    free_port,
    make_settings,
    running_client,
    save_test_model,
    write_marker_pickle,
)
from tests.service_registry import NAME, Registry

TEXT = "فرضت وزارة الخزانة عقوبات جديدة على شركات شحن"
CHAMPION = f"models:/{NAME}@champion"
# With the service's own MLflow HTTP settings (2 retries, 5 s timeout), a refused connection
# fails in about 2 s; MLflow's defaults would retry for minutes.
FALLBACK_BUDGET_S = 10.0
START_UP_TIMEOUT_S = 120.0


def _damage(folder: Path, how: str) -> None:
    pipeline = folder / PIPELINE_FILE
    if how == "missing folder":
        shutil.rmtree(folder)
    elif how == "missing pipeline":
        pipeline.unlink()
    elif how == "truncated pipeline":
        pipeline.write_bytes(pipeline.read_bytes()[:100])
    elif how == "tampered pipeline":
        data = bytearray(pipeline.read_bytes())
        data[len(data) // 2] ^= 0xFF
        pipeline.write_bytes(bytes(data))
    elif how == "tampered manifest":
        (folder / MANIFEST_FILE).write_text("{not json", encoding="utf-8")
    else:
        raise AssertionError(how)


DAMAGES = {
    "missing folder": "no model manifest",
    "missing pipeline": "no pipeline file",
    "truncated pipeline": "checksum mismatch",
    "tampered pipeline": "checksum mismatch",
    "tampered manifest": "is not valid JSON",
}


@dataclass(frozen=True)
class Exited:
    """A service process that was expected to refuse to start."""

    code: int | None
    stdout: str
    stderr: str
    seconds: float


def _service_env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NARRATIVES_", "MLFLOW_"))}
    env.update({f"NARRATIVES_{k.upper()}": v for k, v in values.items()})
    return env


def _launch(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", "from service.server import run; run()"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


# What the brief of the process test covers; every damage is also tried at reload below.
START_UP_DAMAGES = ["missing folder", "truncated pipeline", "tampered pipeline"]


@pytest.fixture(scope="module")
def refused_starts(
    tiny_model: NarrativeClassifier, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Exited]:
    """Start one service process per damage, all at once (each spends seconds importing)."""
    root = tmp_path_factory.mktemp("start-up")
    procs: dict[str, tuple[subprocess.Popen[str], float]] = {}
    for i, how in enumerate(START_UP_DAMAGES):
        folder = save_test_model(tiny_model, root / f"model-{i}")
        _damage(folder, how)
        env = _service_env(
            model_uri=str(folder),
            require_model="true",
            port=str(free_port()),
            cache_dir=str(root / "cache"),
        )
        procs[how] = (_launch(env), time.monotonic())
    exited: dict[str, Exited] = {}
    for how, (proc, started) in procs.items():
        try:
            out, err = proc.communicate(timeout=START_UP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        exited[how] = Exited(proc.returncode, out, err, time.monotonic() - started)
    return exited


@pytest.mark.slow
@pytest.mark.parametrize("how", START_UP_DAMAGES)
def test_a_bad_artifact_at_start_up_exits_3_with_one_readable_line(
    refused_starts: dict[str, Exited], how: str
) -> None:
    result = refused_starts[how]
    assert result.code == 3, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    assert "Uvicorn running" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines, "nothing on stderr"
    reason = lines[-1]
    assert reason.startswith("error: cannot start: "), reason
    assert DAMAGES[how] in reason
    assert reason.endswith("(NARRATIVES_REQUIRE_MODEL is set)")
    assert sum("cannot start" in line for line in lines) == 1


@pytest.mark.parametrize("how", list(DAMAGES))
def test_the_same_faults_at_reload_keep_the_old_model_serving(
    tiny_model: NarrativeClassifier, tmp_path: Path, how: str
) -> None:
    folder = save_test_model(tiny_model, tmp_path / "model", run_id="good")
    settings = make_settings(folder, tmp_path / "cache", admin_keys=[ADMIN_KEY])
    with running_client(settings) as client:
        _damage(folder, how)
        response = client.post("/v1/model/reload", headers=bearer(ADMIN_KEY))
        assert response.status_code == 503
        error = response.json()["error"]
        assert error["code"] == "reload_failed"
        assert "still serving model version local" in error["message"]
        assert DAMAGES[how] in error["message"]
        assert classify(client, TEXT)["model"]["run_id"] == "good"
        assert client.get("/readyz").json()["degraded"] is False


# The registry side: one store with a champion, loaded once so that the cache holds its copy.


@dataclass(frozen=True)
class Store:
    """A registry whose champion has been served once (so the cache has a last good copy)."""

    db: Path
    cache: Path
    version: str
    run_id: str
    sha256: str


@pytest.fixture(scope="module")
def store(
    tiny_model: NarrativeClassifier, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Store]:
    root = tmp_path_factory.mktemp("store")
    with pytest.MonkeyPatch.context() as monkeypatch:
        registry = Registry.create(root, monkeypatch)
        version, run_id = registry.register(save_test_model(tiny_model, root / "m" / "classifier"))
        model = load(make_settings(CHAMPION, root / "cache", tracking_uri=registry.tracking_uri))
        yield Store(root / "mlflow.db", root / "cache", version, run_id, model.manifest.sha256)


def _cache_copy(store: Store, tmp_path: Path) -> Path:
    # Each test gets its own copy of the cache: some of them damage it.
    return Path(shutil.copytree(store.cache, tmp_path / "cache"))


def _degraded_settings(tracking_uri: str, cache: Path, **overrides: Any) -> Settings:
    return make_settings(
        CHAMPION, cache, tracking_uri=tracking_uri, require_model=True, **overrides
    )


def _closed_port_uri() -> str:
    return f"http://127.0.0.1:{free_port()}"


def _assert_serving_the_fallback(client: TestClient, store: Store, cause: str) -> None:
    ready = client.get("/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert body["model"] == {"name": NAME, "version": store.version, "run_id": store.run_id}
    assert (body["source"], body["degraded"]) == ("cache", True)
    assert cause in body["reason"]
    assert "last good local copy" in body["reason"]
    info = client.get("/v1/model").json()
    assert (info["source"], info["degraded"], info["reason"]) == ("cache", True, body["reason"])
    assert info["sha256"] == store.sha256
    assert "narratives_model_degraded 1.0" in client.get("/metrics").text
    result = classify(client, TEXT)
    assert result["model"]["version"] == store.version
    assert result["results"][0]["primary"] == SAN


@pytest.mark.slow
@pytest.mark.parametrize("unreachable", ["closed port", "store file gone", "store file corrupt"])
def test_an_unreachable_store_at_start_up_falls_back_to_the_last_good_copy(
    store: Store, tmp_path: Path, unreachable: str
) -> None:
    cache = _cache_copy(store, tmp_path)
    gone = tmp_path / "gone" / "mlflow.db"
    if unreachable == "closed port":
        uri, cause = _closed_port_uri(), "Connection refused"
    elif unreachable == "store file gone":
        uri, cause = f"sqlite:///{gone}", "does not exist"
    else:
        corrupt = tmp_path / "corrupt.db"
        corrupt.write_bytes(b"this is not a database" * 100)
        uri, cause = f"sqlite:///{corrupt}", "file is not a database"
    started = time.monotonic()
    with running_client(_degraded_settings(uri, cache)) as client:
        took = time.monotonic() - started
        _assert_serving_the_fallback(client, store, cause)
    assert took < FALLBACK_BUDGET_S, f"the fallback took {took:.1f}s"
    # A store that is gone is not re-created empty by the service.
    assert not gone.parent.exists()
    print(f"\nfallback ({unreachable}): ready in {took:.2f}s")


@pytest.mark.slow
def test_a_hung_store_delays_the_fallback_only_by_the_http_timeouts(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store that accepts connections and never answers: bounded by timeout x attempts."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "1")  # an operator's value wins
    cache = _cache_copy(store, tmp_path)
    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen(16)  # the kernel completes connections; nothing ever reads or answers
        uri = f"http://127.0.0.1:{hung.getsockname()[1]}"
        started = time.monotonic()
        with running_client(_degraded_settings(uri, cache)) as client:
            took = time.monotonic() - started
            _assert_serving_the_fallback(client, store, "Read timed out")
    # 3 attempts of 1 s plus a 2 s back-off; with the service's 5 s default it is about 17 s.
    assert took < 3 * 1 + 2 + 3, f"the fallback took {took:.1f}s"
    print(f"\nfallback (hung store, 1 s timeout): ready in {took:.2f}s")


def test_run_falls_back_before_serving_when_the_store_is_down(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`run()` with a model required: the fallback is loaded once, before uvicorn starts, and
    the app it hands to uvicorn serves it (uvicorn itself is replaced by a TestClient here)."""
    served: list[FastAPI] = []
    monkeypatch.setattr(server.uvicorn, "run", lambda app, **_: served.append(app))
    loads: list[Settings] = []
    real_load = server.load
    monkeypatch.setattr(server, "load", lambda s: loads.append(s) or real_load(s))
    settings = _degraded_settings(_closed_port_uri(), _cache_copy(store, tmp_path))
    started = time.monotonic()
    server.run(settings)
    took = time.monotonic() - started
    [app] = served
    with TestClient(app) as client:
        _assert_serving_the_fallback(client, store, "Connection refused")
    assert len(loads) == 1, "the preloaded model was loaded again"
    assert took < FALLBACK_BUDGET_S
    print(f"\nrun() with the tracking server down: fallback loaded in {took:.2f}s")


def test_without_a_last_good_copy_an_unreachable_store_is_a_clear_error(tmp_path: Path) -> None:
    settings = _degraded_settings(f"sqlite:///{tmp_path / 'gone.db'}", tmp_path / "empty-cache")
    with pytest.raises(ModelLoadError) as caught:
        load(settings)
    message = str(caught.value)
    assert "is unreachable" in message
    assert "no local copy can stand in" in message
    assert LAST_GOOD_FILE in message


def _rewrite_pointer(cache: Path, **changes: Any) -> None:
    pointer = cache / NAME / LAST_GOOD_FILE
    pointer.write_text(json.dumps({**json.loads(pointer.read_text()), **changes}))


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        ("pipeline and manifest replaced", "does not match the checksum recorded"),
        ("copy deleted", "cannot read"),
        ("pointer of another alias", "the last good copy is not of"),
        ("pointer escapes the cache", "names an invalid folder"),
        ("pointer not JSON", "is unreadable"),
        ("pointer checksum invalid", "records an invalid checksum"),
    ],
)
def test_the_fallback_refuses_a_copy_that_does_not_verify(
    store: Store, tmp_path: Path, damage: str, problem: str
) -> None:
    cache = _cache_copy(store, tmp_path)
    copy = cache / NAME / store.version
    marker = tmp_path / "pickle-was-executed"
    if damage == "pipeline and manifest replaced":
        # Pipeline and manifest agree with each other (load_model alone would unpickle it);
        # only the checksum recorded in last_good.json tells the copy was replaced.
        write_marker_pickle(copy / PIPELINE_FILE, marker)
        manifest = json.loads((copy / MANIFEST_FILE).read_text())
        manifest["sha256"] = sha256_file(copy / PIPELINE_FILE)
        (copy / MANIFEST_FILE).write_text(json.dumps(manifest))
    elif damage == "copy deleted":
        shutil.rmtree(copy)
    elif damage == "pointer of another alias":
        _rewrite_pointer(cache, alias="challenger")
    elif damage == "pointer escapes the cache":
        _rewrite_pointer(cache, folder="..")
    elif damage == "pointer not JSON":
        (cache / NAME / LAST_GOOD_FILE).write_text("{")
    else:
        _rewrite_pointer(cache, sha256="not-a-checksum")
    # A store file that is gone: unreachable at once (no HTTP retries to wait for).
    with pytest.raises(ModelLoadError) as caught:
        load(_degraded_settings(f"sqlite:///{tmp_path / 'gone.db'}", cache))
    assert problem in str(caught.value)
    assert "is unreachable" in str(caught.value)
    assert not marker.exists()


@pytest.mark.slow
def test_reloads_while_the_store_is_away_keep_the_model_and_recover_when_it_is_back(
    store: Store, tmp_path: Path
) -> None:
    db = tmp_path / "store" / "mlflow.db"
    db.parent.mkdir()
    shutil.copy(store.db, db)  # the artifacts stay where the store says they are
    settings = _degraded_settings(
        f"sqlite:///{db}", _cache_copy(store, tmp_path), admin_keys=[ADMIN_KEY]
    )
    reload_headers = bearer(ADMIN_KEY)
    with running_client(settings) as client:
        assert client.get("/readyz").json()["source"] == "registry"

        # The store goes away: a reload can only find the fallback, so it keeps the model.
        away = db.rename(db.with_suffix(".away"))
        failed = client.post("/v1/model/reload", headers=reload_headers)
        assert failed.status_code == 503
        message = failed.json()["error"]["message"]
        assert f"still serving {NAME} version {store.version}" in message
        assert "does not exist" in message
        ready = client.get("/readyz").json()
        assert (ready["source"], ready["degraded"]) == ("registry", False)
        assert classify(client, TEXT)["model"]["version"] == store.version

    # Started while it is away: degraded; once it is back, a reload ends the fallback.
    with running_client(settings) as client:
        _assert_serving_the_fallback(client, store, "does not exist")
        away.rename(db)
        response = client.post("/v1/model/reload", headers=reload_headers)
        assert response.status_code == 200, response.text
        assert response.json()["previous"]["degraded"] is True
        assert response.json()["current"]["degraded"] is False
        ready = client.get("/readyz").json()
        assert (ready["source"], ready["degraded"], ready["reason"]) == ("registry", False, None)
        assert "narratives_model_degraded 0.0" in client.get("/metrics").text
