"""Read and validate labelled corpora (JSONL and CSV) before anything is fitted or logged.

Every problem is collected with its file and line, so a user fixes a file in one pass instead of
one error per run.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections import Counter
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from classifier.errors import TrainingDataError

DEFAULT_MIN_LABEL_COUNT = 5
MAX_PROBLEMS_SHOWN = 50


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with the input, located by file and line (line 0: the whole data set)."""

    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}" if self.line else self.message


class DataValidationError(TrainingDataError):
    """The training data has problems; ``problems`` lists each with its file and line."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        shown = "\n".join(f"  {p}" for p in self.problems[:MAX_PROBLEMS_SHOWN])
        more = len(self.problems) - MAX_PROBLEMS_SHOWN
        tail = f"\n  ... and {more} more" if more > 0 else ""
        super().__init__(f"{len(self.problems)} problem(s) in the training data:\n{shown}{tail}")


@dataclass(frozen=True, slots=True)
class Record:
    """A labelled passage and where it came from."""

    id: str
    text: str
    labels: tuple[str, ...]
    path: str
    line: int


@dataclass(frozen=True)
class Dataset:
    """A validated corpus.

    Attributes:
        records: The passages in file order.
        name: A short name (the file names joined).
        digest: SHA-256 over the ids, texts and labels: the same data gives the same digest.
        label_counts: Passages per label, plus ``"(none)"`` for passages without labels.
    """

    records: tuple[Record, ...]
    name: str
    digest: str
    label_counts: dict[str, int] = field(default_factory=dict)

    @property
    def texts(self) -> list[str]:
        """The passage texts."""
        return [r.text for r in self.records]

    @property
    def label_sets(self) -> list[list[str]]:
        """The label list of each passage."""
        return [list(r.labels) for r in self.records]

    @property
    def labels(self) -> tuple[str, ...]:
        """The label names used, sorted."""
        return tuple(sorted(k for k in self.label_counts if k != "(none)"))

    def __len__(self) -> int:
        return len(self.records)


def _lines(path: Path, problems: list[Problem]) -> Iterator[tuple[int, str]]:
    """Yield decoded lines; a line that is not UTF-8 is reported, not guessed at."""
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, 1):
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]  # a byte-order mark is harmless: drop it
            try:
                yield number, raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                problems.append(Problem(str(path), number, f"not valid UTF-8 ({exc.reason})"))


def _parse_labels(value: object, where: tuple[str, int], problems: list[Problem]) -> list[str]:
    """Labels as a list of names; CSV cells may hold a JSON list or ``a|b``."""
    if isinstance(value, str):
        stripped = value.strip()
        if stripped.startswith("["):
            try:
                value = json.loads(stripped)
            except json.JSONDecodeError:
                problems.append(Problem(*where, f"labels {value!r} is not a valid JSON list"))
                return []
        else:
            value = [p.strip() for p in stripped.split("|") if p.strip()]
    if value is None:
        return []
    if not isinstance(value, list):
        problems.append(Problem(*where, f"labels must be a list, got {type(value).__name__}"))
        return []
    out: list[str] = []
    for item in value:
        if not isinstance(item, str) or not item.strip():
            problems.append(Problem(*where, f"label {item!r} is not a non-empty string"))
        else:
            out.append(item.strip())
    return out


def _record(
    obj: object, where: tuple[str, int], fallback_id: str, problems: list[Problem]
) -> Record | None:
    if not isinstance(obj, dict):
        problems.append(Problem(*where, f"expected a JSON object, got {type(obj).__name__}"))
        return None
    before = len(problems)
    text = obj.get("text")
    if text is None:
        problems.append(Problem(*where, "missing field 'text'"))
    elif not isinstance(text, str):
        problems.append(
            Problem(*where, f"field 'text' must be a string, got {type(text).__name__}")
        )
    elif not text.strip():
        problems.append(Problem(*where, "field 'text' is empty"))
    if "labels" not in obj:
        problems.append(Problem(*where, "missing field 'labels' (use [] for no label)"))
    labels = _parse_labels(obj.get("labels"), where, problems)
    raw_id = obj.get("id", fallback_id)
    if isinstance(raw_id, bool) or not isinstance(raw_id, str | int) or str(raw_id) == "":
        problems.append(Problem(*where, f"field 'id' must be a string or integer, got {raw_id!r}"))
    if len(problems) > before:
        return None
    assert isinstance(text, str)
    return Record(str(raw_id), text, tuple(dict.fromkeys(labels)), where[0], where[1])


def _read_jsonl(path: Path, problems: list[Problem]) -> list[Record]:
    records = []
    for number, line in _lines(path, problems):
        if not line.strip():
            continue
        where = (str(path), number)
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(Problem(*where, f"malformed JSON: {exc.msg} at column {exc.colno}"))
            continue
        record = _record(obj, where, f"{path.name}:{number}", problems)
        if record:
            records.append(record)
    return records


def _read_csv(path: Path, problems: list[Problem]) -> list[Record]:
    lines = dict(_lines(path, problems))
    if not lines:
        return []
    # csv needs the whole text for quoted newlines; track the physical line of each row.
    buffer = io.StringIO("".join(lines[n] for n in sorted(lines)))
    reader = csv.DictReader(buffer)
    fields = reader.fieldnames or []
    if "text" not in fields or "labels" not in fields:
        problems.append(
            Problem(str(path), 1, f"CSV header needs 'text' and 'labels', has {fields}")
        )
        return []
    records = []
    for row in reader:
        number = reader.line_num
        where = (str(path), number)
        if None in row:
            problems.append(Problem(*where, "row has more cells than the header"))
            continue
        obj = {k: v for k, v in row.items() if k is not None}
        if not obj.get("id"):
            obj.pop("id", None)
        record = _record(obj, where, f"{path.name}:{number}", problems)
        if record:
            records.append(record)
    return records


def digest_records(records: Sequence[Record]) -> str:
    """SHA-256 of the ids, texts and labels, independent of file names and formatting."""
    digest = hashlib.sha256()
    for r in records:
        digest.update(json.dumps([r.id, r.text, sorted(r.labels)], ensure_ascii=False).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def load_dataset(
    paths: Sequence[str | Path],
    min_label_count: int = DEFAULT_MIN_LABEL_COUNT,
    known_labels: Collection[str] | None = None,
) -> Dataset:
    """Read one or more JSONL/CSV files and validate all of them together.

    Args:
        paths: Files to read; ``.csv`` files are CSV, anything else JSON Lines.
        min_label_count: Fewest passages a label must have to be learnable.
        known_labels: When given, any other label is an error (a typo would otherwise become a
            new label of its own).

    Returns:
        The validated data set.

    Raises:
        DataValidationError: Listing every problem found, with file and line.
    """
    problems: list[Problem] = []
    records: list[Record] = []
    for raw_path in paths:
        path = Path(raw_path)
        if not path.is_file():
            problems.append(Problem(str(path), 0, f"{path}: no such file"))
            continue
        reader = _read_csv if path.suffix.lower() == ".csv" else _read_jsonl
        records.extend(reader(path, problems))
    if known_labels is not None:
        known = sorted(known_labels)
        for r in records:
            for label in r.labels:
                if label not in known_labels:
                    problems.append(
                        Problem(
                            r.path, r.line, f"unknown label {label!r} (known: {', '.join(known)})"
                        )
                    )
    seen: dict[str, Record] = {}
    for r in records:
        if r.id in seen:
            first = seen[r.id]
            problems.append(
                Problem(
                    r.path, r.line, f"duplicate id {r.id!r} (first at {first.path}:{first.line})"
                )
            )
        else:
            seen[r.id] = r
    counts = Counter(label for r in records for label in r.labels)
    for label, count in sorted(counts.items()):
        if count < min_label_count:
            problems.append(
                Problem(
                    "",
                    0,
                    f"label {label!r} is used {count} time(s); at least {min_label_count}"
                    " passages are needed to learn and evaluate it",
                )
            )
    if not problems and not counts:
        problems.append(Problem("", 0, "no passage carries a label: nothing to learn"))
    if not problems and len(records) < 10:
        problems.append(Problem("", 0, f"only {len(records)} passages: at least 10 are needed"))
    if problems:
        raise DataValidationError(problems)
    label_counts = dict(sorted(counts.items()))
    label_counts["(none)"] = sum(1 for r in records if not r.labels)
    name = "+".join(Path(p).name for p in paths)
    return Dataset(tuple(records), name, digest_records(records), label_counts)
