"""A temporary MLflow registry for the service tests: a SQLite store, models logged the way
training logs them (a pyfunc whose ``classifier`` artifact is the saved model folder)."""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import pytest

NAME = "narrative-classifier"
ALIAS = "champion"


class _Pyfunc(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
    """Stands in for training's pyfunc: the service only reads its artifacts."""

    def predict(self, context: Any, model_input: list[Any], params: Any = None) -> list[Any]:
        return model_input


@functools.cache
def _empty_store() -> Path:
    """An empty, migrated SQLite store, made once per session (migrating takes seconds)."""
    folder = Path(tempfile.mkdtemp(prefix="narratives-store-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    db = folder / "mlflow.db"
    mlflow.MlflowClient(f"sqlite:///{db}").search_experiments()
    return db


@dataclass(frozen=True)
class Registry:
    """A SQLite MLflow store under a test's temporary folder."""

    tracking_uri: str
    experiment_id: str
    client: Any

    @classmethod
    def create(cls, root: Path, monkeypatch: pytest.MonkeyPatch) -> Registry:
        """Create the store; ``mlflow.start_run`` finds it through MLFLOW_TRACKING_URI.

        The environment variable (not mlflow.set_tracking_uri) keeps mlflow's global state clean
        for other tests; the service itself is always given the URI explicitly.
        """
        shutil.copy(_empty_store(), root / "mlflow.db")
        tracking_uri = f"sqlite:///{root / 'mlflow.db'}"
        monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_uri)
        monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        client = mlflow.MlflowClient(tracking_uri)
        experiment_id = client.create_experiment(
            "service-test", artifact_location=(root / "artifacts").as_uri()
        )
        return cls(tracking_uri, experiment_id, client)

    def register(self, folder: Path, champion: bool = True) -> tuple[str, str]:
        """Log ``folder`` as artifacts={"classifier": folder}, register it; (version, run id)."""
        with mlflow.start_run(experiment_id=self.experiment_id) as run:
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=_Pyfunc(),
                artifacts={"classifier": str(folder)},
                pip_requirements=["scikit-learn"],
                registered_model_name=NAME,
            )
        version = str(info.registered_model_version)
        if champion:
            self.set_champion(version)
        return version, run.info.run_id

    def set_champion(self, version: str) -> None:
        """Point the champion alias at ``version``."""
        self.client.set_registered_model_alias(NAME, ALIAS, version)
