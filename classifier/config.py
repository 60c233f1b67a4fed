"""Hyper-parameters of the pipeline and of threshold tuning (no scikit-learn import needed)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

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
