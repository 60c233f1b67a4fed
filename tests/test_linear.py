"""The LinearScorer gives the pipeline's scores, saves and loads as plain arrays."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from classifier import ModelConfig, NarrativeClassifier, linear, save_model
from classifier.linear import LinearScorer, word_ngrams
from classifier.preprocess import normalize_many
from tests.conftest import DEV_SET, ROOT

CORPUS = ROOT / "seeds" / "corpus.jsonl"
ODD = [
    "؟؟؟ !!!",
    "كلمة",
    "zzz qqq",
    "https://x.y/z info@a.b @user_1 ١٢٣",
    "\u202eمعكوس\u202c \u00a0 nbsp\tتاب\nسطر",
    "عقوبات " * 300,
    # chunks that normalise to nothing, or to several words (a placeholder inside a word)
    "ـــ َُ ​ كلمة",
    "راسلوا:info@x.org،(عقوبات) انظرwww.x.org/a",
]


@pytest.fixture(scope="module")
def corpus() -> tuple[list[str], list[list[str]]]:
    rows = [json.loads(x) for x in CORPUS.read_text(encoding="utf-8").splitlines()]
    return [r["text"] for r in rows], [r["labels"] for r in rows]


@pytest.fixture(scope="module")
def fitted(corpus: tuple[list[str], list[list[str]]]) -> NarrativeClassifier:
    texts, labels = corpus
    return NarrativeClassifier(ModelConfig(cv_folds=3)).fit(texts[::4], labels[::4], n_jobs=2)


@pytest.mark.parametrize(
    ("tokens", "ngram_range", "expected"),
    [
        (["a", "b", "c"], (1, 2), ["a", "b", "c", "a b", "b c"]),
        (["a", "b", "c"], (2, 3), ["a b", "b c", "a b c"]),
        (["a"], (1, 3), ["a"]),
        ([], (1, 2), []),
    ],
)
def test_word_ngrams_are_scikit_learns(
    tokens: list[str], ngram_range: tuple[int, int], expected: list[str]
) -> None:
    from sklearn.feature_extraction.text import CountVectorizer

    analyzer = CountVectorizer(ngram_range=ngram_range)
    assert word_ngrams(tokens, ngram_range) == analyzer._word_ngrams(tokens) == expected


def _probe(corpus: tuple[list[str], list[list[str]]]) -> list[str]:
    texts = corpus[0][1::4] + ODD
    if DEV_SET.is_file():
        texts += [json.loads(x)["text"] for x in DEV_SET.read_text(encoding="utf-8").splitlines()]
    return texts


@pytest.mark.slow
def test_scores_equal_the_pipeline(
    fitted: NarrativeClassifier, corpus: tuple[list[str], list[list[str]]]
) -> None:
    assert fitted.pipeline is not None and fitted.scorer is not None
    texts = _probe(corpus)
    expected = fitted.pipeline.predict_proba(texts)
    got = fitted.scorer.scores(normalize_many(texts))
    # Same float32 features and the same summation order: only exp() may differ, in the last bit.
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-15)
    # Warm per-word caches give the same again.
    np.testing.assert_array_equal(fitted.scorer.scores(normalize_many(texts)), got)
    # Raw texts, normalised chunk by chunk inside the scorer: the very same numbers, cold and
    # warm (the chunk cache is filled by the first call).
    fitted.scorer.clear_cache()
    np.testing.assert_array_equal(fitted.scorer.score_texts(texts), got)
    np.testing.assert_array_equal(fitted.scorer.score_texts(texts), got)


@pytest.mark.parametrize("slice_chars", [1, 700, 250_000])
def test_a_row_is_the_same_in_any_batch(
    fitted: NarrativeClassifier,
    corpus: tuple[list[str], list[list[str]]],
    slice_chars: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Batches are scored in slices of about slice_chars characters (1: one document each);
    # neither the batch nor the slice a document falls in may change its scores by one bit.
    assert fitted.scorer is not None
    documents = normalize_many(corpus[0][3::40] + ODD)
    alone = np.vstack([fitted.scorer.scores([d]) for d in documents])
    monkeypatch.setattr(linear, "_SLICE_CHARS", slice_chars)
    np.testing.assert_array_equal(fitted.scorer.scores(documents), alone)
    np.testing.assert_array_equal(fitted.scorer.score_texts(corpus[0][3::40] + ODD), alone)
    assert fitted.scorer.scores([]).shape == (0, len(fitted.labels))
    assert fitted.scorer.score_texts([]).shape == (0, len(fitted.labels))


@pytest.mark.slow
def test_a_saved_scorer_loads_equal(
    fitted: NarrativeClassifier, corpus: tuple[list[str], list[list[str]]], tmp_path: Path
) -> None:
    assert fitted.scorer is not None
    fitted.scorer.save(tmp_path / "s.npz")
    loaded = LinearScorer.load(tmp_path / "s.npz")
    texts = _probe(corpus)[:200]
    np.testing.assert_array_equal(
        loaded.scores(normalize_many(texts)), fitted.scorer.scores(normalize_many(texts))
    )
    assert [b.terms for b in loaded.blocks] == [b.terms for b in fitted.scorer.blocks]


def test_the_svm_predicts_through_scikit_learn_and_still_explains(
    tiny_corpus: tuple[list[str], list[list[str]]],
) -> None:
    texts, labels = tiny_corpus
    clf = NarrativeClassifier(ModelConfig(estimator="svm", cv_folds=3, min_df=1))
    clf.fit(texts, labels)
    assert clf.scorer is None and clf.pipeline is not None
    assert clf.predict(["فرضت واشنطن عقوبات على مصرف"])[0].scores
    evidence = clf.explain("فرضت وزارة الخزانة عقوبات على شركات شحن")
    assert any(term.term == "عقوبات" for term in evidence["sanctions"])


@pytest.mark.slow
def test_serving_a_saved_model_never_imports_scikit_learn(
    fitted: NarrativeClassifier, tmp_path: Path
) -> None:
    save_model(fitted, tmp_path / "m")
    code = f"""
import sys
from classifier import load_model
import service.app
clf, _ = load_model({str(tmp_path / "m")!r})
clf.predict(["فرضت واشنطن عقوبات جديدة على مصرف"])
clf.explain("فرضت واشنطن عقوبات جديدة على مصرف")
heavy = {{"sklearn", "scipy", "pandas", "joblib", "mlflow"}}
print(",".join(sorted({{m.split(".")[0] for m in sys.modules}} & heavy)))
"""
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == ""
