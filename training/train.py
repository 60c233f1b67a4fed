"""A training run end to end: validate, split, fit, evaluate, track, register, promote."""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from classifier import NarrativeClassifier, save_model
from classifier.stratify import stratified_holdout
from training import reports, tracking
from training.config import PROJECT_ROOT, TrainConfig
from training.data import Dataset, DataValidationError, Problem, digest_records, load_dataset
from training.evaluation import Evaluation, Scored, binarize, evaluate, score_arrays

Progress = Callable[[str], None]


@dataclass(frozen=True)
class PromotionDecision:
    """Whether the new version took the champion alias, and why."""

    promoted: bool
    reason: str
    champion_before: tracking.ModelRef | None
    champion_macro_f1: float | None


@dataclass(frozen=True)
class TrainOutcome:
    """What a training run produced."""

    run_id: str
    evaluation: Evaluation
    cv_macro_f1_mean: float
    cv_macro_f1_std: float
    model: tracking.ModelRef | None
    decision: PromotionDecision | None
    config: TrainConfig


def _noop(_: str) -> None:
    return None


def git_commit() -> str:
    """The project's current git commit, or ``unknown`` outside a checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"


def load_label_definitions(path: Path | None) -> dict[str, str]:
    """Read ``{label: definition}`` from JSON (None: no definitions, any label accepted).

    Raises:
        DataValidationError: The file is missing or not a JSON object of strings.
    """
    if path is None:
        return {}
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataValidationError(
            [Problem(str(path), 0, f"{path}: cannot read label definitions: {exc}")]
        ) from exc
    if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
        raise DataValidationError(
            [Problem(str(path), 0, f"{path}: label definitions must map each label to a string")]
        )
    return {str(k): v for k, v in raw.items()}


def cv_spread(clf: NarrativeClassifier, y: np.ndarray) -> tuple[float, float]:
    """Mean and standard deviation of macro-F1 over the cross-validation folds."""
    assert clf.oof_scores is not None and clf.fold_ids is not None
    thresholds = np.array([clf.thresholds[label] for label in clf.labels])
    pred = (clf.oof_scores >= thresholds).astype(int)
    per_fold = [
        score_arrays(y[clf.fold_ids == k], pred[clf.fold_ids == k], clf.labels).macro_f1
        for k in np.unique(clf.fold_ids)
    ]
    return float(np.mean(per_fold)), float(np.std(per_fold))


def decide_promotion(
    config: TrainConfig, new: Evaluation, holdout: Dataset, labels: tuple[str, ...]
) -> PromotionDecision:
    """Compare the new model with the current champion on the same held-out passages.

    Args:
        config: The run's configuration (``force`` skips the comparison).
        new: The new model's held-out evaluation.
        holdout: The held-out passages.
        labels: Labels to compare over (the new model's).

    Returns:
        The decision and its reason.
    """
    champion = tracking.get_alias(config.model_name)
    if champion is None:
        return PromotionDecision(True, "no champion yet", None, None)
    try:
        champ_clf = tracking.load_registered(champion)
        champ = evaluate(champ_clf, holdout.texts, holdout.label_sets, labels).evaluation
    except Exception as exc:  # a broken champion must not block a good new model
        if config.force:
            return PromotionDecision(True, f"forced; champion unusable ({exc})", champion, None)
        return PromotionDecision(
            True, f"champion v{champion.version} cannot be evaluated: {exc}", champion, None
        )
    if config.force:
        reason = (
            f"forced (new macro-F1 {new.macro_f1:.4f} vs champion v{champion.version}"
            f" {champ.macro_f1:.4f})"
        )
        return PromotionDecision(True, reason, champion, champ.macro_f1)
    if new.macro_f1 > champ.macro_f1:
        reason = (
            f"new macro-F1 {new.macro_f1:.4f} beats champion v{champion.version}"
            f" {champ.macro_f1:.4f} on the same {len(holdout)} held-out passages"
        )
        return PromotionDecision(True, reason, champion, champ.macro_f1)
    reason = (
        f"new macro-F1 {new.macro_f1:.4f} does not beat champion v{champion.version}"
        f" {champ.macro_f1:.4f} on the same {len(holdout)} held-out passages"
    )
    return PromotionDecision(False, reason, champion, champ.macro_f1)


def _subset(ds: Dataset, idx: np.ndarray, suffix: str) -> Dataset:
    records = tuple(ds.records[i] for i in idx)
    counts: dict[str, int] = {}
    for r in records:
        for label in r.labels:
            counts[label] = counts.get(label, 0) + 1
    counts = dict(sorted(counts.items()))
    counts["(none)"] = sum(1 for r in records if not r.labels)
    return Dataset(records, f"{ds.name}:{suffix}", digest_records(records), counts)


def train(config: TrainConfig, progress: Progress = _noop) -> TrainOutcome:
    """Run one tracked training run.

    The data are validated before anything touches the tracking store. The model is fitted on
    the training split, evaluated on the held-out split, logged with its reports, registered,
    and given the champion alias only if it beats the current champion on that split.

    Args:
        config: What to train and where to track it.
        progress: Called with a short message as each step starts.

    Returns:
        The run's outcome.

    Raises:
        DataValidationError: The data are invalid (nothing is logged).
    """
    progress("validating data")
    definitions = load_label_definitions(config.label_definitions)
    dataset = load_dataset(config.data, config.min_label_count, definitions or None)
    labels = dataset.labels
    y_all = binarize(dataset.label_sets, labels)
    train_idx, test_idx = stratified_holdout(y_all, config.test_size, config.seed)
    train_ds = _subset(dataset, train_idx, "train")
    holdout = _subset(dataset, test_idx, "holdout")

    tracking.configure(config.tracking_uri)
    tags = {"git_commit": git_commit(), "data_digest": dataset.digest, "kind": "train"}
    with tracking.start_run(config.experiment, config.run_name, tags=tags) as run_id:
        model_config = config.model
        if config.search:
            from training.search import run_search

            progress("searching hyper-parameters")
            model_config = run_search(config, train_ds, progress)
        tracking.log_params(
            {
                **{f"model.{k}": v for k, v in asdict(model_config).items()},
                "data.files": ",".join(str(p) for p in config.data),
                "data.size": len(dataset),
                "split.test_size": config.test_size,
                "split.seed": config.seed,
                "search": config.search,
            }
        )
        tracking.log_dataset(
            train_ds.texts, train_ds.label_sets, train_ds.name, train_ds.digest, "training"
        )
        tracking.log_dataset(
            holdout.texts, holdout.label_sets, holdout.name, holdout.digest, "evaluation"
        )
        tracking.log_metrics(
            {f"data.count_{k.strip('()')}": float(v) for k, v in dataset.label_counts.items()}
        )

        progress(f"fitting on {len(train_ds)} passages (cross-validating thresholds)")
        started = time.perf_counter()
        clf = NarrativeClassifier(model_config).fit(
            train_ds.texts, train_ds.label_sets, n_jobs=config.n_jobs
        )
        train_seconds = time.perf_counter() - started
        cv_mean, cv_std = cv_spread(clf, binarize(train_ds.label_sets, clf.labels))

        progress(f"evaluating on {len(holdout)} held-out passages")
        started = time.perf_counter()
        scored = evaluate(clf, holdout.texts, holdout.label_sets)
        predict_seconds = time.perf_counter() - started
        ev = scored.evaluation
        tracking.log_metrics(
            {
                **ev.as_metrics(),
                "cv_macro_f1_mean": cv_mean,
                "cv_macro_f1_std": cv_std,
                "train_seconds": train_seconds,
                "train_passages_per_second": len(train_ds) / max(train_seconds, 1e-9),
                "predict_passages_per_second": len(holdout) / max(predict_seconds, 1e-9),
                **{f"threshold_{k}": v for k, v in clf.thresholds.items()},
            }
        )

        progress("writing reports")
        trained_at = datetime.now(UTC).isoformat(timespec="seconds")
        with tempfile.TemporaryDirectory(prefix="narratives-run-") as tmp:
            report_dir = Path(tmp) / "reports"
            report_dir.mkdir()
            _write_reports(report_dir, scored, clf, holdout, config, dataset, cv_mean, cv_std)
            tracking.log_artifacts(report_dir, "reports")

            progress("logging the model")
            model_dir = Path(tmp) / "classifier"
            metadata = {
                "run_id": run_id,
                "trained_at": trained_at,
                "data_digest": dataset.digest,
                "data_name": dataset.name,
                "metrics": {k: round(v, 6) for k, v in ev.as_metrics().items()},
                "git_commit": tags["git_commit"],
            }
            save_model(clf, model_dir, definitions, metadata)
            ref = tracking.log_model(
                clf,
                model_dir,
                holdout.texts[:3],
                register_as=config.model_name if config.register else None,
            )

        decision = None
        if ref is not None:
            progress("comparing with the champion")
            decision = decide_promotion(config, ev, holdout, clf.labels)
            if decision.promoted:
                tracking.set_alias(ref)
            tracking.set_tags(
                {
                    "promotion.decision": "promoted" if decision.promoted else "kept champion",
                    "promotion.reason": decision.reason,
                }
            )
            if decision.champion_macro_f1 is not None:
                tracking.log_metrics({"champion_macro_f1": decision.champion_macro_f1})
            tracking.set_version_tags(
                ref,
                {
                    "macro_f1": f"{ev.macro_f1:.4f}",
                    "promotion": decision.reason,
                    "data_digest": dataset.digest,
                },
            )
    return TrainOutcome(run_id, ev, cv_mean, cv_std, ref, decision, config)


def _write_reports(
    folder: Path,
    scored: Scored,
    clf: NarrativeClassifier,
    holdout: Dataset,
    config: TrainConfig,
    dataset: Dataset,
    cv_mean: float,
    cv_std: float,
) -> None:
    reports.plot_confusion_matrices(scored, folder / "confusion_matrices.png")
    reports.plot_pr_curves(scored, clf.thresholds, folder / "precision_recall.png")
    reports.plot_f1(scored, folder / "f1_per_label.png")
    reports.write_misclassified(
        scored, [r.id for r in holdout.records], holdout.texts, folder / "misclassified.csv"
    )
    facts = {
        "model_name": config.model_name,
        "data": f"{dataset.name} ({len(dataset)} passages, digest {dataset.digest[:12]})",
        "label counts": ", ".join(f"{k}={v}" for k, v in dataset.label_counts.items()),
        "estimator": f"{clf.config.estimator}, C={clf.config.c}",
        "features": f"word {clf.config.word_ngrams} + char_wb {clf.config.char_ngrams}"
        if clf.config.use_char
        else f"word {clf.config.word_ngrams}",
        "thresholds": ", ".join(f"{k}={v:.3f}" for k, v in clf.thresholds.items()),
        "cross-validated macro-F1": f"{cv_mean:.3f} ± {cv_std:.3f}",
        "git commit": git_commit(),
    }
    reports.write_model_card(folder / "model_card.md", facts, scored)
