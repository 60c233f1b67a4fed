"""The same registered model served by `narratives serve` and by `mlflow models serve`.

Usage:
    uv run python benchmarks/service.py [--requests N] [--concurrency C] [--rounds R]
        [--null-model] [--workdir DIR]

Both servers run on loopback with one worker each; one load generator process
(benchmarks/loadgen.py) drives each in turn with the same real passages at the same concurrency:
single-passage requests, then 64-passage batches. The servers take turns over several rounds (the
order alternating), and each figure is the median of its rounds, so that drift on a shared
machine does not favour whichever server ran first. Prints requests/s, passages/s, p50/p95/p99
and the ratio ours/MLflow.

With ``--null-model`` both servers score with a constant instead of the model
(benchmarks/null_model/sitecustomize.py): what is left is what each server spends around the
model, the most any change to request handling could gain.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT.parent / "shared" / "data" / "dev.jsonl"
SEEDS = ROOT / "seeds" / "corpus.jsonl"
NULL_MODEL = ROOT / "benchmarks" / "null_model"
BATCH = 64

sys.path.insert(0, str(ROOT))
from benchmarks.servers import free_port, start, stop, wait_ready  # noqa: E402


def load(
    url: str,
    bodies: list[dict[str, object]],
    per_request: int,
    args: argparse.Namespace,
    workdir: Path,
) -> dict[str, float]:
    path = workdir / f"bodies-{abs(hash(url)) % 10_000}-{per_request}.json"
    path.write_text(json.dumps(bodies, ensure_ascii=False), encoding="utf-8")
    requests = args.requests if per_request == 1 else max(args.requests // 8, 20)
    # warm-up: the first requests pay for lazy imports and caches on both servers alike
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "loadgen.py"),
            url,
            str(path),
            "--concurrency",
            "2",
            "--requests",
            "10",
        ],
        check=True,
        capture_output=True,
    )
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "loadgen.py"),
            url,
            str(path),
            "--concurrency",
            str(args.concurrency),
            "--requests",
            str(requests),
            "--passages-per-request",
            str(per_request),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def post_json(url: str, body: object) -> object:
    request = urllib.request.Request(
        url,
        data=json.dumps(body, ensure_ascii=False).encode("utf-8"),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def probe(ours_url: str, mlflow_url: str, text: str) -> tuple[dict[str, float], dict[str, float]]:
    """The scores each server gives one passage (a check that both serve the same thing)."""
    ours = post_json(ours_url, {"text": text})
    theirs = post_json(mlflow_url, {"dataframe_records": [{"text": text}]})
    assert isinstance(ours, dict) and isinstance(theirs, dict)
    ours_scores = {k: float(v) for k, v in ours["results"][0]["scores"].items()}
    row = theirs["predictions"][0]
    mlflow_scores = {
        k.removeprefix("score_"): float(v) for k, v in row.items() if k.startswith("score_")
    }
    return ours_scores, mlflow_scores


def median_of(runs: list[dict[str, float]]) -> dict[str, float]:
    """Each figure's median over the rounds; failures are summed."""
    merged = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
    merged["failures"] = sum(r["failures"] for r in runs)
    return merged


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per scenario")
    parser.add_argument(
        "--null-model", action="store_true", help="score with a constant in both servers"
    )
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--data", type=Path, default=SEEDS, help="training data for the model")
    args = parser.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="narratives-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    store = f"sqlite:///{workdir / 'mlflow.db'}"
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": store,
        "NARRATIVES_CACHE_DIR": str(workdir / "cache"),
    }
    texts_path = DEV if DEV.is_file() else SEEDS
    texts = [
        json.loads(x)["text"] for x in texts_path.read_text(encoding="utf-8").splitlines() if x
    ]
    print(f"passages: {texts_path} ({len(texts)}); store: {store}")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores; concurrency {args.concurrency},"
        f" one worker per server"
    )

    subprocess.run(
        [sys.executable, "-m", "training.cli", "train", "--data", str(args.data), "--force"],
        cwd=workdir,
        env={**env, "PYTHONPATH": str(ROOT)},
        check=True,
        capture_output=True,
    )
    ours_port, mlflow_port = free_port(), free_port()
    serve_env = {**env, "PYTHONPATH": str(ROOT)}
    if args.null_model:
        serve_env = {
            **env,
            "PYTHONPATH": os.pathsep.join([str(NULL_MODEL), str(ROOT)]),
            "NARRATIVES_BENCH_NULL_MODEL": "1",
        }
        print("null model: both servers score with a constant (request handling only)")
    servers = {
        "ours": start(
            [sys.executable, "-m", "training.cli", "serve", "--port", str(ours_port)],
            workdir,
            serve_env,
        ),
        "mlflow": start(
            [
                sys.executable,
                "-m",
                "mlflow",
                "models",
                "serve",
                "-m",
                "models:/narrative-classifier@champion",
                "--env-manager",
                "local",
                "--port",
                str(mlflow_port),
                "--host",
                "127.0.0.1",
                "--workers",
                "1",
            ],
            workdir,
            serve_env,
        ),
    }
    try:
        ready = {
            "ours": wait_ready(f"http://127.0.0.1:{ours_port}/readyz", servers["ours"]),
            "mlflow": wait_ready(f"http://127.0.0.1:{mlflow_port}/ping", servers["mlflow"]),
        }
        print(f"ready after: ours {ready['ours']:.1f}s, mlflow {ready['mlflow']:.1f}s")
        ours_scores, mlflow_scores = probe(
            f"http://127.0.0.1:{ours_port}/v1/classify",
            f"http://127.0.0.1:{mlflow_port}/invocations",
            texts[0],
        )
        same = ours_scores.keys() == mlflow_scores.keys() and all(
            abs(ours_scores[k] - mlflow_scores[k]) < 1e-6 for k in ours_scores
        )
        print(f"same scores from both servers: {same} {ours_scores}")
        if not same:
            raise RuntimeError(f"the servers disagree: ours {ours_scores}, mlflow {mlflow_scores}")
        if args.null_model and set(ours_scores.values()) != {0.5}:
            raise RuntimeError("--null-model is not in effect: the scores are the model's")
        scenarios = {
            "single passage": [[t] for t in texts],
            f"{BATCH}-passage batch": [
                texts[i : i + BATCH] for i in range(0, len(texts) - BATCH + 1, BATCH)
            ],
        }
        results: dict[str, dict[str, dict[str, float]]] = {}
        for scenario, groups in scenarios.items():
            per = len(groups[0])
            ours_bodies = [{"text": g[0]} if per == 1 else {"texts": g} for g in groups]
            mlflow_bodies = [{"dataframe_records": [{"text": t} for t in g]} for g in groups]
            targets = {
                "ours": (f"http://127.0.0.1:{ours_port}/v1/classify", ours_bodies),
                "mlflow": (f"http://127.0.0.1:{mlflow_port}/invocations", mlflow_bodies),
            }
            rounds: dict[str, list[dict[str, float]]] = {"ours": [], "mlflow": []}
            for r in range(args.rounds):
                for name in ("ours", "mlflow") if r % 2 == 0 else ("mlflow", "ours"):
                    url, bodies = targets[name]
                    rounds[name].append(load(url, bodies, per, args, workdir))
            results[scenario] = {name: median_of(runs) for name, runs in rounds.items()}
    finally:
        for proc in servers.values():
            stop(proc)
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)

    print(f"\nmedian of {args.rounds} alternating rounds per server and scenario")
    print(
        f"{'scenario':22} {'server':7} {'req/s':>8} {'passages/s':>11} {'p50 ms':>8}"
        f" {'p95 ms':>8}"
        f" {'p99 ms':>8} {'failed':>7}"
    )
    for scenario, pair in results.items():
        for name, r in pair.items():
            print(
                f"{scenario:22} {name:7} {r['rps']:8.1f} {r['passages_per_s']:11.1f}"
                f" {r['p50_ms']:8.1f}"
                f" {r['p95_ms']:8.1f} {r['p99_ms']:8.1f} {int(r['failures']):7d}"
            )
        o, m = pair["ours"], pair["mlflow"]
        print(
            f"{'':22} ratio ours/mlflow: throughput {o['rps'] / m['rps']:.2f}x,"
            f" p99 {o['p99_ms'] / m['p99_ms']:.2f}x"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
