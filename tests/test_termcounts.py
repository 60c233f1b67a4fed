"""Vectorisers fitted from shared counts equal scikit-learn's own fit, fold by fold."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.model_selection import cross_val_predict

import classifier.model
from classifier import ModelConfig, NarrativeClassifier
from classifier.pipeline import build_pipeline
from classifier.preprocess import normalize_many
from classifier.stratify import MultilabelStratifiedKFold
from classifier.termcounts import count_terms, fit_tfidf, to_vectorizer, transform_rows

CORPUS = Path(__file__).resolve().parents[1] / "seeds" / "corpus.jsonl"


@pytest.fixture(scope="module")
def rows() -> list[dict[str, object]]:
    lines = CORPUS.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines[::8]]


@pytest.fixture(scope="module")
def documents(rows: list[dict[str, object]]) -> list[str]:
    return normalize_many([str(r["text"]) for r in rows])


@pytest.mark.parametrize(
    "config",
    [
        ModelConfig(),
        ModelConfig(min_df=1, max_features=None),
        ModelConfig(min_df=3, max_features=1500),
        ModelConfig(word_ngrams=(1, 3), char_ngrams=(3, 4), max_features=800),
    ],
    ids=["default", "no-limits", "min_df-and-cap", "other-ranges"],
)
def test_fitting_from_counts_equals_fitting_the_vectoriser(
    documents: list[str], config: ModelConfig
) -> None:
    rng = np.random.default_rng(0)
    rows = np.sort(rng.choice(len(documents), size=len(documents) * 3 // 4, replace=False))
    held_out = np.setdiff1d(np.arange(len(documents)), rows)
    union = build_pipeline(config).named_steps["features"]
    for name, template in union.transformer_list:
        counts = count_terms(template, documents)
        fitted = fit_tfidf(counts, rows)
        vectorizer = to_vectorizer(counts, fitted)
        reference: TfidfVectorizer = clone(template).fit([documents[i] for i in rows])
        assert vectorizer.vocabulary_ == reference.vocabulary_, name
        np.testing.assert_array_equal(vectorizer.idf_, reference.idf_)
        expected = reference.transform([documents[i] for i in held_out])
        got = transform_rows(counts, fitted, held_out)
        assert (got != expected).nnz == 0, name
        # The built vectoriser is a working scikit-learn vectoriser in its own right.
        assert (vectorizer.transform([documents[i] for i in held_out]) != expected).nnz == 0


def test_an_impossible_min_df_is_the_same_error_as_scikit_learn(documents: list[str]) -> None:
    template = TfidfVectorizer(analyzer="word", min_df=0.99)
    counts = count_terms(template, documents)
    with pytest.raises(ValueError, match="no terms remain"):
        fit_tfidf(counts)
    with pytest.raises(ValueError, match="no terms remain"):
        clone(template).fit(documents)


@pytest.mark.slow
@pytest.mark.parametrize("processes", [False, True], ids=["in-process", "worker-processes"])
def test_fit_gives_the_plain_pipeline_and_cross_validation(
    rows: list[dict[str, object]], processes: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if processes:
        # Small corpora fit in-process; lower the bar so that this one uses the workers.
        monkeypatch.setattr(classifier.model, "MIN_PASSAGES_FOR_WORKERS", 0)
    texts = [str(r["text"]) for r in rows]
    label_sets = [list(r["labels"]) for r in rows]  # type: ignore[call-overload]
    config = ModelConfig(cv_folds=3)
    clf = NarrativeClassifier(config).fit(texts, label_sets, n_jobs=2)
    # The same data and seed give the same model again, however many jobs fit it (the dual
    # solver is randomised, from one generator per process).
    again = NarrativeClassifier(config).fit(texts, label_sets, n_jobs=1 if processes else 2)
    assert clf.thresholds == again.thresholds
    np.testing.assert_array_equal(clf.oof_scores, again.oof_scores)  # type: ignore[arg-type]
    y = np.array([[int(label in ls) for label in clf.labels] for ls in label_sets])
    plain = build_pipeline(config).fit(texts, y)
    assert clf.pipeline is not None
    np.testing.assert_array_equal(clf.pipeline.predict_proba(texts), plain.predict_proba(texts))
    cv = MultilabelStratifiedKFold(3, seed=config.seed)
    oof = cross_val_predict(build_pipeline(config), texts, y, cv=cv, method="predict_proba")
    assert clf.oof_scores is not None
    np.testing.assert_allclose(clf.oof_scores, oof, rtol=0, atol=1e-12)
