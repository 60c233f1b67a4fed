"""The champion's life: make sure one exists, promote by hand, load a model, evaluate it."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from classifier.artifact import MANIFEST_FILE
from training import tracking
from training.config import TrainConfig

# Training, evaluation and plotting (scikit-learn, matplotlib) are imported where they are used:
# `narratives serve` calls ensure_champion, which needs none of them when a champion exists.
if TYPE_CHECKING:
    from classifier import NarrativeClassifier
    from training.evaluation import Evaluation
    from training.train import Progress


def _noop(_: str) -> None:
    return None


def ensure_champion(config: TrainConfig, progress: Progress = _noop) -> tracking.ModelRef:
    """Return the champion, training and registering the default model first when there is none.

    Args:
        config: Used only when a model must be trained (normally the seed corpus defaults).
        progress: Progress callback.

    Returns:
        The champion version.
    """
    tracking.configure(config.tracking_uri)
    champion = tracking.get_alias(config.model_name)
    if champion is not None:
        return champion
    from training.train import train

    progress("no champion registered: training the default model from seeds/")
    outcome = train(
        config.with_overrides(register=True, force=True, run_name="default-from-seeds"), progress
    )
    assert outcome.model is not None
    return outcome.model


def promote(version: str, model_name: str, tracking_uri: str | None = None) -> tracking.ModelRef:
    """Move the champion alias to ``version`` by hand.

    Raises:
        TrackingError: The version does not exist.
    """
    tracking.configure(tracking_uri)
    ref = tracking.get_version(model_name, version)
    tracking.set_alias(ref)
    tracking.set_version_tags(ref, {"promotion": "promoted by hand"})
    return ref


def resolve_model(
    model_uri: str | None, model_name: str, tracking_uri: str | None = None
) -> NarrativeClassifier:
    """Load a model: a ``models:/`` or ``runs:/`` URI, or by default the champion.

    Raises:
        TrackingError: No champion, or the URI cannot be downloaded.
    """
    tracking.configure(tracking_uri)
    if model_uri:
        return tracking.load_registered(model_uri)
    champion = tracking.get_alias(model_name)
    if champion is None:
        raise tracking.TrackingError(
            f"no champion for {model_name!r}: run `narratives train` first or pass --model"
        )
    return tracking.load_registered(champion)


def fetch_model(
    model: str | None, model_name: str, dest: Path, tracking_uri: str | None = None
) -> tuple[Path, str]:
    """Find a model's classifier folder: a local folder as is, else downloaded once into ``dest``.

    Args:
        model: A model folder written by :func:`classifier.save_model`, a ``models:/`` or
            ``runs:/`` URI, or None for the champion of ``model_name``.
        model_name: Registered model name (for the champion).
        dest: An existing folder to download into.
        tracking_uri: MLflow store.

    Returns:
        The classifier folder (not yet loaded) and a short description of the model.

    Raises:
        TrackingError: No champion, or the URI cannot be downloaded.
    """
    if model and (Path(model) / MANIFEST_FILE).is_file():
        return Path(model), str(model)
    tracking.configure(tracking_uri)
    if model:
        return tracking.download_classifier(model, dest), model
    champion = tracking.get_alias(model_name)
    if champion is None:
        raise tracking.TrackingError(
            f"no champion for {model_name!r}: run `narratives train` first or pass --model"
        )
    described = f"{champion.name} v{champion.version} ({tracking.CHAMPION_ALIAS})"
    return tracking.download_classifier(champion, dest), described


def evaluate_model(
    data: list[Path],
    model_uri: str | None,
    config: TrainConfig,
) -> Evaluation:
    """Evaluate a model on labelled data and log the result as an evaluation run.

    Args:
        data: Labelled JSONL/CSV files (validated like training data).
        model_uri: Model to evaluate (default: the champion).
        config: Experiment, model name and store.

    Returns:
        The evaluation.
    """
    from training import reports
    from training.data import load_dataset
    from training.evaluation import evaluate
    from training.train import git_commit

    dataset = load_dataset(data, min_label_count=1)
    clf = resolve_model(model_uri, config.model_name, config.tracking_uri)
    scored = evaluate(clf, dataset.texts, dataset.label_sets)
    tags = {"kind": "evaluate", "data_digest": dataset.digest, "git_commit": git_commit()}
    target = model_uri or f"models:/{config.model_name}@{tracking.CHAMPION_ALIAS}"
    with tracking.start_run(config.experiment, f"evaluate {Path(data[0]).name}", tags=tags):
        tracking.log_params({"model_uri": target, "data.files": ",".join(map(str, data))})
        tracking.log_dataset(
            dataset.texts, dataset.label_sets, dataset.name, dataset.digest, "evaluation"
        )
        tracking.log_metrics(scored.evaluation.as_metrics())
        with tempfile.TemporaryDirectory(prefix="narratives-eval-") as tmp:
            folder = Path(tmp)
            reports.plot_confusion_matrices(scored, folder / "confusion_matrices.png")
            reports.plot_pr_curves(scored, clf.thresholds, folder / "precision_recall.png")
            reports.plot_f1(scored, folder / "f1_per_label.png")
            reports.write_misclassified(
                scored, [r.id for r in dataset.records], dataset.texts, folder / "misclassified.csv"
            )
            tracking.log_artifacts(folder, "reports")
    return scored.evaluation
