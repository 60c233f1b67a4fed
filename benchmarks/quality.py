"""Quality on real text: train on seeds/, evaluate on ../shared/data/dev.jsonl (passages by others).

Usage:
    uv run python benchmarks/quality.py [--dev PATH] [--train PATH] [--json OUT]

Prints macro-F1, per-label precision/recall/F1 and the false-positive rate on passages without
a label, for our model and for the peers measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.peers import FastTextPeer, KeywordPeer  # noqa: E402
from classifier import ModelConfig, NarrativeClassifier  # noqa: E402
from training.evaluation import Evaluation, evaluate  # noqa: E402

DEFAULT_DEV = ROOT.parent / "shared" / "data" / "dev.jsonl"
DEFAULT_TRAIN = ROOT / "seeds" / "corpus.jsonl"


def read_jsonl(path: Path) -> tuple[list[str], list[list[str]]]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    return [r["text"] for r in rows], [list(r["labels"]) for r in rows]


def report(name: str, ev: Evaluation, seconds: float) -> dict[str, Any]:
    print(f"\n== {name}  (fit+predict {seconds:.1f}s)")
    print(
        f"macro-F1 {ev.macro_f1:.3f}   micro-F1 {ev.micro_f1:.3f}   "
        f"no-label FP rate {ev.none_false_positive_rate:.3f}"
    )
    print(f"{'label':24} {'P':>6} {'R':>6} {'F1':>6} {'n':>5}")
    for label, s in ev.per_label.items():
        print(f"{label:24} {s.precision:6.3f} {s.recall:6.3f} {s.f1:6.3f} {s.support:5d}")
    return {
        "name": name,
        "macro_f1": ev.macro_f1,
        "micro_f1": ev.micro_f1,
        "none_fpr": ev.none_false_positive_rate,
        "per_label": {k: vars(v) for k, v in ev.per_label.items()},
        "seconds": seconds,
    }


def run(
    model: Any, train: tuple[list[str], list[list[str]]], dev: tuple[list[str], list[list[str]]]
) -> tuple[Evaluation, float]:
    """Fit on the training passages, evaluate on dev; return the evaluation and seconds taken."""
    started = time.perf_counter()
    model.fit(*train)
    ev = evaluate(model, dev[0], dev[1]).evaluation
    return ev, time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dev", type=Path, default=DEFAULT_DEV)
    parser.add_argument("--train", type=Path, default=DEFAULT_TRAIN)
    parser.add_argument("--json", type=Path, default=None, help="also write results as JSON")
    parser.add_argument("--no-fasttext", action="store_true", help="skip the fastText peer")
    args = parser.parse_args(argv)
    if not args.dev.is_file():
        print(f"skipped: no evaluation set at {args.dev}")
        return 0
    train, dev = read_jsonl(args.train), read_jsonl(args.dev)
    print(f"train: {args.train} ({len(train[0])} passages); dev: {args.dev} ({len(dev[0])})")
    print(f"machine: {platform.machine()}, python {platform.python_version()}")
    results = []
    contenders: list[tuple[str, Any]] = [
        ("ours: word+char TF-IDF, logistic regression", NarrativeClassifier(ModelConfig())),
        ("fastText supervised (ova, word bigrams, subwords)", FastTextPeer()),
        ("keyword rules", KeywordPeer()),
    ]
    if args.no_fasttext:
        contenders = [c for c in contenders if not c[0].startswith("fastText")]
    for name, model in contenders:
        ev, seconds = run(model, train, dev)
        results.append(report(name, ev, seconds))
    ours = results[0]
    print("\n== ratios (ours minus peer, macro-F1 points)")
    for peer in results[1:]:
        print(f"{peer['name']:52} {100 * (ours['macro_f1'] - peer['macro_f1']):+.1f} points")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
