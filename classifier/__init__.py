"""Arabic narrative classifier: preprocessing, features, model, persistence.

This package depends on scikit-learn, joblib and camel-tools only; tracking and serving live in
``training`` and ``service``. Importing it does not import scikit-learn: fitting does, and so
does loading a model that has no scorer (see :mod:`classifier.linear`); the pipeline builder is
in :mod:`classifier.pipeline`.
"""

from classifier.artifact import Manifest, load_model, read_manifest, save_model
from classifier.config import ModelConfig
from classifier.errors import (
    ClassifierError,
    EmptyTextError,
    ModelLoadError,
    NotFittedError,
    TrainingDataError,
)
from classifier.model import (
    DocumentResult,
    Evidence,
    NarrativeClassifier,
    PassageResult,
    Prediction,
    tune_thresholds,
)
from classifier.segment import Passage, split_passages

__all__ = [
    "ClassifierError",
    "DocumentResult",
    "EmptyTextError",
    "Evidence",
    "Manifest",
    "ModelConfig",
    "ModelLoadError",
    "NarrativeClassifier",
    "NotFittedError",
    "Passage",
    "PassageResult",
    "Prediction",
    "TrainingDataError",
    "load_model",
    "read_manifest",
    "save_model",
    "split_passages",
    "tune_thresholds",
]
