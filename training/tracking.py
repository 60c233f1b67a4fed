"""Everything that talks to MLflow: the store, runs, the logged model flavour and the registry.

The rest of ``training`` calls these functions and never imports mlflow itself, so the tracking
backend is swappable and the classifier stays free of it.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.data.pandas_dataset import from_pandas
from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from mlflow.pyfunc.model import PythonModel, PythonModelContext

from classifier import NarrativeClassifier, load_model
from classifier.artifact import library_versions

DEFAULT_STORE_FILE = "mlflow.db"
DEFAULT_ARTIFACT_DIR = "mlartifacts"
MODEL_NAME = "narrative-classifier"
CHAMPION_ALIAS = "champion"
CLASSIFIER_ARTIFACT = "classifier"


class TrackingError(Exception):
    """The tracking store or registry could not do what was asked."""


@dataclass(frozen=True, slots=True)
class ModelRef:
    """A registered model version."""

    name: str
    version: str
    run_id: str | None

    @property
    def uri(self) -> str:
        """The ``models:/`` URI of this version."""
        return f"models:/{self.name}/{self.version}"


def default_tracking_uri(workdir: str | Path | None = None) -> str:
    """The embedded store: a SQLite file in the working directory."""
    base = Path(workdir or Path.cwd()).resolve()
    return f"sqlite:///{base / DEFAULT_STORE_FILE}"


def configure(tracking_uri: str | None = None) -> str:
    """Point MLflow at a store: the argument, else ``MLFLOW_TRACKING_URI``, else the embedded one.

    Args:
        tracking_uri: Explicit store URI.

    Returns:
        The URI in use.
    """
    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri()
    # Our own progress output is enough; MLflow's per-file download bars drown it.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return uri


def _artifact_location(uri: str) -> str | None:
    # With the embedded SQLite store, keep artifacts beside the database, not in ./mlruns.
    if uri.startswith("sqlite:///"):
        db = Path(uri.removeprefix("sqlite:///"))
        return (db.parent / DEFAULT_ARTIFACT_DIR).resolve().as_uri()
    return None


def ensure_experiment(name: str) -> str:
    """Return the id of experiment ``name``, creating it when missing."""
    client = mlflow.MlflowClient()
    found = client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    location = _artifact_location(mlflow.get_tracking_uri())
    return str(client.create_experiment(name, artifact_location=location))


@contextmanager
def start_run(
    experiment: str,
    run_name: str | None = None,
    nested: bool = False,
    tags: Mapping[str, str] | None = None,
) -> Iterator[str]:
    """Open a run and yield its id; a failure inside marks the run FAILED and re-raises.

    Args:
        experiment: Experiment name (created when missing).
        run_name: Display name.
        nested: Whether this is a child of the active run.
        tags: Tags set when the run starts.

    Yields:
        The run id.
    """
    experiment_id = ensure_experiment(experiment)
    with mlflow.start_run(
        experiment_id=experiment_id, run_name=run_name, nested=nested, tags=dict(tags or {})
    ) as run:
        yield str(run.info.run_id)


def log_params(params: Mapping[str, Any]) -> None:
    """Log parameters of the active run."""
    mlflow.log_params({k: str(v) for k, v in params.items()})


def log_metrics(metrics: Mapping[str, float], step: int | None = None) -> None:
    """Log numeric metrics of the active run."""
    mlflow.log_metrics({k: float(v) for k, v in metrics.items()}, step=step)


def set_tags(tags: Mapping[str, str]) -> None:
    """Set tags on the active run."""
    mlflow.set_tags(dict(tags))


def log_artifacts(folder: Path, artifact_path: str | None = None) -> None:
    """Upload every file of ``folder`` to the active run."""
    mlflow.log_artifacts(str(folder), artifact_path=artifact_path)


def log_dataset(
    texts: Sequence[str], label_sets: Sequence[Sequence[str]], name: str, digest: str, context: str
) -> None:
    """Record a data set as an input of the active run (name, digest, size, schema)."""
    frame = pd.DataFrame({"text": list(texts), "labels": ["|".join(ls) for ls in label_sets]})
    dataset = from_pandas(frame, name=name, digest=digest[:36])
    mlflow.log_input(dataset, context=context)


class NarrativePyfunc(PythonModel):
    """MLflow pyfunc flavour: a DataFrame with a ``text`` column in; labels and scores out.

    The classifier folder (manifest, pipeline, scorer) travels as an artifact and is loaded through
    :func:`classifier.load_model`, so its checksums are verified before it is read.
    """

    def load_context(self, context: PythonModelContext) -> None:
        """Load the classifier from the model's artifacts."""
        self.classifier, _ = load_model(context.artifacts[CLASSIFIER_ARTIFACT])

    def predict(
        self,
        context: PythonModelContext,
        model_input: pd.DataFrame,
        params: dict[str, Any] | None = None,
    ) -> pd.DataFrame:
        """Label each row's ``text``.

        Args:
            context: MLflow context (unused).
            model_input: A frame with a ``text`` column (or a list of strings).
            params: Unused.

        Returns:
            One row per input: ``labels`` (list), ``primary`` and ``score_<label>`` per label.
        """
        if isinstance(model_input, pd.DataFrame):
            texts = model_input["text"].astype(str).tolist()
        else:
            texts = [str(t) for t in model_input]
        predictions = self.classifier.predict(texts)
        rows: list[dict[str, Any]] = []
        for p in predictions:
            row: dict[str, Any] = {"labels": list(p.labels), "primary": p.primary or ""}
            row.update({f"score_{label}": score for label, score in p.scores.items()})
            rows.append(row)
        return pd.DataFrame(rows)


def _pip_requirements() -> list[str]:
    versions = library_versions()
    pins = [f"{name}=={versions[name]}" for name in ("scikit-learn", "joblib", "camel-tools")]
    return [*pins, "pandas", f"mlflow=={mlflow.__version__}"]


def log_model(
    clf: NarrativeClassifier,
    model_dir: Path,
    example_texts: Sequence[str],
    register_as: str | None = MODEL_NAME,
) -> ModelRef | None:
    """Log the classifier as a pyfunc model of the active run, and register it.

    Args:
        clf: The fitted classifier (used to build the signature from real output).
        model_dir: Folder written by :func:`classifier.save_model`.
        example_texts: A few passages for the input example.
        register_as: Registered model name, or None not to register.

    Returns:
        The new registered version, or None when not registered.
    """
    example = pd.DataFrame({"text": list(example_texts)[:3]})
    output = NarrativePyfunc()
    output.classifier = clf
    signature = infer_signature(example, output.predict(None, example))  # type: ignore[arg-type]
    # MLflow warns that python_model is cloudpickled and that pip's version is unknown; the class
    # is pickled by reference and the classifier inside is checksum-verified, so keep output calm.
    pyfunc_logger = logging.getLogger("mlflow")
    level = pyfunc_logger.level
    pyfunc_logger.setLevel(logging.ERROR)
    try:
        info = _log_pyfunc(model_dir, signature, example, register_as)
    finally:
        pyfunc_logger.setLevel(level)
    if register_as is None:
        return None
    active = mlflow.active_run()
    return ModelRef(
        register_as, str(info.registered_model_version), active.info.run_id if active else None
    )


def _log_pyfunc(
    model_dir: Path, signature: Any, example: pd.DataFrame, register_as: str | None
) -> Any:
    return mlflow.pyfunc.log_model(
        name="model",
        python_model=NarrativePyfunc(),
        artifacts={CLASSIFIER_ARTIFACT: str(model_dir)},
        signature=signature,
        input_example=example,
        pip_requirements=_pip_requirements(),
        registered_model_name=register_as,
    )


def _is_missing(exc: MlflowException) -> bool:
    return exc.error_code in {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"}


def get_alias(name: str = MODEL_NAME, alias: str = CHAMPION_ALIAS) -> ModelRef | None:
    """The version an alias points at, or None when the model or alias does not exist."""
    try:
        mv = mlflow.MlflowClient().get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        if _is_missing(exc):
            return None
        raise TrackingError(f"cannot read alias {alias!r} of {name!r}: {exc.message}") from exc
    return ModelRef(name, str(mv.version), mv.run_id)


def get_version(name: str, version: str) -> ModelRef:
    """A registered version by number.

    Raises:
        TrackingError: The version does not exist.
    """
    try:
        mv = mlflow.MlflowClient().get_model_version(name, version)
    except MlflowException as exc:
        raise TrackingError(f"model {name!r} has no version {version!r}") from exc
    return ModelRef(name, str(mv.version), mv.run_id)


def set_alias(ref: ModelRef, alias: str = CHAMPION_ALIAS) -> None:
    """Point ``alias`` at ``ref``."""
    mlflow.MlflowClient().set_registered_model_alias(ref.name, alias, ref.version)


def set_version_tags(ref: ModelRef, tags: Mapping[str, str]) -> None:
    """Tag a registered version (e.g. with its evaluation score and promotion decision)."""
    client = mlflow.MlflowClient()
    for key, value in tags.items():
        client.set_model_version_tag(ref.name, ref.version, key, value)


def load_registered(ref_or_uri: ModelRef | str) -> NarrativeClassifier:
    """Download a registered model (or any ``models:/``/``runs:/`` URI) and load its classifier.

    Args:
        ref_or_uri: A :class:`ModelRef` or model URI.

    Returns:
        The verified classifier.
    """
    with tempfile.TemporaryDirectory(prefix="narratives-") as tmp:
        clf, _ = load_model(download_classifier(ref_or_uri, Path(tmp)))
    return clf


def download_classifier(ref_or_uri: ModelRef | str, dest: Path) -> Path:
    """Download a registered model (or ``models:/``/``runs:/`` URI) and find its classifier folder.

    Nothing is unpickled here: the folder is verified by :func:`classifier.load_model` wherever
    it is loaded.

    Args:
        ref_or_uri: A :class:`ModelRef` or model URI.
        dest: An existing folder to download into.

    Returns:
        The classifier folder (as written by :func:`classifier.save_model`) inside ``dest``.

    Raises:
        TrackingError: The URI cannot be downloaded.
    """
    uri = ref_or_uri.uri if isinstance(ref_or_uri, ModelRef) else ref_or_uri
    try:
        local = mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(dest))
    except MlflowException as exc:
        raise TrackingError(f"cannot download {uri}: {exc.message}") from exc
    return Path(local) / "artifacts" / CLASSIFIER_ARTIFACT


def get_run(run_id: str) -> Run:
    """A run by id."""
    return mlflow.get_run(run_id)


def recent_runs(experiment: str, limit: int = 20) -> pd.DataFrame:
    """The latest runs of an experiment, newest first, as a frame of params, metrics and tags."""
    client = mlflow.MlflowClient()
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return pd.DataFrame()
    frame = mlflow.search_runs(
        experiment_ids=[found.experiment_id], max_results=limit, order_by=["start_time DESC"]
    )
    assert isinstance(frame, pd.DataFrame)
    return frame
