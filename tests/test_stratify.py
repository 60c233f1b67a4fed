from __future__ import annotations

import numpy as np

from classifier.stratify import MultilabelStratifiedKFold, stratified_holdout


def _labels(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y = (rng.random((300, 3)) < [0.1, 0.3, 0.2]).astype(int)
    return y


def test_folds_partition_and_balance() -> None:
    y = _labels()
    cv = MultilabelStratifiedKFold(5, seed=1)
    seen = np.zeros(len(y), dtype=int)
    for train, test in cv.split(None, y):
        assert len(set(train) & set(test)) == 0
        seen[test] += 1
        # each fold holds about a fifth of every label (within two examples)
        for j in range(y.shape[1]):
            assert abs(y[test, j].sum() - y[:, j].sum() / 5) <= 2
    assert (seen == 1).all()


def test_holdout_keeps_rare_label_on_both_sides() -> None:
    y = np.zeros((50, 2), dtype=int)
    y[:5, 0] = 1
    y[5:30, 1] = 1
    train, test = stratified_holdout(y, test_size=0.2, seed=0)
    assert y[test, 0].sum() == 1 and y[train, 0].sum() == 4
    assert len(test) == 10
