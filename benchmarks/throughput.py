"""In-process prediction throughput on one core: ours, the straightforward pipeline, fastText.

Usage:
    uv run python benchmarks/throughput.py [--passages PATH] [--repeats N] [--limit N]

All are trained on seeds/ and predict the same passages (by default ../shared/data/dev.jsonl,
else the seed corpus). "Ours" is what the service and `narratives predict` run:
NarrativeClassifier.predict_scores, i.e. the LinearScorer (the fitted pipeline's arithmetic in
NumPy, with normalisation, tokens and character n-gram columns cached per chunk of text). The
straightforward pipeline is the scikit-learn pipeline without any cache (scikit-learn's own
char_wb analyser, camel-tools' tokenizer on whole documents). The script checks that all give
the same scores before timing them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

# One core: pin BLAS/OpenMP pools before numpy loads (our hot path is single-threaded Python).
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from camel_tools.tokenizers.word import simple_word_tokenize  # noqa: E402
from sklearn.feature_extraction.text import TfidfVectorizer  # noqa: E402
from sklearn.pipeline import FeatureUnion, Pipeline  # noqa: E402
from sklearn.preprocessing import FunctionTransformer  # noqa: E402

from benchmarks.peers import FastTextPeer, _line  # noqa: E402
from classifier import ModelConfig, NarrativeClassifier  # noqa: E402
from classifier.preprocess import normalize  # noqa: E402

DEV = ROOT.parent / "shared" / "data" / "dev.jsonl"
SEEDS = ROOT / "seeds" / "corpus.jsonl"


def plain_normalize_many(texts: list[str]) -> list[str]:
    """The straightforward first step: every step on the whole text, no cache."""
    return [normalize(t) for t in texts]


def plain_tokenize(text: str) -> list[str]:
    """camel-tools' tokenizer on the whole document, punctuation dropped, no cache."""
    return [t for t in simple_word_tokenize(text) if any(c.isalnum() for c in t)]


def plain_pipeline(fitted: Pipeline, config: ModelConfig) -> Pipeline:
    """The same fitted model with the straightforward analysers (vocabulary and weights shared)."""
    features: FeatureUnion = fitted.named_steps["features"]
    vecs = dict(features.transformer_list)
    word = TfidfVectorizer(
        analyzer="word",
        tokenizer=plain_tokenize,
        token_pattern=None,
        lowercase=False,
        ngram_range=config.word_ngrams,
        dtype=np.float32,
        sublinear_tf=True,
    )
    char = TfidfVectorizer(
        analyzer="char_wb",
        ngram_range=config.char_ngrams,
        lowercase=False,
        dtype=np.float32,
        sublinear_tf=True,
    )
    for fresh, old in ((word, vecs["word"]), (char, vecs["char"])):
        fresh.vocabulary_ = old.vocabulary_
        fresh.idf_ = old.idf_
    return Pipeline(
        [
            ("normalize", FunctionTransformer(plain_normalize_many)),
            ("features", FeatureUnion([("word", word), ("char", char)])),
            ("clf", fitted.named_steps["clf"]),
        ]
    )


def clear_caches(clf: NarrativeClassifier | None = None) -> None:
    from classifier import features, preprocess

    if clf is not None and clf.scorer is not None:
        clf.scorer.clear_cache()
    features.word_char_ngrams.cache_clear()
    preprocess.normalize_chunk.cache_clear()
    preprocess._chunk_tokens.cache_clear()


def best_rate(fn, n: int, repeats: int, cold: bool = True, clf=None) -> float:  # type: ignore[no-untyped-def]
    best = float("inf")
    for _ in range(repeats):
        if cold:
            clear_caches(clf)  # every timed pass starts with empty caches: no credit for re-runs
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return n / best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passages", type=Path, default=DEV if DEV.is_file() else SEEDS)
    parser.add_argument("--train", type=Path, default=SEEDS)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--limit", type=int, default=0, help="use only the first N passages")
    parser.add_argument("--no-fasttext", action="store_true")
    args = parser.parse_args(argv)

    train = [json.loads(x) for x in args.train.read_text(encoding="utf-8").splitlines() if x]
    texts = [
        json.loads(x)["text"] for x in args.passages.read_text(encoding="utf-8").splitlines() if x
    ]
    if args.limit:
        train, texts = train[: max(args.limit, 40)], texts[: args.limit]
    words = sum(len(t.split()) for t in texts)
    print(f"passages: {args.passages} ({len(texts)}, {words / len(texts):.0f} words on average)")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}"
        f"; best of {args.repeats}, caches cleared before each pass, one thread"
    )

    config = ModelConfig(cv_folds=2)
    clf = NarrativeClassifier(config).fit([r["text"] for r in train], [r["labels"] for r in train])
    assert clf.pipeline is not None and clf.scorer is not None
    pipeline = clf.pipeline
    plain = plain_pipeline(pipeline, config)
    ours_scores = clf.predict_scores(texts)
    sklearn_scores = pipeline.predict_proba(texts)
    plain_scores = plain.predict_proba(texts)
    gap = float(np.abs(ours_scores - plain_scores).max())
    same_labels = bool(
        np.array_equal(
            ours_scores >= np.array([clf.thresholds[lb] for lb in clf.labels]),
            plain_scores >= np.array([clf.thresholds[lb] for lb in clf.labels]),
        )
    )
    print(
        "scores against the straightforward pipeline: cached scikit-learn pipeline identical:"
        f" {bool(np.array_equal(sklearn_scores, plain_scores))}; ours max |difference| {gap:.1e},"
        f" labels identical: {same_labels}"
    )
    if gap > 1e-12 or not same_labels or not np.array_equal(sklearn_scores, plain_scores):
        return 1

    n = len(texts)
    ours = best_rate(lambda: clf.predict_scores(texts), n, args.repeats, clf=clf)
    warm = best_rate(lambda: clf.predict_scores(texts), n, args.repeats, cold=False)
    cached = best_rate(lambda: pipeline.predict_proba(texts), n, args.repeats)
    base = best_rate(lambda: plain.predict_proba(texts), n, args.repeats)
    one = best_rate(lambda: [clf.predict_scores([t]) for t in texts], n, args.repeats, clf=clf)
    one_base = best_rate(lambda: [plain.predict_proba([t]) for t in texts], n, args.repeats)
    print(f"\n{'':52} {'passages/s':>11}")
    print(f"{'ours (LinearScorer, cold caches)':52} {ours:11.0f}")
    print(f"{'ours (warm caches, a long-running service)':52} {warm:11.0f}")
    print(f"{'scikit-learn pipeline with the cached analysers':52} {cached:11.0f}")
    print(f"{'straightforward pipeline':52} {base:11.0f}")
    print(f"{'ours, one passage per call (cold caches)':52} {one:11.0f}")
    print(f"{'straightforward pipeline, one passage per call':52} {one_base:11.0f}")
    print(
        f"speed-up over straightforward: {ours / base:.2f}x cold, {warm / base:.2f}x warm;"
        f" one passage per call {one / one_base:.2f}x"
    )
    if not args.no_fasttext:
        peer = FastTextPeer(epoch=5)
        peer.model = peer._train([r["text"] for r in train], [r["labels"] for r in train])
        peer.labels = clf.labels
        lines = [_line(t) for t in texts]
        model = peer.model
        ft_raw = best_rate(
            lambda: [model.f.predict(x, -1, 0.0, "strict") for x in lines],
            n,  # type: ignore[attr-defined]
            args.repeats,
        )
        ft_full = best_rate(lambda: peer.predict_scores(texts), n, args.repeats)
        print(f"{'fastText predict (pre-tokenised lines)':44} {ft_raw:11.0f}")
        print(f"{'fastText predict (with the same normalising)':44} {ft_full:11.0f}")
        print(
            f"ratio ours/fastText: {ours / ft_raw:.2f} (raw),"
            f" {ours / ft_full:.2f} (same preprocessing)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
