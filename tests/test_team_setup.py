"""The team set-up end to end, on loopback: PostgreSQL as MLflow's backend store, `mlflow server`
with a shared artifact location, the CLI and two service replicas pointed at it through
MLFLOW_TRACKING_URI; promoting a new version and reloading a replica switches what it serves.

Skipped only when PostgreSQL's binaries are absent (Debian: `apt-get install postgresql`, which
.ci/run does). As root, the database runs as the `postgres` user in a temporary folder.
"""

from __future__ import annotations

import glob
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from typer.testing import CliRunner

from tests.conftest import ROOT, TINY_CORPUS, mlflow_state_kept
from training.cli import app

pytestmark = pytest.mark.slow

ADMIN_KEY = "team-admin-key-4d2f"
NAME = "narrative-classifier"
TEXT = "فرضت واشنطن عقوبات جديدة على شركات شحن"
START_TIMEOUT = 120.0


@pytest.fixture(autouse=True)
def _mlflow_globals() -> Iterator[None]:
    with mlflow_state_kept():
        yield


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _pg_bin() -> Path | None:
    """The folder of initdb and postgres: on PATH, else Debian's versioned folder (newest)."""
    found = shutil.which("initdb")
    if found and shutil.which("postgres"):
        return Path(found).resolve().parent
    debian = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    return Path(debian[-1]).parent if debian else None


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text("utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _wait(check: Any, proc: subprocess.Popen[bytes], log: Path, what: str) -> None:
    """Poll ``check()`` until it holds, the process dies, or the time is up (bounded)."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{what} exited with {proc.returncode}:\n{_tail(log)}")
        try:
            if check():
                return
        except (OSError, httpx.HTTPError, psycopg.OperationalError):
            pass
        time.sleep(0.5)
    raise AssertionError(f"{what} not ready within {START_TIMEOUT:.0f}s:\n{_tail(log)}")


def _stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, group: bool = False) -> None:
    """Stop a process this test started (and, for a session leader, its own children)."""
    if proc.poll() is not None:
        return
    if group:
        os.killpg(proc.pid, sig)
    else:
        proc.send_signal(sig)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        if group:
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
        proc.wait(timeout=30)


@contextmanager
def _postgres(log: Path) -> Iterator[int]:
    """A throw-away PostgreSQL server on a free loopback port; yields the port."""
    bin_dir = _pg_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL binaries (initdb, postgres) not found: apt-get install postgresql")
    owner: dict[str, Any] = {}
    if os.geteuid() == 0:
        # PostgreSQL refuses to run as root: its files and process belong to `postgres`.
        try:
            account = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run PostgreSQL as")
        owner = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
    # Under /tmp rather than pytest's folder, which the postgres user may not traverse.
    root = Path(tempfile.mkdtemp(prefix="narratives-pg-"))
    try:
        if owner:
            os.chown(root, owner["user"], owner["group"])
        data = root / "data"
        with log.open("ab") as out:
            subprocess.run(
                [str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                 "--no-locale", "--encoding=UTF8", "--no-sync"],
                cwd=root, stdout=out, stderr=subprocess.STDOUT, timeout=120, check=True, **owner,
            )  # fmt: skip
            port = _free_port()
            proc = subprocess.Popen(
                [str(bin_dir / "postgres"), "-D", str(data), "-p", str(port), "-k", str(root),
                 "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"],
                cwd=root, stdout=out, stderr=subprocess.STDOUT, **owner,
            )  # fmt: skip
        try:

            def accepts() -> bool:
                psycopg.connect(
                    host="127.0.0.1", port=port, user="postgres", dbname="postgres",
                    connect_timeout=2,
                ).close()  # fmt: skip
                return True

            _wait(accepts, proc, log, "PostgreSQL")
            # autocommit: CREATE DATABASE cannot run inside a transaction.
            with psycopg.connect(
                host="127.0.0.1", port=port, user="postgres", dbname="postgres", autocommit=True
            ) as conn:
                conn.execute("CREATE DATABASE mlflow")
            yield port
        finally:
            _stop(proc, signal.SIGINT)  # SIGINT: PostgreSQL's fast shutdown
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def _mlflow_server(store: str, artifacts: Path, log: Path) -> Iterator[str]:
    """`mlflow server` on a free loopback port, artifacts proxied to a shared folder."""
    port = _free_port()
    with log.open("ab") as out:
        # Its own session, so that stopping it also stops the web workers it starts.
        proc = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", store,
             "--artifacts-destination", str(artifacts), "--serve-artifacts",
             "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(lambda: httpx.get(f"{url}/health", timeout=5).status_code == 200, proc, log, "MLflow")
        yield url
    finally:
        _stop(proc, group=True)


@contextmanager
def _replica(tracking_uri: str, cache: Path, log: Path) -> Iterator[tuple[httpx.Client, Any]]:
    """Start a service process serving the champion from the tracking server.

    Yields a client of it and a function that waits until it is ready, so that several
    replicas can start at once.
    """
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("NARRATIVES_")}
    env.update(
        {
            "MLFLOW_TRACKING_URI": tracking_uri,
            "NARRATIVES_HOST": "127.0.0.1",
            "NARRATIVES_PORT": str(port),
            "NARRATIVES_CACHE_DIR": str(cache),
            "NARRATIVES_ADMIN_KEYS": ADMIN_KEY,
            "NARRATIVES_REQUIRE_MODEL": "true",
        }
    )
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", "from service.server import run; run()"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:

            def ready() -> None:
                _wait(lambda: client.get("/readyz").status_code == 200, proc, log, "replica")

            yield client, ready
    finally:
        _stop(proc, signal.SIGINT)


def _served_version(client: httpx.Client) -> str:
    info = client.get("/v1/model")
    assert info.status_code == 200, info.text
    classified = client.post("/v1/classify", json={"text": TEXT})
    assert classified.status_code == 200, classified.text
    assert classified.json()["model"]["version"] == info.json()["version"]
    version: str = info.json()["version"]
    return version


def _cli(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def test_team_setup_postgres_mlflow_server_and_two_replicas(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "tiny.jsonl"
    rows = [{"id": f"t{i}", "text": t, "labels": ls} for i, (t, ls) in enumerate(TINY_CORPUS)]
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    shared = tmp_path / "shared-artifacts"
    shared.mkdir()
    logs = tmp_path / "logs"
    logs.mkdir()

    with ExitStack() as stack:
        pg_port = stack.enter_context(_postgres(logs / "postgres.log"))
        store = f"postgresql://postgres@127.0.0.1:{pg_port}/mlflow"
        server = stack.enter_context(_mlflow_server(store, shared, logs / "mlflow.log"))
        # Everyone finds the server through the environment, as a team member's shell would.
        monkeypatch.setenv("MLFLOW_TRACKING_URI", server)
        monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

        first = _cli("train", "--data", str(data), "--experiment", "team")
        assert f"registered {NAME} v1: promoted to champion" in first

        a, a_ready = stack.enter_context(
            _replica(server, tmp_path / "cache-a", logs / "replica-a.log")
        )
        b, b_ready = stack.enter_context(
            _replica(server, tmp_path / "cache-b", logs / "replica-b.log")
        )
        a_ready()
        b_ready()
        assert _served_version(a) == _served_version(b) == "1"

        second = _cli("train", "--data", str(data), "--experiment", "team", "--c", "1")
        assert f"registered {NAME} v2" in second
        assert f"{NAME} v2 is now the champion" in _cli("promote", "2")

        admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
        reloaded = a.post("/v1/model/reload", headers=admin)
        assert reloaded.status_code == 200, reloaded.text
        assert reloaded.json()["previous"]["version"] == "1"
        assert reloaded.json()["current"]["version"] == "2"
        assert _served_version(a) == "2"
        assert _served_version(b) == "1"  # a replica switches on its own reload only
        assert b.post("/v1/model/reload", headers=admin).status_code == 200
        assert _served_version(b) == "2"

        # The registry lives in PostgreSQL, the model files in the shared artifact location.
        with psycopg.connect(
            host="127.0.0.1", port=pg_port, user="postgres", dbname="mlflow"
        ) as conn:
            query = "SELECT version FROM model_versions WHERE name = %s"
            assert sorted(int(v) for (v,) in conn.execute(query, (NAME,)).fetchall()) == [1, 2]
            query = "SELECT version FROM registered_model_aliases WHERE name = %s"
            assert conn.execute(query, (NAME,)).fetchall() == [(2,)]
        assert len(list(shared.rglob("pipeline.joblib"))) == 2
