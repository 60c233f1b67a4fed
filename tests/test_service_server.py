"""`service.server.run` starts uvicorn and answers on loopback; settings travel to workers."""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from classifier import NarrativeClassifier
from service.server import settings_env
from service.settings import Settings
from tests.conftest import ROOT
from tests.service_fixtures import save_test_model


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_for_line(proc: subprocess.Popen[str], needle: str, timeout: float) -> list[str]:
    """Read the process's output until a line contains ``needle``; return all lines read."""
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    seen: list[str] = []
    while True:
        try:
            line = lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no {needle!r} within {timeout}s:\n{''.join(seen)}") from None
        if line is None:
            raise AssertionError(f"the server exited before {needle!r}:\n{''.join(seen)}")
        seen.append(line)
        if needle in line:
            return seen


@pytest.mark.slow
def test_run_serves_the_api_on_loopback(tiny_model: NarrativeClassifier, tmp_path: Path) -> None:
    folder = save_test_model(tiny_model, tmp_path / "model", run_id="served")
    port = free_port()
    env = {
        **os.environ,
        "NARRATIVES_MODEL_URI": str(folder),
        "NARRATIVES_PORT": str(port),
        "NARRATIVES_HOST": "127.0.0.1",
        "NARRATIVES_CACHE_DIR": str(tmp_path / "cache"),
        "NARRATIVES_API_KEYS": "",
        "NARRATIVES_ADMIN_KEYS": "",
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", "from service.server import run; run()"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        # uvicorn prints this once the lifespan (the model load) is done and it listens.
        _wait_for_line(proc, f"Uvicorn running on http://127.0.0.1:{port}", timeout=120)
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=30) as client:
            assert client.get("/readyz").json()["model"]["run_id"] == "served"
            response = client.post("/v1/classify", json={"text": "فرضت واشنطن عقوبات جديدة"})
            assert response.status_code == 200
            assert response.json()["results"][0]["primary"] == "sanctions"
            assert client.get("/").status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert code == 0


def test_settings_survive_the_trip_through_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    original = Settings(
        model_uri="models:/x/3",
        tracking_uri="sqlite:////tmp/store.db",
        port=9123,
        workers=3,
        max_texts=7,
        api_keys=[SecretStr("k1"), SecretStr("k2")],
        admin_keys=[SecretStr("adm")],
        cors_origins=["http://a.local"],
        cache_dir=tmp_path / "cache",
        require_model=True,
    )
    env = settings_env(original)
    for name in list(os.environ):
        if name.startswith("NARRATIVES_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert Settings() == original
