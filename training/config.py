"""Typed, frozen configuration of a training run; the CLI builds one from its options."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from classifier import ModelConfig

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SEEDS_DIR = PROJECT_ROOT / "seeds"
DEFAULT_DATA = SEEDS_DIR / "corpus.jsonl"
DEFAULT_LABEL_DEFINITIONS = SEEDS_DIR / "labels.json"
DEFAULT_EXPERIMENT = "narratives"


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides what a training run does.

    Attributes:
        data: Labelled JSONL/CSV files.
        experiment: MLflow experiment name.
        model_name: Registered model name.
        model: Pipeline hyper-parameters.
        test_size: Share of passages held out for evaluation and the promotion gate.
        seed: Seed of the split and the folds.
        register: Register the model (and consider it for promotion).
        force: Promote even when the new model does not beat the champion.
        search: Run a hyper-parameter search first (nested runs).
        min_label_count: Fewest passages per label accepted.
        tracking_uri: MLflow store; None means ``MLFLOW_TRACKING_URI`` or the embedded store.
        n_jobs: Parallel jobs for cross-validation and search (joblib semantics).
        scheduler: Dask scheduler address: the search runs on that cluster (joblib's Dask
            backend) instead of local processes.
        label_definitions: JSON file mapping each label to its definition (shipped with the model).
        run_name: Display name of the run.
    """

    data: tuple[Path, ...] = (DEFAULT_DATA,)
    experiment: str = DEFAULT_EXPERIMENT
    model_name: str = "narrative-classifier"
    model: ModelConfig = field(default_factory=ModelConfig)
    test_size: float = 0.2
    seed: int = 0
    register: bool = True
    force: bool = False
    search: bool = False
    min_label_count: int = 5
    tracking_uri: str | None = None
    n_jobs: int = 1
    scheduler: str | None = None
    label_definitions: Path | None = DEFAULT_LABEL_DEFINITIONS
    run_name: str | None = None

    def with_overrides(self, **changes: Any) -> TrainConfig:
        """A copy with some fields replaced (``None`` values are ignored)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})
