"""Label a large corpus on a Dask cluster: partitions in parallel, Parquet out, resumable.

The input is Parquet or JSON Lines: a file, a folder or a glob, as a local path or any fsspec URL.
It is cut into partitions of about ``partition_size`` rows (row ranges of Parquet files, byte
ranges of JSONL files cut at line ends) and each partition is one task. The output folder holds:

- ``_plan.json``: the input files, options, partitions and model (written first);
- ``part-000000.parquet``, ...: one file per partition, named by its index, so sorting the names
  gives the input order; columns ``partition``, ``row``, ``id``, ``labels``, ``primary``,
  ``score_<label>`` per label and ``warnings``;
- ``_SUCCESS``: written last, when every partition is there.

The model is read and checked once by the client and shipped to every worker as its verified bytes
inside a worker plugin; each worker writes them to its scratch folder and loads them with
:func:`classifier.load_model` (which checks the SHA-256 again) once, then keeps the classifier for
all its partitions. Workers read their partition straight from the input and write their Parquet
file through a temporary name and a rename, so a partition file that exists is complete: a rerun
with the same plan skips those and computes only the missing ones.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, suppress
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.parquet as pq
from distributed import Client, WorkerPlugin, as_completed, get_worker
from fsspec import AbstractFileSystem
from fsspec.core import has_magic, url_to_fs
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from classifier import NarrativeClassifier, load_model
from classifier.artifact import PIPELINE_FILE, model_files, read_manifest
from classifier.errors import ModelLoadError

FORMAT = "narratives-scores/1"
PLAN_FILE = "_plan.json"
SUCCESS_FILE = "_SUCCESS"
DEFAULT_PARTITION_SIZE = 10_000
DEFAULT_MODEL_NAME = "narrative-classifier"
# Rows per predict() call inside a partition: bounds the memory of the sparse feature matrix.
PREDICT_BATCH = 2048
# How much of the first JSONL file is read to estimate bytes per row.
SAMPLE_BYTES = 1 << 20
WARN_EMPTY = "empty_text"
JSONL = "jsonl"
PARQUET = "parquet"
_SUFFIXES = {".jsonl": JSONL, ".ndjson": JSONL, ".json": JSONL, ".parquet": PARQUET, ".pq": PARQUET}
# Compressed JSONL cannot be cut at byte offsets: such a file is one partition.
_COMPRESSIONS = {".gz": "gzip", ".bz2": "bz2", ".xz": "lzma"}
_PART_RE = re.compile(r"^part-(\d+)\.parquet$")
_TEMP_RE = re.compile(r"^\.part-\d+\.parquet\.[0-9a-f]+\.tmp$")
_WAIT_FOR_WORKERS_SECONDS = 60.0


class ScoringError(Exception):
    """The corpus cannot be scored as asked: bad input, an output folder in use, failed tasks."""


@dataclass(frozen=True)
class ScoreOptions:
    """How rows are read and cut into partitions.

    Attributes:
        text_column: Field (JSONL) or column (Parquet) holding the passage.
        id_column: Field or column holding the row id (kept as a string; null when absent).
        partition_size: Rows per partition (about, for JSONL, where it is estimated in bytes).
    """

    text_column: str = "text"
    id_column: str = "id"
    partition_size: int = DEFAULT_PARTITION_SIZE


@dataclass(frozen=True)
class ScoreConfig:
    """A scoring job as the CLI gives it.

    Attributes:
        source: Input file, folder or glob (local path or fsspec URL).
        output: Output folder (local path or fsspec URL).
        scheduler: Dask scheduler address; None starts a local cluster.
        workers: Worker processes of a local cluster (default: one per core).
        model: Model folder or ``models:/``/``runs:/`` URI; None for the champion.
        model_name: Registered model name (for the champion).
        tracking_uri: MLflow store; None means ``MLFLOW_TRACKING_URI`` or the embedded store.
        options: Columns and partition size.
    """

    source: str
    output: str
    scheduler: str | None = None
    workers: int | None = None
    model: str | None = None
    model_name: str = DEFAULT_MODEL_NAME
    tracking_uri: str | None = None
    options: ScoreOptions = field(default_factory=ScoreOptions)


@dataclass(frozen=True, slots=True)
class InputFile:
    """One input file and what identifies its content (a changed file makes another plan)."""

    url: str
    format: str
    size: int
    version: str
    compression: str | None


@dataclass(frozen=True, slots=True)
class Partition:
    """One task: a row range of a Parquet file, or the lines of a JSONL file in a byte range.

    For Parquet, ``start`` and ``stop`` are row numbers; for JSONL, byte offsets, and the
    partition holds the lines whose first byte is in ``[start, stop)`` (``stop`` -1: the whole
    file, for compressed files that cannot be cut).
    """

    index: int
    url: str
    format: str
    start: int
    stop: int
    compression: str | None = None


@dataclass(frozen=True)
class Plan:
    """The input files and their partitions, in input order."""

    files: tuple[InputFile, ...]
    partitions: tuple[Partition, ...]
    options: ScoreOptions


@dataclass(frozen=True, slots=True)
class Job:
    """What every partition task needs besides its partition."""

    output: str
    model_sha256: str
    text_column: str
    id_column: str
    digits: int


@dataclass(frozen=True, slots=True)
class PartitionResult:
    """What a task did."""

    index: int
    rows: int
    empty: int
    seconds: float


@dataclass(frozen=True)
class ScoreOutcome:
    """What a scoring run did.

    Attributes:
        output: The output folder.
        partitions: Partitions in the plan.
        computed: Indices of the partitions computed by this run (the others were already there).
        rows: Rows in the complete output.
        scored: Rows labelled by this run.
        empty: Rows of this run whose text was empty (labelled with the ``empty_text`` warning).
        seconds: Wall time of this run, from planning to ``_SUCCESS``.
        model: Which model labelled the rows.
        workers: Workers of the cluster.
    """

    output: str
    partitions: int
    computed: tuple[int, ...]
    rows: int
    scored: int
    empty: int
    seconds: float
    model: str
    workers: int

    @property
    def skipped(self) -> int:
        """Partitions found complete and not computed again."""
        return self.partitions - len(self.computed)


class ScoreProgress(Protocol):
    """Receives progress: phases, then partitions as they finish."""

    def step(self, message: str) -> None:
        """A phase starts (resolving the model, starting the cluster, planning)."""

    def start(self, total: int, done: int) -> None:
        """Partitions are submitted: ``total`` in the plan, ``done`` already written."""

    def advance(self, rows: int) -> None:
        """A partition finished with ``rows`` rows."""


class _Silent:
    def step(self, message: str) -> None:
        return None

    def start(self, total: int, done: int) -> None:
        return None

    def advance(self, rows: int) -> None:
        return None


class RichProgress(AbstractContextManager["RichProgress"]):
    """A terminal progress bar over partitions (with rows done), for the CLI.

    Args:
        console: Where to draw (the CLI's stderr console).
    """

    def __init__(self, console: Console) -> None:
        self.console = console
        self.bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("partitions, {task.fields[rows]:,} rows"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
        )
        self.task = self.bar.add_task("starting", total=None, rows=0)
        self.rows = 0

    def __enter__(self) -> RichProgress:
        self.bar.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.bar.stop()

    def step(self, message: str) -> None:
        """Show and log a phase."""
        self.bar.update(self.task, description=message)
        self.console.log(message)

    def start(self, total: int, done: int) -> None:
        """Size the bar; partitions already written count as done."""
        self.bar.update(self.task, description="scoring", total=total, completed=done)

    def advance(self, rows: int) -> None:
        """One more partition."""
        self.rows += rows
        self.bar.update(self.task, advance=1, rows=self.rows)


# ---------------------------------------------------------------------------------------------
# Input: discovery and planning (on the client)


def _format_of(name: str) -> tuple[str | None, str | None]:
    """The format and compression of a file, from its name."""
    stem, suffix = posixpath.splitext(name.lower())
    compression = _COMPRESSIONS.get(suffix)
    if compression is not None:
        stem, suffix = posixpath.splitext(stem)
        return (JSONL, compression) if _SUFFIXES.get(suffix) == JSONL else (None, None)
    return _SUFFIXES.get(suffix), None


def _version(info: dict[str, Any]) -> str:
    for key in ("ETag", "etag", "md5Hash", "mtime", "LastModified", "updated", "created"):
        if info.get(key) is not None:
            return str(info[key])
    return ""


def discover(source: str, exclude: str | None = None) -> list[InputFile]:
    """List the input files of ``source``, in name order.

    Args:
        source: A file, a folder (searched recursively, names starting with ``_`` or ``.`` and
            files of other types skipped) or a glob; a local path or fsspec URL.
        exclude: URL of a folder whose files are never input (the output folder, which may lie
            inside the input folder).

    Returns:
        The files, with format, size and version.

    Raises:
        ScoringError: Nothing there, an unknown file type, or Parquet mixed with JSONL.
    """
    try:
        fs, path = url_to_fs(source)
    except (ValueError, ImportError) as exc:
        raise ScoringError(f"cannot open {source}: {exc}") from exc
    explicit = True
    try:
        if has_magic(path):
            entries: dict[str, Any] = fs.glob(path, detail=True)
        elif fs.isdir(path):
            entries = fs.find(path, detail=True)
            explicit = False
        else:
            entries = {path: fs.info(path)}
    except FileNotFoundError:
        entries = {}
    files: list[InputFile] = []
    for name in sorted(entries):
        info = entries[name]
        base = posixpath.basename(name)
        if info.get("type") == "directory" or base.startswith(("_", ".")):
            continue
        fmt, compression = _format_of(base)
        if fmt is None:
            if explicit:
                raise ScoringError(f"cannot tell the format of {name}: use .parquet or .jsonl")
            continue
        url = fs.unstrip_protocol(name)
        if exclude and url.startswith(exclude.rstrip("/") + "/"):
            continue
        size = int(info.get("size") or 0)
        files.append(InputFile(url, fmt, size, _version(info), compression))
    if not files:
        raise ScoringError(f"no Parquet or JSONL files at {source}")
    if len({f.format for f in files}) > 1:
        raise ScoringError(f"{source} mixes Parquet and JSONL files: score them separately")
    return files


def _json_object(line: bytes | str, where: str) -> dict[str, Any]:
    """Parse one JSON Lines line that must hold an object; errors name ``where``."""
    try:
        obj = json.loads(line)
    except ValueError as exc:
        raise ScoringError(f"{where}: malformed JSON ({exc})") from exc
    if not isinstance(obj, dict):
        raise ScoringError(f"{where}: expected a JSON object")
    return obj


def _first_record(file: InputFile) -> dict[str, Any] | None:
    fs, path = url_to_fs(file.url)
    with fs.open(path, "rb", compression=file.compression) as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            return _json_object(line, f"{file.url}:{number}")
    return None


def _bytes_per_row(file: InputFile) -> float:
    fs, path = url_to_fs(file.url)
    with fs.open(path, "rb") as fh:
        sample: bytes = fh.read(SAMPLE_BYTES)
    return len(sample) / max(1, sample.count(b"\n"))


def _plan_jsonl(files: Sequence[InputFile], options: ScoreOptions) -> list[Partition]:
    for file in files:
        first = _first_record(file)
        if first is None:
            continue
        if options.text_column not in first:
            fields = ", ".join(sorted(first)) or "none"
            raise ScoringError(
                f"{file.url}: the first row has no {options.text_column!r} field (fields:"
                f" {fields}): pass --text-column"
            )
        break
    plain = [f for f in files if f.compression is None and f.size > 0]
    # Estimated from the first file only, so that the same input always gives the same plan.
    blocksize = max(1, round(options.partition_size * _bytes_per_row(plain[0]))) if plain else 1
    parts: list[Partition] = []
    for file in files:
        if file.compression is not None:
            parts.append(Partition(len(parts), file.url, JSONL, 0, -1, file.compression))
            continue
        for start in range(0, file.size, blocksize):
            stop = min(start + blocksize, file.size)
            parts.append(Partition(len(parts), file.url, JSONL, start, stop))
    return parts


def _plan_parquet(files: Sequence[InputFile], options: ScoreOptions) -> list[Partition]:
    parts: list[Partition] = []
    for file in files:
        fs, path = url_to_fs(file.url)
        with fs.open(path, "rb") as fh:
            try:
                meta = pq.ParquetFile(fh)
            except (pa.ArrowException, OSError) as exc:
                raise ScoringError(f"{file.url} is not a readable Parquet file: {exc}") from exc
            schema = meta.schema_arrow
            rows = meta.metadata.num_rows
        if options.text_column not in schema.names:
            raise ScoringError(
                f"{file.url} has no column {options.text_column!r} (columns:"
                f" {', '.join(schema.names)}): pass --text-column"
            )
        kind = schema.field(options.text_column).type
        if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
            raise ScoringError(f"{file.url}: column {options.text_column!r} is {kind}, not text")
        for start in range(0, rows, options.partition_size):
            stop = min(start + options.partition_size, rows)
            parts.append(Partition(len(parts), file.url, PARQUET, start, stop))
    return parts


def make_plan(source: str, options: ScoreOptions, exclude: str | None = None) -> Plan:
    """Discover the input files and cut them into partitions, in input order.

    Args:
        source: Input file, folder or glob.
        options: Columns and partition size.
        exclude: URL of a folder to leave out of the input (the output folder).

    Returns:
        The plan.

    Raises:
        ScoringError: No input, unreadable files, or no such text column.
    """
    if options.partition_size < 1:
        raise ScoringError("--partition-size must be at least 1")
    files = discover(source, exclude)
    try:
        if files[0].format == PARQUET:
            parts = _plan_parquet(files, options)
        else:
            parts = _plan_jsonl(files, options)
    except (OSError, ValueError) as exc:
        raise ScoringError(f"cannot read {source}: {exc}") from exc
    return Plan(tuple(files), tuple(parts), options)


# ---------------------------------------------------------------------------------------------
# Workers: the model, reading, labelling and writing one partition

_MODELS: dict[str, NarrativeClassifier] = {}
_LOADS: dict[str, int] = {}


def plugin_name(sha256: str) -> str:
    """The worker plugin's name for a model (one plugin per model, so reruns reuse it)."""
    return f"narratives-model-{sha256[:16]}"


def _install(sha256: str, files: dict[str, bytes], scratch: Path) -> None:
    folder = scratch / "narratives-models" / sha256
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    clf, manifest = load_model(folder)  # checks every file's SHA-256 before reading it
    if manifest.sha256 != sha256:
        raise ModelLoadError(f"the model shipped to this worker is not {sha256[:12]}")
    _MODELS[sha256] = clf
    _LOADS[sha256] = _LOADS.get(sha256, 0) + 1


class ModelPlugin(WorkerPlugin):
    """Carries a model's verified files to every worker (also those joining later) and loads it.

    Args:
        sha256: The pipeline's checksum (the model's identity).
        files: The model folder's files (:func:`classifier.artifact.model_files`) as bytes.
    """

    # The same model registered again (a rerun on a long-lived cluster) is not loaded again.
    idempotent = True

    def __init__(self, sha256: str, files: dict[str, bytes]) -> None:
        self.sha256 = sha256
        self.files = files

    def setup(self, worker: Any) -> None:
        """Write the files to the worker's scratch folder and load the classifier once."""
        _install(self.sha256, self.files, Path(worker.local_directory))

    def teardown(self, worker: Any) -> None:
        """Forget the classifier."""
        _MODELS.pop(self.sha256, None)


def worker_models() -> dict[str, int]:
    """How many times each model was loaded in this process (run on workers by the tests)."""
    return dict(_LOADS)


def _worker_model(sha256: str) -> NarrativeClassifier:
    clf = _MODELS.get(sha256)
    if clf is not None:
        return clf
    # Only when the plugin's setup did not run (or failed) here: try it now for the real error.
    worker = get_worker()
    plugin = worker.plugins.get(plugin_name(sha256))
    if not isinstance(plugin, ModelPlugin):
        raise ScoringError(f"model {sha256[:12]} was not shipped to worker {worker.address}")
    plugin.setup(worker)
    return _MODELS[sha256]


def _text(value: Any, where: str, column: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise ScoringError(f"{where}: field {column!r} is {type(value).__name__}, not text")


def _read_jsonl(part: Partition, text_column: str, id_column: str) -> tuple[list[Any], list[Any]]:
    fs, path = url_to_fs(part.url)
    ids: list[Any] = []
    texts: list[str | None] = []
    with fs.open(path, "rb", compression=part.compression) as fh:
        if part.start > 0:
            # A line belongs to the partition its first byte is in: skip the one in progress.
            fh.seek(part.start - 1)
            fh.readline()
        position = fh.tell()
        end = part.stop if part.stop >= 0 else float("inf")
        while position < end:
            line = fh.readline()
            if not line:
                break
            offset, position = position, position + len(line)
            if not line.strip():
                continue
            where = f"{part.url} at byte {offset}"
            obj = _json_object(line, where)
            if text_column not in obj:
                raise ScoringError(f"{where}: no field {text_column!r}")
            texts.append(_text(obj[text_column], where, text_column))
            ids.append(obj.get(id_column))
    return ids, texts


def _read_parquet(part: Partition, text_column: str, id_column: str) -> tuple[list[Any], list[Any]]:
    fs, path = url_to_fs(part.url)
    with fs.open(path, "rb") as fh:
        pf = pq.ParquetFile(fh)
        columns = [text_column] + ([id_column] if id_column in pf.schema_arrow.names else [])
        groups: list[int] = []
        first_row = 0
        offset = 0
        for g in range(pf.num_row_groups):
            n = pf.metadata.row_group(g).num_rows
            if offset < part.stop and offset + n > part.start:
                if not groups:
                    first_row = offset
                groups.append(g)
            offset += n
        table = pf.read_row_groups(groups, columns=columns)
    table = table.slice(part.start - first_row, part.stop - part.start)
    texts = table.column(text_column).to_pylist()
    ids = table.column(id_column).to_pylist() if id_column in columns else [None] * len(texts)
    return ids, texts


def read_partition(
    part: Partition, text_column: str, id_column: str
) -> tuple[list[Any], list[str | None]]:
    """Read the ids and texts of one partition, in order.

    Args:
        part: The partition.
        text_column: Text field or column.
        id_column: Id field or column (ids are None where absent).

    Returns:
        Ids and texts (None for a null text).

    Raises:
        ScoringError: Malformed JSON, a row without the text field, or text that is not a string.
    """
    if part.format == PARQUET:
        return _read_parquet(part, text_column, id_column)
    return _read_jsonl(part, text_column, id_column)


def output_schema(labels: Sequence[str]) -> pa.Schema:
    """The schema of every output partition file."""
    return pa.schema(
        [
            ("partition", pa.int32()),
            ("row", pa.int32()),
            ("id", pa.string()),
            ("labels", pa.list_(pa.string())),
            ("primary", pa.string()),
            *[(f"score_{label}", pa.float64()) for label in labels],
            ("warnings", pa.list_(pa.string())),
        ]
    )


def label_rows(
    clf: NarrativeClassifier, partition: int, ids: Sequence[Any], texts: Sequence[str | None]
) -> tuple[pa.Table, int]:
    """Label the rows of one partition.

    Rows with empty or null text are kept (so ids and order survive) with no labels, null scores
    and the ``empty_text`` warning, instead of failing a whole partition of a large corpus.

    Args:
        clf: The classifier.
        partition: The partition index (a column of the output).
        ids: Row ids (written as strings).
        texts: Row texts.

    Returns:
        The output table and how many rows had empty text.
    """
    n = len(texts)
    keep = [i for i, t in enumerate(texts) if t is not None and t.strip()]
    labels: list[list[str]] = [[] for _ in range(n)]
    primary: list[str | None] = [None] * n
    scores: dict[str, list[float | None]] = {label: [None] * n for label in clf.labels}
    warnings: list[list[str]] = [[WARN_EMPTY] for _ in range(n)]
    for lo in range(0, len(keep), PREDICT_BATCH):
        chunk = keep[lo : lo + PREDICT_BATCH]
        batch = [t for t in (texts[i] for i in chunk) if t is not None]
        for i, pred in zip(chunk, clf.predict(batch), strict=True):
            labels[i] = list(pred.labels)
            primary[i] = pred.primary
            warnings[i] = list(pred.warnings)
            for label, value in pred.scores.items():
                scores[label][i] = value
    columns: dict[str, list[Any]] = {
        "partition": [partition] * n,
        "row": list(range(n)),
        "id": [None if v is None else str(v) for v in ids],
        "labels": labels,
        "primary": primary,
        **{f"score_{label}": values for label, values in scores.items()},
        "warnings": warnings,
    }
    return pa.Table.from_pydict(columns, schema=output_schema(clf.labels)), n - len(keep)


def part_name(index: int, digits: int) -> str:
    """The file name of a partition's output."""
    return f"part-{index:0{digits}d}.parquet"


def _write_atomically(fs: AbstractFileSystem, folder: str, name: str, write: Any) -> None:
    """Write ``folder/name`` through a hidden temporary name and a rename.

    A crash mid-write leaves only the temporary file (removed by the next run), never a
    truncated output under the final name.
    """
    final = f"{folder}/{name}"
    temp = f"{folder}/.{name}.{uuid.uuid4().hex}.tmp"
    try:
        with fs.open(temp, "wb") as fh:
            write(fh)
        fs.mv(temp, final)
    except BaseException:
        with suppress(OSError):
            fs.rm(temp)
        raise


def score_partition(part: Partition, job: Job) -> PartitionResult:
    """Read, label and write one partition (a task on a worker).

    Args:
        part: The partition.
        job: Output folder, model and columns.

    Returns:
        Rows written, empty texts and time taken.
    """
    started = time.perf_counter()
    clf = _worker_model(job.model_sha256)
    ids, texts = read_partition(part, job.text_column, job.id_column)
    table, empty = label_rows(clf, part.index, ids, texts)
    fs, folder = url_to_fs(job.output)
    _write_atomically(
        fs, folder, part_name(part.index, job.digits), lambda fh: pq.write_table(table, fh)
    )
    return PartitionResult(part.index, table.num_rows, empty, time.perf_counter() - started)


def _missing(urls: Sequence[str]) -> list[str]:
    """Which of ``urls`` this process cannot see (run on every worker)."""
    missing = []
    for url in urls:
        fs, path = url_to_fs(url)
        if not fs.exists(path):
            missing.append(url)
    return missing


# ---------------------------------------------------------------------------------------------
# The client: output folder, submission, completion


def _plan_identity(plan: Plan, sha256: str, labels: Sequence[str]) -> dict[str, Any]:
    """Everything that must be equal for a rerun to continue an output folder."""
    urls = {f.url: i for i, f in enumerate(plan.files)}
    return {
        "format": FORMAT,
        "files": [asdict(f) for f in plan.files],
        "options": asdict(plan.options),
        "model_sha256": sha256,
        "labels": list(labels),
        "partitions": [[urls[p.url], p.start, p.stop] for p in plan.partitions],
    }


def _ls(fs: AbstractFileSystem, folder: str) -> list[str]:
    try:
        return [posixpath.basename(p.rstrip("/")) for p in fs.ls(folder, detail=False)]
    except FileNotFoundError:
        return []


def _open_output(
    fs: AbstractFileSystem, folder: str, output: str, identity: dict[str, Any], model: str
) -> set[int]:
    """Start or continue an output folder; return the partitions already written.

    Raises:
        ScoringError: The folder holds another run, or other files.
    """
    plan_path = f"{folder}/{PLAN_FILE}"
    if fs.exists(plan_path):
        with fs.open(plan_path, "rb") as fh:
            try:
                recorded = json.loads(fh.read())
            except ValueError as exc:
                raise ScoringError(f"{output}/{PLAN_FILE} is not valid JSON: {exc}") from exc
        before = recorded.get("identity", {}) if isinstance(recorded, dict) else {}
        if before != identity:
            if before.get("model_sha256") != identity["model_sha256"]:
                why = f"it was started with model {recorded.get('model')}, not {model}"
            else:
                why = "its input files, columns or partition size differ"
            raise ScoringError(
                f"{output} holds another scoring run ({why}): rerun it with its own arguments,"
                " or choose another --output"
            )
    else:
        if fs.exists(folder) and not fs.isdir(folder):
            raise ScoringError(f"{output} is a file, not a folder")
        if _ls(fs, folder):
            raise ScoringError(
                f"{output} is not empty and holds no scoring plan: choose a new or empty folder"
            )
        fs.makedirs(folder, exist_ok=True)
        document = {
            "identity": identity,
            "model": model,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        data = json.dumps(document, ensure_ascii=False, indent=1).encode("utf-8")
        _write_atomically(fs, folder, PLAN_FILE, lambda fh: fh.write(data))
    done: set[int] = set()
    for name in _ls(fs, folder):
        if _TEMP_RE.match(name):
            fs.rm(f"{folder}/{name}")  # left by a crash mid-write: never a complete partition
        elif match := _PART_RE.match(name):
            done.add(int(match[1]))
    return done


def _read_model(model_dir: Path) -> tuple[str, tuple[str, ...], dict[str, bytes]]:
    """Read a model folder's files and check the pipeline's checksum before shipping them."""
    manifest = read_manifest(model_dir)
    try:
        files = {name: (model_dir / name).read_bytes() for name in model_files(manifest)}
    except OSError as exc:
        raise ModelLoadError(f"cannot read the model at {model_dir}: {exc}") from exc
    if hashlib.sha256(files[PIPELINE_FILE]).hexdigest() != manifest.sha256:
        raise ModelLoadError(
            f"checksum mismatch for {model_dir / PIPELINE_FILE}: the artifact is corrupt or was"
            " modified"
        )
    return manifest.sha256, manifest.labels, files


def _rows_written(fs: AbstractFileSystem, folder: str, names: Iterator[str]) -> int:
    total = 0
    for name in names:
        with fs.open(f"{folder}/{name}", "rb") as fh:
            total += pq.read_metadata(fh).num_rows
    return total


def score_corpus(
    client: Client,
    source: str,
    output: str,
    model_dir: Path,
    options: ScoreOptions | None = None,
    model_label: str | None = None,
    progress: ScoreProgress | None = None,
) -> ScoreOutcome:
    """Label every row of ``source`` on the cluster of ``client`` into Parquet files in ``output``.

    Partitions already in ``output`` (from an interrupted run with the same input, options and
    model) are skipped. ``_SUCCESS`` is written when every partition is there.

    Args:
        client: A client of the Dask cluster.
        source: Input file, folder or glob (local path or fsspec URL the workers can read).
        output: Output folder (local path or fsspec URL the workers can write).
        model_dir: A model folder written by :func:`classifier.save_model`.
        options: Columns and partition size.
        model_label: How to name the model in the plan and messages (default: the folder).
        progress: Progress receiver.

    Returns:
        What was done.

    Raises:
        ScoringError: Bad input, an output folder of another run, no workers, workers that cannot
            see the input or output, or failed partitions (the others stay written).
        ModelLoadError: The model folder is incomplete or its checksum does not match.
    """
    started = time.perf_counter()
    options = options or ScoreOptions()
    progress = progress or _Silent()
    label = model_label or str(model_dir)
    sha256, labels, files = _read_model(model_dir)
    fs, folder = url_to_fs(output)
    folder = folder.rstrip("/")
    output_url = fs.unstrip_protocol(folder)
    progress.step(f"planning partitions of {source}")
    plan = make_plan(source, options, exclude=output_url)
    digits = max(6, len(str(len(plan.partitions))))
    done = _open_output(fs, folder, output, _plan_identity(plan, sha256, labels), label)
    done &= {p.index for p in plan.partitions}
    todo = [p for p in plan.partitions if p.index not in done]
    try:
        client.wait_for_workers(1, timeout=_WAIT_FOR_WORKERS_SECONDS)
    except TimeoutError as exc:
        raise ScoringError(
            f"the Dask cluster has no workers after {_WAIT_FOR_WORKERS_SECONDS:.0f}s"
        ) from exc
    workers = len(client.nthreads())  # type: ignore[no-untyped-call]
    computed: list[int] = []
    scored = empty = 0
    if todo:
        success = f"{folder}/{SUCCESS_FILE}"
        if fs.exists(success):
            fs.rm(success)  # partitions were removed since: not complete until this run ends
        plan_url = f"{output_url}/{PLAN_FILE}"
        blind = {w: m for w, m in client.run(_missing, [todo[0].url, plan_url]).items() if m}
        if blind:
            worker, missing = next(iter(blind.items()))
            raise ScoringError(
                f"worker {worker} cannot see {missing[0]}: with --scheduler, input and output must"
                " be on storage every worker reaches (a shared file system or an object store URL)"
            )
        progress.step(f"shipping the model to {workers} worker(s)")
        client.register_plugin(ModelPlugin(sha256, files), name=plugin_name(sha256))
        job = Job(output_url, sha256, options.text_column, options.id_column, digits)
        progress.start(len(plan.partitions), len(done))
        run = uuid.uuid4().hex[:8]
        keys = [f"narratives-partition-{p.index:0{digits}d}-{run}" for p in todo]
        futures = client.map(score_partition, todo, job=job, key=keys, pure=False)
        index_of = {f.key: p.index for f, p in zip(futures, todo, strict=True)}
        failures: list[tuple[int, BaseException]] = []
        for future in as_completed(futures):  # type: ignore[no-untyped-call]
            try:
                result: PartitionResult = future.result()
            except Exception as exc:  # a task's error arrives as raised on the worker
                failures.append((index_of[future.key], exc))
                continue
            computed.append(result.index)
            scored += result.rows
            empty += result.empty
            progress.advance(result.rows)
        if failures:
            index, error = min(failures, key=lambda f: f[0])
            reason = (str(error).splitlines() or [""])[0]
            raise ScoringError(
                f"{len(failures)} of {len(todo)} partition(s) failed (partition {index}:"
                f" {type(error).__name__}: {reason}); the others are written: rerun the same"
                " command to resume"
            )
    else:
        progress.start(len(plan.partitions), len(done))
    rows = scored + _rows_written(fs, folder, (part_name(i, digits) for i in sorted(done)))
    seconds = time.perf_counter() - started
    summary = {
        "rows": rows,
        "partitions": len(plan.partitions),
        "model": label,
        "model_sha256": sha256,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    data = json.dumps(summary, ensure_ascii=False, indent=1).encode("utf-8")
    _write_atomically(fs, folder, SUCCESS_FILE, lambda fh: fh.write(data))
    return ScoreOutcome(
        output=output_url,
        partitions=len(plan.partitions),
        computed=tuple(sorted(computed)),
        rows=rows,
        scored=scored,
        empty=empty,
        seconds=seconds,
        model=label,
        workers=workers,
    )


def run_scoring(config: ScoreConfig, progress: ScoreProgress | None = None) -> ScoreOutcome:
    """Resolve the model, connect to (or start) a cluster, and score the corpus.

    The model (the champion by default) is downloaded once, here, into a temporary folder; the
    workers receive its checked bytes.

    Args:
        config: The job.
        progress: Progress receiver.

    Returns:
        What was done.

    Raises:
        ScoringError: See :func:`score_corpus`.
        TrackingError: No champion, or the model cannot be downloaded.
        ClusterError: The scheduler cannot be reached.
    """
    import tempfile

    from training.cluster import dask_client
    from training.lifecycle import fetch_model

    progress = progress or _Silent()
    with tempfile.TemporaryDirectory(prefix="narratives-score-") as tmp:
        progress.step("resolving the model")
        model_dir, label = fetch_model(
            config.model, config.model_name, Path(tmp), config.tracking_uri
        )
        where = config.scheduler or "a local cluster"
        progress.step(f"connecting to {where}" if config.scheduler else f"starting {where}")
        with dask_client(config.scheduler, config.workers) as client:
            return score_corpus(
                client, config.source, config.output, model_dir, config.options, label, progress
            )
