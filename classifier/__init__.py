"""Arabic narrative classifier: preprocessing, features, model, persistence.

This package depends on scikit-learn, joblib and camel-tools only; tracking and serving live in
``training`` and ``service``.
"""

from classifier.artifact import Manifest, load_model, read_manifest, save_model
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
from classifier.pipeline import ModelConfig, build_pipeline
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
    "build_pipeline",
    "load_model",
    "read_manifest",
    "save_model",
    "split_passages",
    "tune_thresholds",
]
