"""Fit TF-IDF vectorisers on any subset of documents from one shared pass of term counting.

Fitting a :class:`~sklearn.feature_extraction.text.TfidfVectorizer` analyses every document
again, and cross-validation fits it once per fold: at 64k passages that analysis is most of the
cost of training. A document's term counts do not depend on the other documents, so the corpus
is counted once, keeping every term; a fold's vectoriser is then the same column selection
(``min_df``, ``max_df``, ``max_features``) and inverse document frequencies that scikit-learn's
own ``fit`` would compute from that fold's rows. ``tests/test_termcounts.py`` pins the result to
scikit-learn's ``fit`` and ``transform``: same vocabulary, same idf, same matrices.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Integral
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from sklearn.base import clone
from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer, TfidfVectorizer

from classifier.features import CharWbNgrams, word_char_ngrams


@dataclass(frozen=True, slots=True)
class TermCounts:
    """Counts of every term of every document, for one vectoriser's analyser.

    Attributes:
        template: The unfitted vectoriser whose analyser and limits apply.
        counts: ``(documents, terms)`` CSR matrix of raw counts, in the template's dtype.
        terms: All terms seen, sorted (scikit-learn's column order).
    """

    template: TfidfVectorizer
    counts: sp.csr_matrix
    terms: NDArray[np.str_]


@dataclass(frozen=True, slots=True)
class FittedTfidf:
    """A vectoriser fitted on some rows of a :class:`TermCounts`.

    Attributes:
        columns: Indices into ``TermCounts.terms`` of the kept terms, in vocabulary order.
        transformer: The fitted TF-IDF weighting of those columns.
    """

    columns: NDArray[np.intp]
    transformer: TfidfTransformer


def count_terms(template: TfidfVectorizer, documents: Sequence[str]) -> TermCounts:
    """Count every term of every document once.

    Args:
        template: An unfitted vectoriser (its analyser, n-gram range and dtype are used; its
            limits are applied later, per subset).
        documents: The documents, already normalised as the pipeline feeds them.

    Returns:
        The counts of all terms (no ``min_df``, ``max_df`` or ``max_features`` yet).
    """
    if isinstance(template.analyzer, CharWbNgrams) and not template.binary:
        matrix, terms = _count_char_wb(template.analyzer, documents, template.dtype)
        return TermCounts(template, matrix, terms)
    names = CountVectorizer().get_params().keys()
    params = {k: v for k, v in template.get_params(deep=False).items() if k in names}
    params.update(min_df=1, max_df=1.0, max_features=None)
    counter = CountVectorizer(**params)
    matrix = sp.csr_matrix(counter.fit_transform(documents))
    # Canonical order within rows, whichever way the counts were made: sums over a row (the
    # l2 norm) then round the same.
    matrix.sort_indices()
    return TermCounts(template, matrix, counter.get_feature_names_out())


def _count_char_wb(
    analyzer: CharWbNgrams, documents: Sequence[str], dtype: Any
) -> tuple[sp.csr_matrix, NDArray[np.str_]]:
    """``CountVectorizer(analyzer=CharWbNgrams(...)).fit_transform``, a word at a time.

    A document's character n-grams are those of its words, and words repeat: each distinct
    word's n-gram columns are found once, so a document costs a few array operations instead of
    a Python step per n-gram (scikit-learn's counting loop was most of a 64k-passage fit).
    """
    lo, hi = analyzer.ngram_range
    vocabulary: dict[str, int] = {}
    word_columns: dict[str, NDArray[np.int64]] = {}
    indptr = np.zeros(len(documents) + 1, dtype=np.int64)
    rows_cols: list[NDArray[np.int64]] = []
    rows_counts: list[NDArray[np.int64]] = []
    for i, document in enumerate(documents):
        parts = []
        for word in document.split():
            cols = word_columns.get(word)
            if cols is None:
                grams = word_char_ngrams(word, lo, hi)
                cols = np.fromiter(
                    (vocabulary.setdefault(g, len(vocabulary)) for g in grams),
                    dtype=np.int64,
                    count=len(grams),
                )
                word_columns[word] = cols
            parts.append(cols)
        if parts:
            cols, counts = np.unique(np.concatenate(parts), return_counts=True)
        else:
            cols = counts = np.zeros(0, dtype=np.int64)
        rows_cols.append(cols)
        rows_counts.append(counts)
        indptr[i + 1] = indptr[i] + len(cols)
    # Columns in sorted term order, as scikit-learn numbers them.
    terms = np.asarray(list(vocabulary), dtype=object)
    order = np.argsort(terms, kind="stable") if len(terms) else np.zeros(0, dtype=np.int64)
    new_index = np.empty(len(terms), dtype=np.int64)
    new_index[order] = np.arange(len(terms))
    indices = new_index[np.concatenate(rows_cols)] if rows_cols else np.zeros(0, dtype=np.int64)
    data = np.concatenate(rows_counts) if rows_counts else np.zeros(0, dtype=np.int64)
    index_dtype = np.int32 if indptr[-1] < np.iinfo(np.int32).max else np.int64
    matrix = sp.csr_matrix(
        (data.astype(dtype), indices.astype(index_dtype), indptr.astype(index_dtype)),
        shape=(len(documents), len(terms)),
    )
    matrix.sort_indices()
    return matrix, np.asarray(terms[order], dtype=str)


def _kept_columns(counts: sp.csr_matrix, template: TfidfVectorizer) -> NDArray[np.intp]:
    """The columns ``template.fit`` keeps on these rows (mirrors ``CountVectorizer``'s limits)."""
    n_doc = counts.shape[0]
    max_df, min_df = template.max_df, template.min_df
    high = max_df if isinstance(max_df, Integral) else max_df * n_doc
    low = min_df if isinstance(min_df, Integral) else min_df * n_doc
    if high < low:
        raise ValueError("max_df corresponds to < documents than min_df")
    dfs = np.diff(sp.csc_matrix(counts).indptr)
    # Terms absent from these rows are not in a vectoriser fitted on them, whatever min_df says.
    mask = (dfs <= high) & (dfs >= max(low, 1))
    limit = template.max_features
    if limit is not None and mask.sum() > limit:
        tfs = np.asarray(counts.sum(axis=0)).ravel()
        # The same argsort on the same array as scikit-learn: ties resolve identically.
        chosen = (-tfs[mask]).argsort()[:limit]
        new_mask = np.zeros(len(dfs), dtype=bool)
        new_mask[np.where(mask)[0][chosen]] = True
        mask = new_mask
    columns = np.flatnonzero(mask)
    if columns.size == 0:
        raise ValueError("After pruning, no terms remain. Try a lower min_df or a higher max_df.")
    return columns


def fit_tfidf(counts: TermCounts, rows: NDArray[np.intp] | None = None) -> FittedTfidf:
    """Fit the template's TF-IDF on some rows, as ``template.fit(documents[rows])`` would.

    Args:
        counts: The shared counts.
        rows: Row indices of the fitting documents (all rows when None).

    Returns:
        The kept columns and the fitted weighting.
    """
    sub = counts.counts if rows is None else counts.counts[rows]
    columns = _kept_columns(sub, counts.template)
    t = counts.template
    transformer = TfidfTransformer(
        norm=t.norm, use_idf=t.use_idf, smooth_idf=t.smooth_idf, sublinear_tf=t.sublinear_tf
    )
    transformer.fit(sub[:, columns])
    return FittedTfidf(columns, transformer)


def transform_rows(
    counts: TermCounts, fitted: FittedTfidf, rows: NDArray[np.intp] | None = None
) -> sp.csr_matrix:
    """TF-IDF features of some rows, as the fitted vectoriser's ``transform`` gives them.

    Args:
        counts: The shared counts.
        fitted: A weighting fitted by :func:`fit_tfidf`.
        rows: Row indices (all rows when None).

    Returns:
        ``(len(rows), len(fitted.columns))`` CSR matrix.
    """
    sub = counts.counts if rows is None else counts.counts[rows]
    return sp.csr_matrix(fitted.transformer.transform(sub[:, fitted.columns], copy=False))


def to_vectorizer(counts: TermCounts, fitted: FittedTfidf) -> TfidfVectorizer:
    """A stock fitted ``TfidfVectorizer`` equal to the template fitted on the same rows.

    Args:
        counts: The shared counts.
        fitted: A weighting fitted by :func:`fit_tfidf`.

    Returns:
        A clone of the template with ``vocabulary_`` and ``idf_`` set (both public, settable
        attributes of scikit-learn's vectoriser); it pickles and transforms like a fitted one.
    """
    vectorizer: TfidfVectorizer = clone(counts.template)
    terms = counts.terms[fitted.columns]
    vectorizer.vocabulary_ = {str(term): i for i, term in enumerate(terms)}
    vectorizer.idf_ = fitted.transformer.idf_
    return vectorizer
