"""The narrative classifier: fit, predict with per-label thresholds, explain, classify documents."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Self

import numpy as np
from numpy.typing import NDArray

from classifier.config import ModelConfig
from classifier.errors import EmptyTextError, NotFittedError, TrainingDataError
from classifier.features import CharWbNgrams
from classifier.linear import LinearScorer, linear_view
from classifier.preprocess import (
    arabic_ratio,
    find_term,
    normalize,
    token_spans,
    tokenize,
)
from classifier.segment import DEFAULT_MAX_CHARS, Passage, split_passages

# scikit-learn is imported where a model is fitted or a pipeline is run, never at import time: a
# service that serves through the LinearScorer starts without it (seconds on a small machine).
if TYPE_CHECKING:
    from sklearn.base import BaseEstimator
    from sklearn.pipeline import Pipeline

    from classifier.termcounts import FittedTfidf, TermCounts

# Below this share of Arabic letters a result carries a warning: the model only saw Arabic.
MIN_ARABIC_RATIO = 0.5
WARN_NOT_ARABIC = "mostly_non_arabic"
# Thresholds are kept inside this band so that one odd fold cannot make a label fire on anything.
THRESHOLD_BOUNDS = (0.05, 0.95)
# Below this many passages, fitting in worker processes costs more than it saves.
MIN_PASSAGES_FOR_WORKERS = 8_000


@dataclass(frozen=True, slots=True)
class Prediction:
    """The labels of one text.

    Attributes:
        labels: Labels whose score reached their threshold, best first.
        scores: A score in [0, 1] for every label the model knows.
        primary: The best-scoring assigned label, or None when no label applies.
        warnings: Machine-readable caveats about this result (e.g. ``mostly_non_arabic``).
    """

    labels: tuple[str, ...]
    scores: dict[str, float]
    primary: str | None
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Evidence:
    """A term that pushed a label's score up.

    Attributes:
        term: The normalised term (a word or a two-word phrase).
        weight: Its contribution to the label's decision function (log-odds for logistic
            regression); larger means stronger evidence.
        spans: ``(start, end)`` offsets of each place the term occurs in the original text.
    """

    term: str
    weight: float
    spans: tuple[tuple[int, int], ...]


@dataclass(frozen=True, slots=True)
class PassageResult:
    """One passage of a document and its prediction."""

    passage: Passage
    prediction: Prediction


@dataclass(frozen=True, slots=True)
class DocumentResult:
    """Per-passage predictions and the document-level aggregate.

    The aggregate labels are every label assigned to at least one passage; a label's aggregate
    score is its highest passage score.
    """

    passages: tuple[PassageResult, ...]
    labels: tuple[str, ...]
    scores: dict[str, float]
    primary: str | None
    warnings: tuple[str, ...] = ()


def tune_thresholds(
    y_true: NDArray[np.int_],
    scores: NDArray[np.floating],
    labels: Sequence[str],
    beta: float = 1.0,
) -> dict[str, float]:
    """Choose, per label, the score threshold that maximises F-beta (F1 by default).

    Args:
        y_true: Binary indicator matrix of true labels.
        scores: Scores of the same shape, ideally out-of-fold.
        labels: Label names, one per column.
        beta: Below 1 favours precision, above 1 recall.

    Returns:
        A threshold per label, within :data:`THRESHOLD_BOUNDS` (0.5 when a label has no positives).
    """
    from sklearn.metrics import precision_recall_curve

    thresholds: dict[str, float] = {}
    lo, hi = THRESHOLD_BOUNDS
    for j, label in enumerate(labels):
        if y_true[:, j].sum() == 0:
            thresholds[label] = 0.5
            continue
        precision, recall, cuts = precision_recall_curve(y_true[:, j], scores[:, j])
        b2 = beta * beta
        fbeta = (1 + b2) * precision * recall / np.maximum(b2 * precision + recall, 1e-12)
        best = int(np.argmax(fbeta[:-1]))
        # Midway down to the next lower score keeps the boundary example and leaves a margin,
        # which generalises better than the exact boundary score.
        cut = float(cuts[best])
        lower = scores[:, j][scores[:, j] < cut]
        if lower.size:
            cut = (cut + float(lower.max())) / 2
        thresholds[label] = float(np.clip(cut, lo, hi))
    return thresholds


def _check_texts(texts: Sequence[str]) -> None:
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"text {i} is {type(text).__name__}, not str")
        if not text.strip():
            raise EmptyTextError(f"text {i} is empty or white space only")


def _fit_model(template: BaseEstimator, x: Any, y: NDArray[np.int_]) -> BaseEstimator:
    """Fit a fresh copy of the model (module level, so worker processes can run it)."""
    from sklearn.base import clone

    return clone(template).fit(x, y)


def _features(
    counts: Sequence[TermCounts], weights: Sequence[FittedTfidf], rows: NDArray[np.intp] | None
) -> Any:
    """The joined TF-IDF features of some rows (all rows when None), as the union gives them."""
    import scipy.sparse as sp

    from classifier.termcounts import transform_rows

    blocks = [transform_rows(c, w, rows) for c, w in zip(counts, weights, strict=True)]
    return sp.hstack(blocks, format="csr")


def _cross_fit(
    model: BaseEstimator,
    counts: Sequence[TermCounts],
    y: NDArray[np.int_],
    splits: Sequence[tuple[NDArray[np.intp], NDArray[np.intp]]],
    n_jobs: int | None,
) -> tuple[NDArray[np.float64], list[FittedTfidf], BaseEstimator]:
    """Fit on all rows and on each fold's training rows; score each fold's held-out rows.

    Features are built here, one fit ahead of the fits, which run in ``n_jobs`` worker processes.
    Not threads: liblinear's dual solver draws from one process-wide random generator, so two
    fits sharing a process would not be reproducible.

    Returns:
        Out-of-fold scores, the TF-IDF weights fitted on all rows, and the model fitted on all
        rows.
    """
    from joblib import Parallel, delayed

    from classifier.termcounts import fit_tfidf

    plan: list[NDArray[np.intp] | None] = [None, *(train for train, _ in splits)]
    fitted: list[list[FittedTfidf]] = []

    def jobs() -> Iterator[Any]:
        for rows in plan:
            weights = [fit_tfidf(c, rows) for c in counts]
            fitted.append(weights)
            target = y if rows is None else y[rows]
            yield delayed(_fit_model)(model, _features(counts, weights, rows), target)

    # max_nbytes=None: liblinear cannot take the read-only memory maps joblib would send.
    models = Parallel(n_jobs=n_jobs, pre_dispatch="n_jobs", max_nbytes=None)(jobs())
    oof = np.zeros(y.shape, dtype=float)
    for (_, held_out), weights, fold_model in zip(splits, fitted[1:], models[1:], strict=True):
        oof[held_out] = fold_model.predict_proba(_features(counts, weights, held_out))
    return oof, fitted[0], models[0]


class NarrativeClassifier:
    """Multi-label classifier of Arabic passages by narrative type.

    Args:
        config: Pipeline and tuning hyper-parameters.

    Example:
        >>> clf = NarrativeClassifier().fit(texts, [["sanctions"], [], ["diplomacy"]])
        >>> clf.predict(["فرضت واشنطن عقوبات جديدة"])[0].labels
    """

    def __init__(self, config: ModelConfig | None = None) -> None:
        self.config = config or ModelConfig()
        self.labels: tuple[str, ...] = ()
        self.thresholds: dict[str, float] = {}
        self.pipeline: Pipeline | None = None
        # Scores without scikit-learn (None for pipelines it cannot reproduce, e.g. the SVM).
        self.scorer: LinearScorer | None = None
        # Features and per-label weights for explanations (the scorer itself for logistic
        # regression; SVM weights averaged over calibration folds otherwise).
        self._explainer: LinearScorer | None = None
        self.oof_scores: NDArray[np.floating] | None = None
        self.fold_ids: NDArray[np.int_] | None = None

    @classmethod
    def from_pipeline(
        cls,
        pipeline: Pipeline,
        labels: Sequence[str],
        thresholds: dict[str, float],
        config: ModelConfig | None = None,
    ) -> Self:
        """Wrap an already fitted pipeline (used when loading a persisted model).

        Args:
            pipeline: A fitted pipeline from :func:`classifier.pipeline.build_pipeline`.
            labels: Label names in the pipeline's column order.
            thresholds: Per-label thresholds.
            config: The configuration the pipeline was built from.

        Returns:
            A ready classifier.
        """
        clf = cls(config)
        clf._set_pipeline(pipeline)
        clf.labels = tuple(labels)
        clf.thresholds = dict(thresholds)
        return clf

    @classmethod
    def from_scorer(
        cls,
        scorer: LinearScorer,
        labels: Sequence[str],
        thresholds: dict[str, float],
        config: ModelConfig | None = None,
    ) -> Self:
        """Wrap a :class:`~classifier.linear.LinearScorer` (a model loaded without its pickle).

        Args:
            scorer: The scorer of a fitted logistic-regression pipeline.
            labels: Label names in the scorer's row order.
            thresholds: Per-label thresholds.
            config: The configuration the pipeline was built from.

        Returns:
            A ready classifier that predicts and explains without scikit-learn.
        """
        clf = cls(config)
        clf.scorer = clf._explainer = scorer
        clf.labels = tuple(labels)
        clf.thresholds = dict(thresholds)
        return clf

    def _set_pipeline(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        view = linear_view(pipeline)
        self._explainer = view[0] if view is not None else None
        self.scorer = view[0] if view is not None and view[1] else None

    @property
    def is_fitted(self) -> bool:
        """Whether the classifier can predict."""
        return self.pipeline is not None or self.scorer is not None

    def _binarize(self, label_sets: Sequence[Iterable[str]]) -> NDArray[np.int_]:
        index = {label: j for j, label in enumerate(self.labels)}
        y = np.zeros((len(label_sets), len(self.labels)), dtype=np.int_)
        for i, labels in enumerate(label_sets):
            for label in labels:
                y[i, index[label]] = 1
        return y

    def fit(
        self, texts: Sequence[str], label_sets: Sequence[Iterable[str]], n_jobs: int | None = None
    ) -> Self:
        """Fit the pipeline and choose per-label thresholds on cross-validated scores.

        Args:
            texts: Training passages.
            label_sets: The labels of each passage (possibly empty).
            n_jobs: Parallel jobs for the cross-validation (joblib semantics).

        Returns:
            ``self``, fitted.

        Raises:
            TrainingDataError: Lengths differ, no labels at all, or a label has fewer than two
                examples (it could not be cross-validated).
            EmptyTextError: A text is empty.
        """
        texts = list(texts)
        label_sets = [list(ls) for ls in label_sets]
        if len(texts) != len(label_sets):
            raise TrainingDataError(f"{len(texts)} texts but {len(label_sets)} label sets")
        _check_texts(texts)
        self.labels = tuple(sorted({label for ls in label_sets for label in ls}))
        if not self.labels:
            raise TrainingDataError("no passage carries a label: nothing to learn")
        y = self._binarize(label_sets)
        support = y.sum(axis=0)
        for label, count in zip(self.labels, support, strict=True):
            if count < 2 or count == len(texts):
                raise TrainingDataError(
                    f"label {label!r} is on {count} of {len(texts)} passages: it needs at least"
                    " two passages with it and one without"
                )

        from classifier.pipeline import build_pipeline
        from classifier.stratify import MultilabelStratifiedKFold
        from classifier.termcounts import count_terms, to_vectorizer

        folds = int(min(self.config.cv_folds, support.min()))
        cv = MultilabelStratifiedKFold(max(folds, 2), seed=self.config.seed)
        splits = list(cv.split(texts, y))
        self.fold_ids = np.zeros(len(texts), dtype=np.int_)
        for k, (_, test) in enumerate(splits):
            self.fold_ids[test] = k
        template = build_pipeline(self.config)
        documents = template.named_steps["normalize"].fit(texts).transform(texts)
        # One analysis pass over the corpus serves every fold and the final fit.
        names, vectorizers = zip(*template.named_steps["features"].transformer_list, strict=True)
        counts = [count_terms(vec, documents) for vec in vectorizers]
        # Worker processes take seconds to start (each imports scikit-learn): smaller corpora
        # fit faster in this process.
        workers = n_jobs if len(texts) >= MIN_PASSAGES_FOR_WORKERS else 1
        self.oof_scores, weights, model = _cross_fit(
            template.named_steps["clf"], counts, y, splits, workers
        )
        self.thresholds = tune_thresholds(
            y, self.oof_scores, self.labels, self.config.threshold_beta
        )
        template.set_params(
            features__transformer_list=[
                (name, to_vectorizer(c, w))
                for name, c, w in zip(names, counts, weights, strict=True)
            ],
            clf=model,
        )
        self._set_pipeline(template)
        return self

    def _require_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError("the classifier is not fitted: call fit() or load a model")

    def predict_scores(self, texts: Sequence[str]) -> NDArray[np.floating]:
        """Score texts for every label.

        Args:
            texts: Texts to score.

        Returns:
            Array of shape ``(len(texts), len(labels))`` with scores in [0, 1].

        Raises:
            EmptyTextError: A text is empty or white space only.
            NotFittedError: The classifier has not been fitted or loaded.
        """
        self._require_fitted()
        texts = list(texts)
        _check_texts(texts)
        if not texts:
            return np.zeros((0, len(self.labels)))
        if self.scorer is not None:
            return self.scorer.score_texts(texts)
        assert self.pipeline is not None
        return np.asarray(self.pipeline.predict_proba(texts), dtype=float)

    def _to_prediction(self, text: str, row: NDArray[np.floating]) -> Prediction:
        scores = {label: round(float(s), 6) for label, s in zip(self.labels, row, strict=True)}
        chosen = sorted(
            (label for label in self.labels if scores[label] >= self.thresholds[label]),
            key=lambda label: -scores[label],
        )
        warnings = (WARN_NOT_ARABIC,) if arabic_ratio(text) < MIN_ARABIC_RATIO else ()
        return Prediction(tuple(chosen), scores, chosen[0] if chosen else None, warnings)

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        """Label texts.

        Args:
            texts: Texts to label.

        Returns:
            One :class:`Prediction` per text, in order.

        Raises:
            EmptyTextError: A text is empty or white space only.
            NotFittedError: The classifier has not been fitted or loaded.
        """
        texts = list(texts)
        scores = self.predict_scores(texts)
        return [self._to_prediction(t, row) for t, row in zip(texts, scores, strict=True)]

    def explain(self, text: str, k: int = 5) -> dict[str, tuple[Evidence, ...]]:
        """Give, for each label, the terms of ``text`` that raised its score most.

        Word n-gram features are terms of their own; each character n-gram's contribution is
        shared among the words it occurs in, so that the evidence is in words a reader can find.

        Args:
            text: The text to explain.
            k: Terms per label at most (only terms with a positive contribution are given).

        Returns:
            For every label, up to ``k`` :class:`Evidence` items, strongest first.

        Raises:
            EmptyTextError: The text is empty or white space only.
            NotFittedError: The classifier has not been fitted or loaded.
        """
        self._require_fitted()
        _check_texts([text])
        view = self._explainer
        if view is None:
            raise NotFittedError("this model's features cannot be explained term by term")
        norm = normalize(text)
        columns, values = view.features(norm)
        # Map char n-gram columns to the whitespace chunks (words) that contain them.
        char_share: dict[int, list[str]] = defaultdict(list)
        for block in view.blocks:
            if block.kind != "char":
                continue
            analyze = CharWbNgrams(block.ngram_range)
            for chunk in norm.split():
                word = " ".join(tokenize(chunk))
                if not word:
                    continue
                for gram in analyze(chunk):
                    col = block.vocabulary.get(gram)
                    if col is not None:
                        char_share[block.offset + col].append(word)
        spans = token_spans(text)
        result: dict[str, tuple[Evidence, ...]] = {}
        for j, label in enumerate(self.labels):
            weights: dict[str, float] = defaultdict(float)
            for col, value in zip(columns.tolist(), values.tolist(), strict=True):
                contribution = value * float(view.coef[j, col])
                block, term = view.term(col)
                if block.kind == "word":
                    weights[term] += contribution
                elif col in char_share:
                    owners = char_share[col]
                    for word in owners:
                        weights[word] += contribution / len(owners)
            top = sorted((w for w in weights.items() if w[1] > 0), key=lambda w: -w[1])[:k]
            result[label] = tuple(
                Evidence(term, round(float(weight), 6), tuple(find_term(spans, term)))
                for term, weight in top
            )
        return result

    def classify_document(self, text: str, max_chars: int = DEFAULT_MAX_CHARS) -> DocumentResult:
        """Split a document into passages, label each, and aggregate.

        Args:
            text: The whole document.
            max_chars: Longest passage before a paragraph is cut into sentence windows.

        Returns:
            Per-passage results with offsets, and the document-level labels and scores.

        Raises:
            EmptyTextError: The document is empty or white space only.
        """
        _check_texts([text])
        passages = split_passages(text, max_chars)
        predictions = self.predict([p.text for p in passages])
        scores = {label: max(p.scores[label] for p in predictions) for label in self.labels}
        labels = tuple(
            sorted({label for p in predictions for label in p.labels}, key=lambda lb: -scores[lb])
        )
        warnings = (WARN_NOT_ARABIC,) if arabic_ratio(text) < MIN_ARABIC_RATIO else ()
        return DocumentResult(
            passages=tuple(
                PassageResult(p, pred) for p, pred in zip(passages, predictions, strict=True)
            ),
            labels=labels,
            scores=scores,
            primary=labels[0] if labels else None,
            warnings=warnings,
        )
