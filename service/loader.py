"""Load the model to serve, from the MLflow registry or from a local model folder.

This is the only module of the service that imports mlflow, and it does so inside the function
that talks to the registry: importing the service, and serving requests, never pulls mlflow in.

Registry models are downloaded once into ``cache_dir/<name>/<version>/`` (a registered version
never changes, so a cached copy stays valid while its run and registration time match) and the
last copy that loaded successfully is recorded in ``cache_dir/<name>/last_good.json``, so that a
later fallback for an unreachable tracking store only has to read that pointer.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from classifier import Manifest, NarrativeClassifier, load_model
from classifier.errors import ModelLoadError
from service.settings import Settings

logger = logging.getLogger(__name__)

REGISTRY_SCHEME = "models:/"
LOCAL_VERSION = "local"
LAST_GOOD_FILE = "last_good.json"
# Beside a cached copy: which registration it is (a version number alone can be reused).
REGISTRATION_FILE = "registration.json"
# The registered pyfunc keeps the classifier folder under this artifact key.
CLASSIFIER_KEY = "classifier"
CLASSIFIER_ARTIFACT = Path("artifacts") / CLASSIFIER_KEY
_REGISTRY_URI_RE = re.compile(
    r"^models:/(?P<name>[^/@\s]+)(?:@(?P<alias>[A-Za-z0-9_-]+)|/(?P<version>[0-9]+))$"
)
_UNSAFE_PATH_CHARS_RE = re.compile(r"[^A-Za-z0-9._-]")


@dataclass(frozen=True, slots=True)
class LoadedModel:
    """A model ready to serve, and where it came from.

    Attributes:
        classifier: The fitted classifier.
        manifest: The manifest it was saved with (labels, thresholds, definitions, metadata).
        name: Registered model name (or the folder's name for a local model).
        version: Registry version, or ``"local"`` for a local folder.
        run_id: The MLflow run that produced it, when known.
        source_uri: The model URI it was loaded from (as configured).
        path: The local folder the artifact was read from.
        loaded_at: When this process loaded it.
    """

    classifier: NarrativeClassifier
    manifest: Manifest
    name: str
    version: str
    run_id: str | None
    source_uri: str
    path: Path
    loaded_at: datetime


@dataclass(frozen=True, slots=True)
class RegistryRef:
    """A parsed ``models:/`` URI: a name and either an alias or a version number."""

    name: str
    alias: str | None = None
    version: str | None = None


def parse_registry_uri(uri: str) -> RegistryRef:
    """Parse ``models:/<name>@<alias>`` or ``models:/<name>/<version>``.

    Args:
        uri: The model URI.

    Returns:
        The name with its alias or version.

    Raises:
        ModelLoadError: The URI has another form.
    """
    match = _REGISTRY_URI_RE.match(uri)
    if match is None:
        raise ModelLoadError(
            f"model URI {uri!r} is not of the form models:/<name>@<alias> or models:/<name>/<n>"
        )
    return RegistryRef(match["name"], match["alias"], match["version"])


def load(settings: Settings) -> LoadedModel:
    """Load the model named by ``settings.model_uri``.

    Args:
        settings: Service settings (model URI, tracking URI, cache folder).

    Returns:
        The loaded, verified model.

    Raises:
        ModelLoadError: The model cannot be found, downloaded, verified or unpickled.
    """
    uri = settings.model_uri.strip()
    if uri.startswith(REGISTRY_SCHEME):
        return load_registered(
            parse_registry_uri(uri), settings.resolved_tracking_uri(), settings.cache_dir, uri
        )
    return load_local(local_path(uri), uri)


def local_path(uri: str) -> Path:
    """Turn a folder path or ``file://`` URI into a path.

    Args:
        uri: A plain path or a ``file://`` URI.

    Returns:
        The local folder.

    Raises:
        ModelLoadError: The URI has a scheme this service cannot load from.
    """
    parts = urlsplit(uri)
    if parts.scheme == "file":
        return Path(unquote(parts.path))
    # A one-letter "scheme" is a Windows drive (C:\models), not a URI scheme.
    if parts.scheme and len(parts.scheme) > 1:
        raise ModelLoadError(
            f"cannot load a model from {uri!r}: use models:/..., a folder path or a file:// URI"
        )
    return Path(uri)


def load_local(folder: Path, source_uri: str | None = None) -> LoadedModel:
    """Load a model folder written by :func:`classifier.save_model`, without MLflow.

    Args:
        folder: Folder holding ``manifest.json`` and ``pipeline.joblib``.
        source_uri: The URI it was configured as (defaults to the folder path).

    Returns:
        The model, named after its manifest metadata ``name`` or else its folder, version
        ``"local"``.

    Raises:
        ModelLoadError: Missing, corrupt, tampered or incompatible files.
    """
    clf, manifest = load_model(folder)
    declared = manifest.metadata.get("name")
    run_id = manifest.metadata.get("run_id")
    return LoadedModel(
        classifier=clf,
        manifest=manifest,
        name=declared if isinstance(declared, str) and declared else folder.resolve().name,
        version=LOCAL_VERSION,
        run_id=run_id if isinstance(run_id, str) and run_id else None,
        source_uri=source_uri or str(folder),
        path=folder,
        loaded_at=datetime.now(UTC),
    )


def redact_uri(uri: str) -> str:
    """Drop any ``user:password@`` from a URI before it goes into a message or a log."""
    parts = urlsplit(uri)
    if parts.username is None and parts.password is None:
        return uri
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def _safe_dir_name(name: str) -> str:
    # Registered names may hold characters that mean something to a file system.
    return _UNSAFE_PATH_CHARS_RE.sub("_", name) or "_"


def load_registered(
    ref: RegistryRef, tracking_uri: str, cache_dir: Path, source_uri: str | None = None
) -> LoadedModel:
    """Resolve a registry reference, download (or reuse) its artifact, and load it.

    Args:
        ref: Registered model name with an alias or a version.
        tracking_uri: MLflow tracking (and registry) URI.
        cache_dir: Root of the local model cache.
        source_uri: The URI as configured, kept on the result.

    Returns:
        The loaded model with its registry version and run id.

    Raises:
        ModelLoadError: The store is unreachable, the name, alias or version is unknown, the
            download fails, or the artifact does not verify.
    """
    # Per-file download progress bars would flood a server's log.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # Imported here so that mlflow (slow to import, large) stays off every other code path.
    import mlflow
    from mlflow.exceptions import MlflowException

    where = redact_uri(tracking_uri)
    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    try:
        if ref.alias is not None:
            model_version = client.get_model_version_by_alias(ref.name, ref.alias)
        else:
            model_version = client.get_model_version(ref.name, str(ref.version))
    except (MlflowException, OSError) as exc:
        wanted = f"@{ref.alias}" if ref.alias is not None else f"version {ref.version}"
        raise ModelLoadError(
            f"cannot resolve model {ref.name!r} {wanted} in {where}: {exc}"
        ) from exc
    version = str(model_version.version)
    run_id = str(model_version.run_id) if model_version.run_id else None
    identity = {
        "name": ref.name,
        "version": version,
        "run_id": run_id,
        "created": int(model_version.creation_timestamp or 0),
    }
    model_dir = cache_dir / _safe_dir_name(ref.name)
    folder = model_dir / version
    loaded: tuple[NarrativeClassifier, Manifest] | None = None
    if folder.is_dir() and not _same_version(folder, identity):
        # A store that was wiped and refilled numbers its versions from 1 again: a cached copy
        # is only reused when it is of this very registration.
        logger.info("cached copy %s is of another registration; downloading again", folder)
        shutil.rmtree(folder, ignore_errors=True)
    if folder.is_dir():
        try:
            loaded = load_model(folder)
            logger.info("using the cached copy of %s version %s", ref.name, version)
        except ModelLoadError as exc:
            logger.warning("cached copy %s is unusable (%s); downloading it again", folder, exc)
            shutil.rmtree(folder, ignore_errors=True)
    if loaded is None:
        try:
            _download(f"models:/{ref.name}/{version}", tracking_uri, model_dir, folder)
        except (MlflowException, OSError) as exc:
            raise ModelLoadError(
                f"cannot download model {ref.name!r} version {version} from {where}: {exc}"
            ) from exc
        loaded = load_model(folder)
        _write_json(folder / REGISTRATION_FILE, identity)
    clf, manifest = loaded
    _remember_last_good(model_dir, ref.name, version, run_id, manifest)
    return LoadedModel(
        classifier=clf,
        manifest=manifest,
        name=ref.name,
        version=version,
        run_id=run_id,
        source_uri=source_uri or f"models:/{ref.name}/{version}",
        path=folder,
        loaded_at=datetime.now(UTC),
    )


def _download(artifact_uri: str, tracking_uri: str, model_dir: Path, dest: Path) -> None:
    """Download a registered model and move its classifier folder to ``dest`` in one rename."""
    import mlflow.artifacts

    model_dir.mkdir(parents=True, exist_ok=True)
    # Downloading into a sibling temporary folder and renaming means a crash mid-download never
    # leaves a half-written folder where a good copy is expected.
    with tempfile.TemporaryDirectory(prefix=".download-", dir=model_dir) as tmp:
        local = Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=artifact_uri, dst_path=tmp, tracking_uri=tracking_uri
            )
        )
        source = _classifier_folder(local, artifact_uri)
        try:
            os.replace(source, dest)
        except OSError:
            # Another worker process finished the same download first: its copy is as good.
            if not dest.is_dir():
                raise


def _classifier_folder(local: Path, artifact_uri: str) -> Path:
    """Find the classifier folder inside a downloaded pyfunc model.

    MLflow stores an artifact under the source folder's own name, so the MLmodel file (which
    maps the ``classifier`` key to its path) is the authority; ``artifacts/classifier`` is what
    training writes and serves as the fallback.
    """
    from mlflow.models import Model

    relative = CLASSIFIER_ARTIFACT.as_posix()
    mlmodel = local / "MLmodel"
    if mlmodel.is_file():
        flavor = Model.load(str(mlmodel)).flavors.get("python_function", {})
        entry = (flavor.get("artifacts") or {}).get(CLASSIFIER_KEY) or {}
        if isinstance(entry.get("path"), str):
            relative = entry["path"]
    root = local.resolve()
    source = (local / relative).resolve()
    # The path comes from a file in the store: it must not lead outside the download.
    if not source.is_relative_to(root) or not source.is_dir():
        raise ModelLoadError(f"{artifact_uri} has no {CLASSIFIER_KEY!r} artifact folder")
    return source


def _same_version(folder: Path, identity: dict[str, Any]) -> bool:
    try:
        recorded = json.loads((folder / REGISTRATION_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return bool(recorded == identity)


def _write_json(target: Path, data: dict[str, Any]) -> None:
    """Write JSON through a temporary file and a rename, so readers never see half a file.

    A failure is only logged: the model is loaded and serves; only the cache loses a record.
    """
    tmp = target.with_suffix(f".{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(data, indent=2), encoding="utf-8")
        os.replace(tmp, target)
    except OSError as exc:
        logger.warning("cannot write %s: %s", target, exc)


def _remember_last_good(
    model_dir: Path, name: str, version: str, run_id: str | None, manifest: Manifest
) -> None:
    pointer = {
        "name": name,
        "version": version,
        "run_id": run_id,
        "folder": version,
        "sha256": manifest.sha256,
        "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    _write_json(model_dir / LAST_GOOD_FILE, pointer)
