"""Smoke test: the Dask scoring benchmark runs end to end on tiny input (a local cluster)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, TINY_CORPUS


@pytest.mark.slow
def test_dask_scoring_benchmark(tmp_path: Path) -> None:
    tiny = tmp_path / "tiny.jsonl"
    rows = [{"id": f"t{i}", "text": t, "labels": ls} for i, (t, ls) in enumerate(TINY_CORPUS)]
    tiny.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    out = subprocess.run(
        [sys.executable, "benchmarks/dask_scoring.py", "--train", str(tiny), "--passages",
         str(tiny), "--rows", "400", "--workers", "2", "--partition-size", "100"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    assert "ratio dask/single" in out.stdout and "dask, 2 worker(s)" in out.stdout
    assert "labels identical: True" in out.stdout
