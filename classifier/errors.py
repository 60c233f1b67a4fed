"""The classifier's error hierarchy; the service maps these to HTTP in one place."""

from __future__ import annotations


class ClassifierError(Exception):
    """Base class for every error the classifier raises on purpose."""


class EmptyTextError(ClassifierError, ValueError):
    """A text was empty or white space only, so there is nothing to classify."""


class NotFittedError(ClassifierError, RuntimeError):
    """The classifier was used before it was fitted or loaded."""


class TrainingDataError(ClassifierError, ValueError):
    """Training data cannot be used as given (too few examples, unknown labels, ...)."""


class ModelLoadError(ClassifierError):
    """A persisted model is missing, corrupt, tampered with or incompatible."""
