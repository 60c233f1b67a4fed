"""Persist a fitted classifier as a joblib pipeline plus a JSON manifest, and load it safely.

The manifest records the labels, thresholds, configuration, library versions and the SHA-256 of
the pipeline file. Loading checks the manifest, the checksum and the versions *before* unpickling,
so a corrupt, tampered or incompatible file is refused with a clear error instead of being run.

A logistic-regression model also gets ``scorer.npz``: the same model as plain arrays
(:mod:`classifier.linear`), with its own SHA-256 in the manifest. Loading prefers it: nothing is
unpickled, scikit-learn is not imported, and the scores are those of the pipeline.
"""

from __future__ import annotations

import hashlib
import json
import platform
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from classifier.config import ModelConfig
from classifier.errors import ModelLoadError, NotFittedError
from classifier.linear import SCORER_FILE, LinearScorer
from classifier.model import NarrativeClassifier

FORMAT = "narrative-classifier/1"
PIPELINE_FILE = "pipeline.joblib"
MANIFEST_FILE = "manifest.json"
_TRACKED_LIBRARIES = ("scikit-learn", "numpy", "scipy", "joblib", "camel-tools")
# A pickle from another scikit-learn minor release may unpickle into wrong behaviour silently.
_MUST_MATCH = ("scikit-learn",)


@dataclass(frozen=True)
class Manifest:
    """What is known about a persisted model without unpickling it."""

    labels: tuple[str, ...]
    thresholds: dict[str, float]
    config: dict[str, Any]
    versions: dict[str, str]
    sha256: str
    created_at: str
    label_definitions: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    format: str = FORMAT
    scorer_sha256: str | None = None


def library_versions() -> dict[str, str]:
    """Versions of Python and of the libraries a pickled pipeline depends on."""
    out = {"python": platform.python_version()}
    for name in _TRACKED_LIBRARIES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "missing"
    return out


def sha256_file(path: Path) -> str:
    """SHA-256 hex digest of a file, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_model(
    clf: NarrativeClassifier,
    directory: str | Path,
    label_definitions: dict[str, str] | None = None,
    metadata: dict[str, Any] | None = None,
) -> Manifest:
    """Write ``pipeline.joblib``, ``scorer.npz`` (when it has one) and ``manifest.json``.

    Args:
        clf: A fitted classifier.
        directory: Target folder (created when missing).
        label_definitions: Human-readable definition of each label, served to users.
        metadata: Anything else worth keeping with the model (data digest, metrics, ...).

    Returns:
        The manifest that was written.

    Raises:
        NotFittedError: ``clf`` has not been fitted.
    """
    import joblib

    if clf.pipeline is None:
        raise NotFittedError("cannot save a classifier without its fitted pipeline")
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    pipeline_path = folder / PIPELINE_FILE
    joblib.dump(clf.pipeline, pipeline_path, compress=3)
    scorer_sha256 = None
    if clf.scorer is not None:
        clf.scorer.save(folder / SCORER_FILE)
        scorer_sha256 = sha256_file(folder / SCORER_FILE)
    config = asdict(clf.config)
    manifest = Manifest(
        labels=clf.labels,
        thresholds=clf.thresholds,
        config=config,
        versions=library_versions(),
        sha256=sha256_file(pipeline_path),
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        label_definitions=dict(label_definitions or {}),
        metadata=dict(metadata or {}),
        scorer_sha256=scorer_sha256,
    )
    (folder / MANIFEST_FILE).write_text(
        json.dumps(asdict(manifest), ensure_ascii=False, indent=2), encoding="utf-8"
    )
    return manifest


def model_files(manifest: Manifest) -> tuple[str, ...]:
    """The files a model folder consists of (to copy or ship it whole).

    Args:
        manifest: The folder's manifest.

    Returns:
        File names: the manifest, the pipeline and, when the model has one, the scorer.
    """
    names = (MANIFEST_FILE, PIPELINE_FILE)
    return (*names, SCORER_FILE) if manifest.scorer_sha256 is not None else names


def read_manifest(directory: str | Path) -> Manifest:
    """Read and check a model folder's manifest without touching the pickle.

    Args:
        directory: The model folder.

    Returns:
        The manifest.

    Raises:
        ModelLoadError: The manifest is missing, not JSON, or of another format.
    """
    path = Path(directory) / MANIFEST_FILE
    if not path.is_file():
        raise ModelLoadError(f"no model manifest at {path}")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"model manifest {path} is not valid JSON: {exc}") from exc
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise ModelLoadError(f"model manifest {path} is not of format {FORMAT}")
    try:
        config = raw["config"]
        for key in ("word_ngrams", "char_ngrams"):
            config[key] = tuple(config[key])
        return Manifest(
            labels=tuple(raw["labels"]),
            thresholds={str(k): float(v) for k, v in raw["thresholds"].items()},
            config=config,
            versions=dict(raw["versions"]),
            sha256=str(raw["sha256"]),
            created_at=str(raw["created_at"]),
            label_definitions=dict(raw.get("label_definitions", {})),
            metadata=dict(raw.get("metadata", {})),
            scorer_sha256=str(raw["scorer_sha256"]) if raw.get("scorer_sha256") else None,
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ModelLoadError(f"model manifest {path} is incomplete: {exc!r}") from exc


def _minor(v: str) -> str:
    return ".".join(v.split(".")[:2])


def load_model(
    directory: str | Path, *, with_pipeline: bool = False
) -> tuple[NarrativeClassifier, Manifest]:
    """Load a model folder written by :func:`save_model`, verifying it first.

    A model saved with a scorer loads from it: arrays only, no unpickling, no scikit-learn.
    Otherwise (or with ``with_pipeline``) the pickled pipeline is loaded, after its checksum and
    the scikit-learn version have been checked.

    Args:
        directory: The model folder.
        with_pipeline: Load the scikit-learn pipeline even when a scorer is there (to inspect
            or reuse the fitted estimators; predictions are the same either way).

    Returns:
        The classifier and its manifest.

    Raises:
        ModelLoadError: Missing files, checksum mismatch (corrupt or tampered), a library version
            that cannot read the pickle, or a file that is not a narrative model.
    """
    folder = Path(directory)
    manifest = read_manifest(folder)
    config = ModelConfig(**manifest.config)
    # The folder is one artifact: a modified pipeline means a modified model, even when only
    # the scorer is going to be read.
    pipeline_path = _verified(folder / PIPELINE_FILE, manifest.sha256, "pipeline")
    if manifest.scorer_sha256 is not None and not with_pipeline:
        scorer_path = _verified(folder / SCORER_FILE, manifest.scorer_sha256, "scorer")
        scorer = LinearScorer.load(scorer_path)
        if len(scorer.intercept) != len(manifest.labels) or set(manifest.thresholds) != set(
            manifest.labels
        ):
            raise ModelLoadError(f"{folder / SCORER_FILE} does not match its manifest's labels")
        clf = NarrativeClassifier.from_scorer(scorer, manifest.labels, manifest.thresholds, config)
        return clf, manifest
    import joblib
    from sklearn.pipeline import Pipeline

    current = library_versions()
    for name in _MUST_MATCH:
        if _minor(manifest.versions.get(name, "")) != _minor(current[name]):
            raise ModelLoadError(
                f"model was saved with {name} {manifest.versions.get(name)}, this environment has"
                f" {current[name]}: retrain or install the matching version"
            )
    try:
        pipeline = joblib.load(pipeline_path)
    except Exception as exc:  # unpickling can fail in many ways; all mean "unusable artifact"
        raise ModelLoadError(f"cannot unpickle {pipeline_path}: {exc!r}") from exc
    if not isinstance(pipeline, Pipeline) or "clf" not in pipeline.named_steps:
        raise ModelLoadError(f"{pipeline_path} does not hold a narrative pipeline")
    n_estimators = len(getattr(pipeline.named_steps["clf"], "estimators_", []))
    if n_estimators != len(manifest.labels) or set(manifest.thresholds) != set(manifest.labels):
        raise ModelLoadError(f"{pipeline_path} does not match its manifest's labels")
    return NarrativeClassifier.from_pipeline(
        pipeline, manifest.labels, manifest.thresholds, config
    ), manifest


def _verified(path: Path, expected: str, what: str) -> Path:
    """Return ``path`` once its SHA-256 matches the manifest's.

    Raises:
        ModelLoadError: The file is missing, or corrupt or modified.
    """
    if not path.is_file():
        raise ModelLoadError(f"no {what} file at {path}")
    if sha256_file(path) != expected:
        raise ModelLoadError(
            f"checksum mismatch for {path}: the artifact is corrupt or was modified"
        )
    return path
