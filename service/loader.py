"""Load the model to serve, from the MLflow registry or from a local model folder.

This is the only module of the service that imports mlflow, and it does so inside the function
that talks to the registry: importing the service, and serving requests, never pulls mlflow in.

Registry models are downloaded once into ``cache_dir/<name>/<version>/`` (a registered version
never changes, so a cached copy stays valid while its run and registration time match) and the
last copy that loaded successfully is recorded in ``cache_dir/<name>/last_good.json`` with its
SHA-256. When the tracking store cannot be reached at start-up, that copy is served instead,
marked as degraded, once its checksum has been verified (before anything is unpickled).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit, urlunsplit

from classifier import Manifest, NarrativeClassifier, load_model
from classifier.artifact import PIPELINE_FILE, read_manifest
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
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
# MLflow's own defaults retry a dead tracking server for minutes (7 retries, backoff factor 2,
# 120 s timeout). Resolving the model is on the start-up path, so it fails fast instead, unless
# the operator has set these variables.
QUICK_FAIL_HTTP_ENV = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "5",
}
# MLflow error codes that mean the store answered: the name, alias or version does not exist.
_ANSWERED_CODES = frozenset({"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"})
_ENV_LOCK = threading.Lock()

Source = Literal["local", "registry", "cache"]
SOURCE_LOCAL: Source = "local"
SOURCE_REGISTRY: Source = "registry"
SOURCE_CACHE: Source = "cache"


class StoreUnreachable(ModelLoadError):
    """The tracking store could not be reached or read (as opposed to answering "not found")."""


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
        source: ``"registry"`` (resolved in the registry), ``"local"`` (a configured folder) or
            ``"cache"`` (the last good local copy, served because the store was unreachable).
        degraded_reason: Why the model is not the one the settings ask for (None when it is).
    """

    classifier: NarrativeClassifier
    manifest: Manifest
    name: str
    version: str
    run_id: str | None
    source_uri: str
    path: Path
    loaded_at: datetime
    source: Source = SOURCE_LOCAL
    degraded_reason: str | None = None

    @property
    def degraded(self) -> bool:
        """Whether this is a fallback rather than the model the settings name."""
        return self.degraded_reason is not None


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

    For a registry model whose tracking store cannot be reached, the last good local copy is
    loaded instead (its ``source`` is ``"cache"`` and it is ``degraded``), if one was recorded for
    the same alias (or version) and its checksum still matches.

    Args:
        settings: Service settings (model URI, tracking URI, cache folder).

    Returns:
        The loaded, verified model.

    Raises:
        ModelLoadError: The model cannot be found, downloaded, verified or read (and, for
            an unreachable store, no verified local copy can stand in).
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
        folder: A model folder written by :func:`classifier.save_model`.
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
        The loaded model with its registry version and run id. When the store cannot be
        reached, the last good local copy recorded for this alias (or version), verified
        against its recorded checksum, marked ``degraded``.

    Raises:
        ModelLoadError: The name, alias or version is unknown, the artifact does not verify, or
            the store is unreachable and no verified local copy can stand in.
    """
    model_dir = cache_dir / _safe_dir_name(ref.name)
    try:
        return _load_from_registry(ref, tracking_uri, model_dir, source_uri)
    except StoreUnreachable as exc:
        return _load_last_good(ref, model_dir, source_uri, exc)


def _load_from_registry(
    ref: RegistryRef, tracking_uri: str, model_dir: Path, source_uri: str | None
) -> LoadedModel:
    # Per-file download progress bars would flood a server's log.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    where = redact_uri(tracking_uri)
    model_version = _resolve(ref, tracking_uri, where)
    version = str(model_version.version)
    run_id = str(model_version.run_id) if model_version.run_id else None
    identity = {
        "name": ref.name,
        "version": version,
        "run_id": run_id,
        "created": int(model_version.creation_timestamp or 0),
    }
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
        except ModelLoadError:
            raise
        # Artifact stores fail in store-specific ways; all of them mean "unreachable".
        except Exception as exc:
            raise StoreUnreachable(
                f"cannot download model {ref.name!r} version {version} from {where}: {_brief(exc)}"
            ) from exc
        loaded = load_model(folder)
        _write_json(folder / REGISTRATION_FILE, identity)
    clf, manifest = loaded
    _remember_last_good(model_dir, ref, identity, where, manifest)
    return LoadedModel(
        classifier=clf,
        manifest=manifest,
        name=ref.name,
        version=version,
        run_id=run_id,
        source_uri=source_uri or f"models:/{ref.name}/{version}",
        path=folder,
        loaded_at=datetime.now(UTC),
        source=SOURCE_REGISTRY,
    )


def _resolve(ref: RegistryRef, tracking_uri: str, where: str) -> Any:
    """Ask the registry which version ``ref`` names.

    Raises:
        ModelLoadError: The store answered that the name, alias or version does not exist.
        StoreUnreachable: The store could not be reached or read.
    """
    # Imported here so that mlflow (slow to import, large) stays off every other code path.
    import mlflow
    from mlflow.exceptions import MlflowException

    wanted = f"@{ref.alias}" if ref.alias is not None else f"version {ref.version}"
    what = f"model {ref.name!r} {wanted}"
    missing = _missing_sqlite_file(tracking_uri)
    if missing is not None:
        # MLflow would create an empty store there and answer "not found" (after ~10 s of
        # migrations): a store file that is gone is an unreachable store, and is left alone.
        raise StoreUnreachable(
            f"cannot resolve {what}: tracking store {where} is unreachable"
            f" (the file {missing} does not exist)"
        )
    try:
        with _quick_failing_http():
            client = mlflow.MlflowClient(tracking_uri=tracking_uri)
            if ref.alias is not None:
                return client.get_model_version_by_alias(ref.name, ref.alias)
            return client.get_model_version(ref.name, str(ref.version))
    except MlflowException as exc:
        if exc.error_code in _ANSWERED_CODES:
            raise ModelLoadError(f"cannot resolve {what} in {where}: {_brief(exc)}") from exc
        raise StoreUnreachable(
            f"cannot resolve {what}: tracking store {where} is unreachable: {_brief(exc)}"
        ) from exc
    except Exception as exc:  # SQLAlchemy, OS and HTTP errors: the store cannot be read
        raise StoreUnreachable(
            f"cannot resolve {what}: tracking store {where} is unreachable: {_brief(exc)}"
        ) from exc


def _missing_sqlite_file(tracking_uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI when it does not exist, else None."""
    if not tracking_uri.startswith("sqlite:///"):
        return None
    # sqlite:////abs/path.db has the path "//abs/path.db", sqlite:///rel.db has "/rel.db".
    raw = unquote(urlsplit(tracking_uri).path)[1:]
    if not raw or raw == ":memory:":
        return None
    path = Path(raw)
    return None if path.exists() else path


@contextmanager
def _quick_failing_http() -> Iterator[None]:
    """Set MLflow's HTTP retry and timeout variables to fail fast, unless the operator set them.

    MLflow reads them at request time; they are restored afterwards. The lock keeps two loads in
    one process (several apps, as in tests) from restoring each other's values.
    """
    with _ENV_LOCK:
        added = [name for name in QUICK_FAIL_HTTP_ENV if name not in os.environ]
        for name in added:
            os.environ[name] = QUICK_FAIL_HTTP_ENV[name]
        try:
            yield
        finally:
            for name in added:
                os.environ.pop(name, None)


def _brief(exc: BaseException) -> str:
    """The first line of an error, kept short: store errors can quote whole SQL statements.

    A long line keeps its start (what failed) and its end (the root cause, e.g. "Connection
    refused", which HTTP errors put last).
    """
    lines = str(exc).strip().splitlines()
    text = lines[0] if lines else type(exc).__name__
    return text if len(text) <= 300 else f"{text[:170]} ... {text[-120:]}"


class _NoLocalCopy(Exception):
    """No verified last good copy: the message says what is missing or wrong."""


@dataclass(frozen=True, slots=True)
class _LastGood:
    pointer: dict[str, Any]
    folder: Path


def _verified_last_good(ref: RegistryRef, model_dir: Path) -> _LastGood:
    """Read ``last_good.json`` for ``ref`` and check it against the copy's manifest.

    Raises:
        _NoLocalCopy: No copy is recorded for this alias (or version), or it does not verify.
    """
    pointer_path = model_dir / LAST_GOOD_FILE
    try:
        pointer = json.loads(pointer_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise _NoLocalCopy(f"{pointer_path} does not exist") from None
    except (OSError, ValueError) as exc:
        raise _NoLocalCopy(f"{pointer_path} is unreadable: {exc}") from None
    if not isinstance(pointer, dict):
        raise _NoLocalCopy(f"{pointer_path} is not a JSON object")
    folder_name, expected = pointer.get("folder"), pointer.get("sha256")
    wanted = ("alias", ref.alias) if ref.alias is not None else ("version", ref.version)
    if pointer.get("name") != ref.name or pointer.get(wanted[0]) != wanted[1]:
        raise _NoLocalCopy(f"the last good copy is not of {ref.name!r} {wanted[0]} {wanted[1]}")
    # The folder must be a plain name inside the cache: the pointer is a file, not an authority.
    if (
        not isinstance(folder_name, str)
        or folder_name in (".", "..")
        or _safe_dir_name(folder_name) != folder_name
    ):
        raise _NoLocalCopy(f"{pointer_path} names an invalid folder")
    if not isinstance(expected, str) or not _SHA256_RE.match(expected):
        raise _NoLocalCopy(f"{pointer_path} records an invalid checksum")
    folder = model_dir / folder_name
    # The manifest must record the checksum the pointer recorded; load_model then checks every
    # file against the manifest before reading it. Together: the files are the ones recorded,
    # and each is hashed once.
    try:
        recorded = read_manifest(folder).sha256
    except ModelLoadError as exc:
        raise _NoLocalCopy(f"cannot read the copy in {folder}: {exc}") from None
    if recorded != expected:
        raise _NoLocalCopy(f"{folder / PIPELINE_FILE} does not match the checksum recorded for it")
    return _LastGood(pointer, folder)


def _from_last_good(
    ref: RegistryRef,
    last_good: _LastGood,
    source_uri: str | None,
    degraded_reason: str | None,
) -> LoadedModel:
    """Load a verified last good copy (``classifier.load_model`` checks it once more)."""
    clf, manifest = load_model(last_good.folder)
    pointer = last_good.pointer
    version = str(pointer.get("version") or last_good.folder.name)
    run_id = pointer.get("run_id")
    return LoadedModel(
        classifier=clf,
        manifest=manifest,
        name=ref.name,
        version=version,
        run_id=run_id if isinstance(run_id, str) and run_id else None,
        source_uri=source_uri or f"models:/{ref.name}/{version}",
        path=last_good.folder,
        loaded_at=datetime.now(UTC),
        source=SOURCE_CACHE,
        degraded_reason=degraded_reason,
    )


def _load_last_good(
    ref: RegistryRef, model_dir: Path, source_uri: str | None, cause: StoreUnreachable
) -> LoadedModel:
    """Load the last good local copy recorded for ``ref``, verified against its recorded checksum.

    The pipeline checksum in the copy's manifest is compared with the one recorded in
    ``last_good.json`` *before* :func:`classifier.load_model` (which checks every file against
    the manifest), so a copy whose pipeline and manifest were both replaced is refused without
    being read.

    Raises:
        ModelLoadError: No copy was recorded for this alias (or version), or it does not verify;
            the message gives both the store's error and the copy's.
    """

    def refuse(problem: str) -> ModelLoadError:
        return ModelLoadError(f"{cause}; no local copy can stand in: {problem}")

    try:
        last_good = _verified_last_good(ref, model_dir)
    except _NoLocalCopy as exc:
        raise refuse(str(exc)) from cause
    version = str(last_good.pointer.get("version") or last_good.folder.name)
    recorded = last_good.pointer.get("recorded_at")
    reason = f"{cause}; serving the last good local copy of {ref.name!r} version {version}" + (
        f" (recorded {recorded})" if isinstance(recorded, str) else ""
    )
    try:
        model = _from_last_good(ref, last_good, source_uri, reason)
    except ModelLoadError as exc:
        raise refuse(str(exc)) from cause
    logger.warning("degraded: %s", reason)
    return model


def load_cached(settings: Settings) -> LoadedModel | None:
    """Load the last good local copy of the settings' registry model, without MLflow.

    This is the fast start: a restart serves the copy it served before at once (seconds, not
    the ten it takes to import MLflow and open the store), and :func:`revalidate` then asks the
    registry whether it is still the one the alias names. Only a copy recorded from the same
    tracking store, for the same alias, whose checksum verifies, is used.

    Args:
        settings: Service settings (a ``models:/<name>@<alias>`` URI).

    Returns:
        The copy, ``source="cache"`` and not degraded (its registry check is pending), or None
        when there is no usable copy (the reason is logged) or the URI is not an alias.
    """
    uri = settings.model_uri.strip()
    if not uri.startswith(REGISTRY_SCHEME):
        return None
    ref = parse_registry_uri(uri)
    if ref.alias is None:
        return None
    try:
        last_good = _verified_last_good(ref, settings.cache_dir / _safe_dir_name(ref.name))
        store = redact_uri(settings.resolved_tracking_uri())
        if last_good.pointer.get("store") != store:
            raise _NoLocalCopy(f"the last good copy was not recorded from {store}")
        return _from_last_good(ref, last_good, uri, None)
    except (_NoLocalCopy, ModelLoadError) as exc:
        logger.info("no fast start (%s): loading from the registry", exc)
        return None


def revalidate(current: LoadedModel, settings: Settings) -> LoadedModel:
    """Ask the registry whether a model started from the local copy is still the one named.

    Args:
        current: The model serving now (from :func:`load_cached`).
        settings: Service settings.

    Returns:
        ``current`` marked ``source="registry"`` when the alias still names that very
        registration; the newly loaded model when it names another; ``current`` marked
        degraded (with the reason) when the store cannot be reached or no longer knows the
        alias.

    Raises:
        ModelLoadError: The alias names another version, which cannot be loaded (``current``
            keeps serving).
    """
    uri = settings.model_uri.strip()
    ref = parse_registry_uri(uri)
    tracking_uri = settings.resolved_tracking_uri()
    where = redact_uri(tracking_uri)
    try:
        model_version = _resolve(ref, tracking_uri, where)
    except ModelLoadError as exc:
        reason = f"{exc}; serving the last good local copy of {ref.name!r} {current.version}"
        logger.warning("degraded: %s", reason)
        return replace(current, degraded_reason=reason)
    same = (
        str(model_version.version) == current.version
        and (str(model_version.run_id) if model_version.run_id else None) == current.run_id
        and _recorded_created(current) == int(model_version.creation_timestamp or 0)
    )
    if same:
        logger.info("registry check: %s version %s is still %s", ref.name, current.version, uri)
        return replace(current, source=SOURCE_REGISTRY)
    logger.info("registry check: %s now names version %s; loading it", uri, model_version.version)
    return load(settings)


def _recorded_created(model: LoadedModel) -> int | None:
    """The registration time recorded beside a cached copy (None when unknown)."""
    try:
        recorded = json.loads((model.path / REGISTRATION_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    created = recorded.get("created") if isinstance(recorded, dict) else None
    return created if isinstance(created, int) else None


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
    model_dir: Path, ref: RegistryRef, identity: dict[str, Any], store: str, manifest: Manifest
) -> None:
    # The alias is recorded so that a fallback serves the last champion, not whatever version
    # of the name was loaded last (a pinned version, another alias); the store, so that a fast
    # start never serves a copy that came from another store.
    pointer = {
        "name": ref.name,
        "alias": ref.alias,
        "version": identity["version"],
        "run_id": identity["run_id"],
        "created": identity["created"],
        "store": store,
        "folder": identity["version"],
        "sha256": manifest.sha256,
        "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    _write_json(model_dir / LAST_GOOD_FILE, pointer)
