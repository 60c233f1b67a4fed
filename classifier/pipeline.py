"""The scikit-learn pipeline: normalisation, word + character TF-IDF, one-vs-rest linear model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.svm import LinearSVC

from classifier.features import CharWbNgrams
from classifier.preprocess import normalize_many, tokenize

Estimator = Literal["logreg", "svm"]


@dataclass(frozen=True, slots=True)
class ModelConfig:
    """Hyper-parameters of the pipeline and of threshold tuning.

    Attributes:
        estimator: ``"logreg"`` (logistic regression) or ``"svm"`` (linear SVM with sigmoid
            calibration) per label.
        c: Inverse regularisation strength.
        word_ngrams: Word n-gram range.
        char_ngrams: Character n-gram range (``char_wb``: n-grams inside word boundaries).
        use_char: Whether to add character n-gram features at all.
        balanced: Weight classes inversely to their frequency (rare labels count more).
        fast_char: Use the memoised character analyser (same features as scikit-learn's
            ``char_wb``, several times faster); False builds the plain scikit-learn one.
        min_df: Minimum document frequency of a feature.
        max_features: Cap on each vectoriser's vocabulary (None for no cap).
        cv_folds: Folds of the cross-validation that picks per-label thresholds.
        threshold_beta: Thresholds maximise F-beta on cross-validated scores; below 1 favours
            precision (useful when training text is cleaner than the text served).
        seed: Seed for the folds and the solver.
    """

    estimator: Estimator = "logreg"
    c: float = 10.0
    word_ngrams: tuple[int, int] = (1, 2)
    char_ngrams: tuple[int, int] = (2, 5)
    use_char: bool = True
    fast_char: bool = True
    balanced: bool = True
    min_df: int = 2
    max_features: int | None = 200_000
    cv_folds: int = 5
    threshold_beta: float = 0.7
    seed: int = 0


def _features(config: ModelConfig) -> FeatureUnion:
    word = TfidfVectorizer(
        analyzer="word",
        tokenizer=tokenize,
        token_pattern=None,
        lowercase=False,
        ngram_range=config.word_ngrams,
        min_df=config.min_df,
        max_features=config.max_features,
        sublinear_tf=True,
        dtype=np.float32,
    )
    parts: list[tuple[str, TfidfVectorizer]] = [("word", word)]
    if config.use_char:
        # The memoised analyser carries its own n-gram range (scikit-learn ignores ngram_range
        # for a callable analyser and warns if it is set).
        analyzer: dict[str, object] = (
            {"analyzer": CharWbNgrams(config.char_ngrams)}
            if config.fast_char
            else {"analyzer": "char_wb", "ngram_range": config.char_ngrams}
        )
        char = TfidfVectorizer(
            **analyzer,
            lowercase=False,
            min_df=config.min_df,
            max_features=config.max_features,
            sublinear_tf=True,
            dtype=np.float32,
        )
        parts.append(("char", char))
    return FeatureUnion(parts)


def _estimator(config: ModelConfig) -> LogisticRegression | CalibratedClassifierCV:
    if config.estimator == "svm":
        weight = "balanced" if config.balanced else None
        svm = LinearSVC(C=config.c, class_weight=weight, random_state=config.seed)
        return CalibratedClassifierCV(svm, method="sigmoid", cv=3)
    return LogisticRegression(
        C=config.c,
        class_weight="balanced" if config.balanced else None,
        solver="liblinear",
        random_state=config.seed,
    )


def build_pipeline(config: ModelConfig) -> Pipeline:
    """Build the unfitted pipeline for a configuration.

    Args:
        config: Hyper-parameters.

    Returns:
        ``normalize -> features (word | char TF-IDF) -> one-vs-rest linear model``; its
        ``predict_proba`` gives one probability per label column.
    """
    return Pipeline(
        [
            ("normalize", FunctionTransformer(normalize_many)),
            ("features", _features(config)),
            ("clf", OneVsRestClassifier(_estimator(config))),
        ]
    )
