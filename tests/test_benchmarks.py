"""Smoke tests: every benchmark runs end to end on tiny input, so the scripts keep working.

The real measurements are not part of the test run (see benchmarks/RESULTS.md).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import TINY_CORPUS

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _run(*args: str, timeout: int = 300) -> str:
    out = subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bench") / "tiny.jsonl"
    rows = [{"id": f"t{i}", "text": t, "labels": ls} for i, (t, ls) in enumerate(TINY_CORPUS)]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return path


def test_quality(tiny: Path, tmp_path: Path) -> None:
    result = tmp_path / "q.json"
    out = _run(
        "benchmarks/quality.py", "--train", str(tiny), "--dev", str(tiny), "--json", str(result)
    )
    assert "fastText" in out and "keyword rules" in out and "points" in out
    names = [r["name"] for r in json.loads(result.read_text())]
    assert len(names) == 3


def test_throughput(tiny: Path) -> None:
    out = _run(
        "benchmarks/throughput.py", "--train", str(tiny), "--passages", str(tiny), "--repeats", "1"
    )
    assert "cached scikit-learn pipeline identical: True" in out
    assert "labels identical: True" in out
    assert "ratio ours/fastText" in out


def test_scaling() -> None:
    out = _run("benchmarks/scaling.py", "--sizes", "300", "600", "--jobs", "1")
    assert "x2 data" in out
    assert "first start after narratives train" in out and "empty cache" in out


@pytest.mark.parametrize("extra", [(), ("--null-model",)], ids=["model", "null-model"])
def test_service(tiny: Path, extra: tuple[str, ...]) -> None:
    out = _run(
        "benchmarks/service.py",
        "--data",
        str(tiny),
        "--requests",
        "16",
        "--concurrency",
        "2",
        "--rounds",
        "2",
        *extra,
        timeout=600,
    )
    assert "same scores from both servers: True" in out
    assert "median of 2 alternating rounds" in out
    assert "ratio ours/mlflow" in out
    assert out.count(" 0\n") >= 4  # no failed requests in any of the four rows
    if extra:
        assert "'sanctions': 0.5" in out  # the constant, so the null model was in effect
