"""The scikit-learn pipeline: normalisation, word + character TF-IDF, one-vs-rest linear model."""

from __future__ import annotations

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.svm import LinearSVC

from classifier.config import ModelConfig
from classifier.features import CharWbNgrams
from classifier.preprocess import normalize_many, tokenize


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
        # The dual problem is the faster one when features outnumber passages, as they do here
        # (about 270k word and character n-grams): same optimum, about 40% less fitting time.
        dual=True,
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


__all__ = ["ModelConfig", "build_pipeline"]
