"""How training cost grows with data, and how fast the service is ready.

Usage:
    uv run python benchmarks/scaling.py [--sizes 1000 4000 16000 64000] [--jobs 2]

Training sets are resampled (with replacement) from seeds/corpus.jsonl to each size; each size is
fitted in a fresh process (cross-validated thresholds included, as `narratives train` does) and its
wall time and peak resident memory are reported. Then the time from `narratives serve` to a ready
/readyz is measured with a registered model already in the store.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "seeds" / "corpus.jsonl"

sys.path.insert(0, str(ROOT))
from benchmarks.servers import free_port, start, stop, wait_ready  # noqa: E402

FIT = """
import json, sys, time
sys.path.insert(0, {root!r})
from classifier import ModelConfig, NarrativeClassifier
rows = [json.loads(x) for x in open({path!r}, encoding="utf-8")]
started = time.perf_counter()
NarrativeClassifier(ModelConfig()).fit([r["text"] for r in rows], [r["labels"] for r in rows],
                                       n_jobs={jobs})
print(time.perf_counter() - started)
"""


def fit_once(path: Path, jobs: int) -> tuple[float, float]:
    """Fit in a child process; return (seconds, peak RSS in MiB of that child and its workers)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    out = subprocess.run(
        [sys.executable, "-c", FIT.format(root=str(ROOT), path=str(path), jobs=jobs)],
        check=True,
        capture_output=True,
        text=True,
    )
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # ru_maxrss of children is the largest child so far (KiB on Linux); sizes grow, so it is ours
    return float(out.stdout.strip().splitlines()[-1]), max(peak, before) / 1024


def ready_seconds(workdir: Path, env: dict[str, str]) -> float:
    """Seconds from starting `narratives serve` to a ready /readyz."""
    port = free_port()
    started = time.perf_counter()
    proc = start(
        [sys.executable, "-m", "training.cli", "serve", "--port", str(port)],
        workdir,
        env,
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}/readyz", proc)
        return time.perf_counter() - started
    finally:
        stop(proc)


def serve_ready_seconds(workdir: Path, restarts: int = 3) -> dict[str, float]:
    """Seconds from `narratives serve` to a ready /readyz, champion registered, in three cases.

    ``after train``: the first start after `narratives train` promoted the champion on this
    machine (train leaves a verified local copy). ``restart``: best of a few restarts.
    ``empty cache``: the local copies deleted, as on a machine that has never held the model
    (it imports MLflow, checks the store and downloads the model before serving).
    """
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "MLFLOW_TRACKING_URI": f"sqlite:///{workdir / 'mlflow.db'}",
        "NARRATIVES_CACHE_DIR": str(workdir / "cache"),
    }
    subprocess.run(
        [sys.executable, "-m", "training.cli", "train", "--force"],
        cwd=workdir,
        env=env,
        check=True,
        capture_output=True,
    )
    after_train = ready_seconds(workdir, env)
    restart = min(ready_seconds(workdir, env) for _ in range(restarts))
    shutil.rmtree(workdir / "cache")
    empty_cache = ready_seconds(workdir, env)
    return {"after train": after_train, "restart": restart, "empty cache": empty_cache}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 4000, 16000, 64000])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--no-serve", action="store_true")
    args = parser.parse_args(argv)
    rows = SEEDS.read_text(encoding="utf-8").splitlines()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores,"
        f" python {platform.python_version()};"
        f" resampled from {len(rows)} seed passages; n_jobs={args.jobs}"
    )
    work = Path(tempfile.mkdtemp(prefix="narratives-scaling-"))
    try:
        rng = random.Random(0)
        print(f"\n{'passages':>9} {'train s':>8} {'peak MiB':>9} {'s per 1k':>9}")
        previous = None
        for size in args.sizes:
            path = work / f"train-{size}.jsonl"
            sample = [json.loads(rng.choice(rows)) for _ in range(size)]
            path.write_text(
                "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in sample), encoding="utf-8"
            )
            seconds, peak = fit_once(path, args.jobs)
            growth = (
                f"  x{seconds / previous[1]:.1f} time for x{size / previous[0]:.0f} data"
                if previous
                else ""
            )
            print(f"{size:9d} {seconds:8.1f} {peak:9.0f} {1000 * seconds / size:9.2f}{growth}")
            previous = (size, seconds)
        if not args.no_serve:
            ready = serve_ready_seconds(work)
            print(
                "\nnarratives serve -> /readyz with a registered champion:"
                f" first start after narratives train {ready['after train']:.2f}s,"
                f" restart {ready['restart']:.2f}s (best of 3),"
                f" empty cache {ready['empty cache']:.2f}s (a machine that never held the model)"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
