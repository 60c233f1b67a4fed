"""Multi-label stratified splitting (iterative stratification, Sechidis et al., 2011).

Plain stratified K-fold sees one target; with several labels a passage set split at random can leave
a rare label out of a fold. Iterative stratification assigns the rarest label's examples first, each
to the fold that still wants most of that label.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from numpy.typing import NDArray


def _with_none_column(y: NDArray[np.int_]) -> NDArray[np.int_]:
    # Passages with no label are balanced across folds like a label of their own.
    none = (y.sum(axis=1) == 0).astype(y.dtype)[:, None]
    return np.hstack([y, none])


def iterative_fold_ids(y: NDArray[np.int_], ratios: list[float], seed: int = 0) -> NDArray[np.int_]:
    """Assign each row of a binary label matrix to a fold.

    Args:
        y: Binary indicator matrix, one row per example, one column per label.
        ratios: Wanted share of the examples per fold; they should sum to 1.
        seed: Seed for tie-breaking.

    Returns:
        The fold index of each example.
    """
    rng = np.random.default_rng(seed)
    y = _with_none_column(np.asarray(y, dtype=np.int_))
    n = y.shape[0]
    r = np.asarray(ratios, dtype=float)
    want = r * n
    want_label = np.outer(r, y.sum(axis=0)).astype(float)
    fold = np.full(n, -1, dtype=np.int_)
    remaining = y.astype(bool).copy()
    while True:
        counts = remaining.sum(axis=0)
        live = np.flatnonzero(counts > 0)
        if live.size == 0:
            break
        label = live[np.argmin(counts[live])]
        rows = np.flatnonzero(remaining[:, label])
        rng.shuffle(rows)
        for row in rows:
            scores = want_label[:, label]
            best = np.flatnonzero(scores == scores.max())
            if best.size > 1:
                best = best[want[best] == want[best].max()]
            chosen = int(rng.choice(best))
            fold[row] = chosen
            want[chosen] -= 1
            want_label[chosen] -= y[row]
            remaining[row] = False
    return fold


class MultilabelStratifiedKFold:
    """K-fold cross-validator that keeps every label's share about equal across folds.

    Follows scikit-learn's splitter protocol, so it can be passed as ``cv=`` anywhere.

    Args:
        n_splits: Number of folds.
        seed: Seed for tie-breaking.
    """

    def __init__(self, n_splits: int = 5, seed: int = 0) -> None:
        if n_splits < 2:
            raise ValueError("n_splits must be at least 2")
        self.n_splits = n_splits
        self.seed = seed

    def get_n_splits(self, X: object = None, y: object = None, groups: object = None) -> int:
        """Return the number of folds (scikit-learn splitter protocol)."""
        return self.n_splits

    def split(
        self,
        X: object,
        y: NDArray[np.int_],
        groups: object = None,
    ) -> Iterator[tuple[NDArray[np.int_], NDArray[np.int_]]]:
        """Yield ``(train_indices, test_indices)`` for each fold.

        Args:
            X: Ignored; present for the scikit-learn protocol.
            y: Binary label indicator matrix.
            groups: Ignored.

        Yields:
            Index arrays of the training and test rows of each fold.
        """
        folds = iterative_fold_ids(np.asarray(y), [1.0 / self.n_splits] * self.n_splits, self.seed)
        for k in range(self.n_splits):
            yield np.flatnonzero(folds != k), np.flatnonzero(folds == k)


def stratified_holdout(
    y: NDArray[np.int_], test_size: float = 0.2, seed: int = 0
) -> tuple[NDArray[np.int_], NDArray[np.int_]]:
    """Split rows into a training and a held-out set, stratified over every label.

    Args:
        y: Binary label indicator matrix.
        test_size: Share of rows held out.
        seed: Seed for tie-breaking.

    Returns:
        Index arrays of the training rows and the held-out rows.
    """
    folds = iterative_fold_ids(np.asarray(y), [1.0 - test_size, test_size], seed)
    return np.flatnonzero(folds == 0), np.flatnonzero(folds == 1)
