"""Metrics of a classifier on labelled passages."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from sklearn.metrics import f1_score, precision_recall_fscore_support

from classifier import NarrativeClassifier


@dataclass(frozen=True)
class LabelScores:
    """Precision, recall and F1 of one label, and how many true examples it had."""

    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class Evaluation:
    """Multi-label quality on one data set.

    Attributes:
        labels: Labels evaluated, in column order.
        macro_f1: Unweighted mean of the per-label F1.
        micro_f1: F1 over all label decisions pooled.
        per_label: Scores of each label.
        none_false_positive_rate: Share of passages without any true label that got a label.
        size: Number of passages.
    """

    labels: tuple[str, ...]
    macro_f1: float
    micro_f1: float
    per_label: dict[str, LabelScores]
    none_false_positive_rate: float
    size: int

    def as_metrics(self, prefix: str = "") -> dict[str, float]:
        """Flat metric names for tracking, e.g. ``{prefix}f1_sanctions``."""
        out = {
            f"{prefix}macro_f1": self.macro_f1,
            f"{prefix}micro_f1": self.micro_f1,
            f"{prefix}none_fpr": self.none_false_positive_rate,
        }
        for label, s in self.per_label.items():
            out[f"{prefix}precision_{label}"] = s.precision
            out[f"{prefix}recall_{label}"] = s.recall
            out[f"{prefix}f1_{label}"] = s.f1
        return out


def binarize(label_sets: Sequence[Sequence[str]], labels: Sequence[str]) -> NDArray[np.int_]:
    """Indicator matrix of ``label_sets`` over ``labels`` (unknown labels are ignored)."""
    index = {label: j for j, label in enumerate(labels)}
    y = np.zeros((len(label_sets), len(labels)), dtype=np.int_)
    for i, ls in enumerate(label_sets):
        for label in ls:
            if label in index:
                y[i, index[label]] = 1
    return y


def score_arrays(
    y_true: NDArray[np.int_], y_pred: NDArray[np.int_], labels: Sequence[str]
) -> Evaluation:
    """Compute an :class:`Evaluation` from indicator matrices.

    Args:
        y_true: True labels, shape ``(n, len(labels))``.
        y_pred: Predicted labels, same shape.
        labels: Column names.

    Returns:
        The evaluation.
    """
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, average=None, zero_division=0)
    none = y_true.sum(axis=1) == 0
    fpr = float(y_pred[none].any(axis=1).mean()) if none.any() else 0.0
    return Evaluation(
        labels=tuple(labels),
        macro_f1=float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
        micro_f1=float(f1_score(y_true, y_pred, average="micro", zero_division=0)),
        per_label={
            label: LabelScores(float(p[j]), float(r[j]), float(f[j]), int(s[j]))
            for j, label in enumerate(labels)
        },
        none_false_positive_rate=fpr,
        size=len(y_true),
    )


@dataclass(frozen=True)
class Scored:
    """A model's evaluation together with the arrays behind it (for plots and error lists)."""

    evaluation: Evaluation
    y_true: NDArray[np.int_]
    y_pred: NDArray[np.int_]
    scores: NDArray[np.floating]


def evaluate(
    clf: NarrativeClassifier,
    texts: Sequence[str],
    label_sets: Sequence[Sequence[str]],
    labels: Sequence[str] | None = None,
) -> Scored:
    """Evaluate a classifier on labelled passages.

    Args:
        clf: A fitted classifier.
        texts: Passages.
        label_sets: Their true labels.
        labels: Labels to evaluate over (default: the classifier's); a label the classifier
            does not know counts as never predicted.

    Returns:
        The evaluation and its arrays.
    """
    labels = tuple(labels or clf.labels)
    raw = clf.predict_scores(texts)
    known = {label: j for j, label in enumerate(clf.labels)}
    scores = np.zeros((len(texts), len(labels)))
    y_pred = np.zeros((len(texts), len(labels)), dtype=np.int_)
    for j, label in enumerate(labels):
        if label in known:
            scores[:, j] = raw[:, known[label]]
            y_pred[:, j] = scores[:, j] >= clf.thresholds[label]
    y_true = binarize(label_sets, labels)
    return Scored(score_arrays(y_true, y_pred, labels), y_true, y_pred, scores)
