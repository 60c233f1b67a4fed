"""Hyper-parameter search: candidates cross-validated in parallel, logged as child runs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

import numpy as np
from joblib import Parallel, delayed

from classifier import ModelConfig, NarrativeClassifier
from training import tracking
from training.config import TrainConfig
from training.data import Dataset
from training.evaluation import binarize, score_arrays


@dataclass(frozen=True)
class CandidateResult:
    """Cross-validated quality of one configuration."""

    config: ModelConfig
    macro_f1: float
    micro_f1: float
    none_fpr: float
    seconds: float


def candidate_grid(base: ModelConfig) -> list[ModelConfig]:
    """The configurations tried by ``--search``: regularisation, n-gram ranges and feature sets."""
    grid = []
    for c in (1.0, 3.0, 10.0, 30.0):
        for word in ((1, 1), (1, 2)):
            for use_char, char in ((False, base.char_ngrams), (True, (2, 5)), (True, (3, 6))):
                grid.append(
                    replace(base, c=c, word_ngrams=word, use_char=use_char, char_ngrams=char)
                )
    return grid


def score_candidate(
    config: ModelConfig, texts: list[str], label_sets: list[list[str]]
) -> CandidateResult:
    """Cross-validate one configuration (thresholds tuned inside, scored out of fold).

    Args:
        config: The configuration.
        texts: Training passages.
        label_sets: Their labels.

    Returns:
        Its cross-validated scores.
    """
    import time

    started = time.perf_counter()
    clf = NarrativeClassifier(config).fit(texts, label_sets)
    assert clf.oof_scores is not None
    y = binarize(label_sets, clf.labels)
    cut = np.array([clf.thresholds[label] for label in clf.labels])
    ev = score_arrays(y, (clf.oof_scores >= cut).astype(int), clf.labels)
    return CandidateResult(
        config, ev.macro_f1, ev.micro_f1, ev.none_false_positive_rate, time.perf_counter() - started
    )


def _score_on_dask(
    address: str,
    candidates: list[ModelConfig],
    train: Dataset,
    progress: Callable[[str], None],
) -> list[CandidateResult]:
    """Score the candidates on the Dask cluster at ``address`` through joblib's Dask backend."""
    from joblib import parallel_config

    from training.cluster import connect

    texts, label_sets = train.texts, train.label_sets
    with connect(address) as client:
        workers = len(client.nthreads())
        progress(f"scoring {len(candidates)} candidates on the Dask cluster at {address}")
        tracking.log_params({"search.backend": "dask", "search.dask_workers": workers})
        # Scattered once to every worker instead of being sent with each candidate.
        with parallel_config(backend="dask", scatter=[texts, label_sets]):
            results: list[CandidateResult] = Parallel(n_jobs=-1)(
                delayed(score_candidate)(c, texts, label_sets) for c in candidates
            )
    return results


def run_search(
    config: TrainConfig,
    train: Dataset,
    progress: Callable[[str], None],
    grid: list[ModelConfig] | None = None,
) -> ModelConfig:
    """Score every candidate in parallel, log each as a nested run, return the best configuration.

    Candidates are scored in worker processes (joblib), or on a Dask cluster when
    ``config.scheduler`` is set; MLflow logging stays in this process because an active run does
    not cross process boundaries.

    Args:
        config: The training configuration (``n_jobs`` sets the local parallelism,
            ``scheduler`` the Dask cluster to use instead).
        train: Training passages (the held-out split is never seen here).
        progress: Progress callback.
        grid: Candidates (default :func:`candidate_grid` of ``config.model``).

    Returns:
        The configuration with the best cross-validated macro-F1.
    """
    candidates = grid or candidate_grid(config.model)
    if config.scheduler:
        results = _score_on_dask(config.scheduler, candidates, train, progress)
    else:
        progress(f"scoring {len(candidates)} candidates with {config.n_jobs} job(s)")
        results = Parallel(n_jobs=config.n_jobs)(
            delayed(score_candidate)(c, train.texts, train.label_sets) for c in candidates
        )
    for i, result in enumerate(results):
        with tracking.start_run(config.experiment, f"candidate-{i:02d}", nested=True):
            tracking.log_params({f"model.{k}": v for k, v in asdict(result.config).items()})
            tracking.log_metrics(
                {
                    "cv_macro_f1": result.macro_f1,
                    "cv_micro_f1": result.micro_f1,
                    "cv_none_fpr": result.none_fpr,
                    "fit_seconds": result.seconds,
                }
            )
    best = max(results, key=lambda r: (r.macro_f1, -r.none_fpr))
    tracking.log_metrics(
        {"search_best_cv_macro_f1": best.macro_f1, "search_candidates": len(results)}
    )
    return best.config
