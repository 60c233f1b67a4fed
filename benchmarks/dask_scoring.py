"""Dask batch scoring against single-process scoring of the same file: passages/s and the ratio.

Usage:
    uv run python benchmarks/dask_scoring.py [--rows N] [--workers W] [--partition-size N]
        [--train PATH] [--passages PATH]

A model is trained on --train (default: seeds/corpus.jsonl) and a JSONL file of --rows passages
is written by cycling through --passages (default: ../shared/data/dev.jsonl, else the seed
corpus). The same file is then labelled twice, end to end (read, predict, write):

- single process: training.batch.predict_file (JSONL out), the `narratives predict --input` path;
- Dask: training.scoring.score_corpus on a local cluster of --workers processes (Parquet out),
  the `narratives score` path; the cluster's start-up is timed apart.

Both outputs are checked to carry identical labels.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

# One core per process: pin BLAS/OpenMP pools before numpy loads (Dask's workers do the same).
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pyarrow.parquet as pq  # noqa: E402

from classifier import ModelConfig, NarrativeClassifier, save_model  # noqa: E402
from training.batch import predict_file  # noqa: E402
from training.cluster import available_cores, dask_client  # noqa: E402
from training.data import load_dataset  # noqa: E402
from training.scoring import ScoreOptions, score_corpus  # noqa: E402

DEV = ROOT.parent / "shared" / "data" / "dev.jsonl"
SEEDS = ROOT / "seeds" / "corpus.jsonl"


def _texts(path: Path) -> list[str]:
    rows = (json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip())
    return [r["text"] for r in rows if isinstance(r.get("text"), str) and r["text"].strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=available_cores())
    parser.add_argument("--partition-size", type=int, default=2_000)
    parser.add_argument("--train", type=Path, default=SEEDS)
    parser.add_argument("--passages", type=Path, default=DEV if DEV.is_file() else SEEDS)
    args = parser.parse_args()

    dataset = load_dataset([args.train], min_label_count=1)
    started = time.perf_counter()
    clf = NarrativeClassifier(ModelConfig()).fit(dataset.texts, dataset.label_sets)
    fit_seconds = time.perf_counter() - started
    print(f"model: trained on {len(dataset)} passages of {args.train.name} in {fit_seconds:.1f}s")
    passages = _texts(args.passages)
    print(f"machine: {available_cores()} cores, Python {platform.python_version()}")
    print(
        f"input: {args.rows} rows cycling through {len(passages)} passages of {args.passages.name}"
    )

    with tempfile.TemporaryDirectory(prefix="bench-dask-") as tmp:
        folder = Path(tmp)
        model_dir = folder / "classifier"
        save_model(clf, model_dir)
        source = folder / "corpus.jsonl"
        with source.open("w", encoding="utf-8") as fh:
            for i in range(args.rows):
                row = {"id": f"r{i}", "text": passages[i % len(passages)]}
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")

        started = time.perf_counter()
        predict_file(clf, source, folder / "single.jsonl")
        single = time.perf_counter() - started

        started = time.perf_counter()
        with dask_client(None, args.workers) as client:
            start_up = time.perf_counter() - started
            outcome = score_corpus(
                client,
                str(source),
                str(folder / "dask"),
                model_dir,
                ScoreOptions(partition_size=args.partition_size),
            )
        dask_seconds = outcome.seconds

        lines = (folder / "single.jsonl").read_text("utf-8").splitlines()
        single_labels = [json.loads(line)["labels"] for line in lines]
        parts = sorted((folder / "dask").glob("part-*.parquet"))
        dask_labels = [lb for p in parts for lb in pq.read_table(p).column("labels").to_pylist()]

    single_rate = args.rows / single
    dask_rate = args.rows / dask_seconds
    with_start = args.rows / (dask_seconds + start_up)
    print(
        f"single process (predict_file, JSONL out): {single_rate:8.0f} passages/s ({single:.1f}s)"
    )
    cluster = f"{outcome.workers} worker(s), {outcome.partitions} partitions"
    print(f"dask, {cluster} (Parquet out): {dask_rate:8.0f} passages/s ({dask_seconds:.1f}s)")
    print(f"dask including the cluster start-up ({start_up:.1f}s): {with_start:8.0f} passages/s")
    ratio, ratio_start = dask_rate / single_rate, with_start / single_rate
    print(f"ratio dask/single: {ratio:.2f}x (with start-up {ratio_start:.2f}x)")
    print(f"labels identical: {single_labels == dask_labels}")


if __name__ == "__main__":
    main()
