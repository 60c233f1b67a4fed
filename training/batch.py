"""Label a JSONL or CSV file row by row, streaming, keeping row order and every input field."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from classifier import NarrativeClassifier
from training.data import DataValidationError, Problem

DEFAULT_BATCH = 256


def _read_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    if path.suffix.lower() == ".csv":
        with path.open(encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh)
            if "text" not in (reader.fieldnames or []):
                raise DataValidationError(
                    [Problem(str(path), 1, "CSV header has no 'text' column")]
                )
            for row in reader:
                yield reader.line_num, dict(row)
        return
    with path.open(encoding="utf-8-sig") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataValidationError(
                    [Problem(str(path), number, f"malformed JSON: {exc.msg}")]
                ) from exc
            if not isinstance(obj, dict):
                raise DataValidationError([Problem(str(path), number, "expected a JSON object")])
            yield number, obj


class _Writer:
    def __init__(self, path: Path, labels: tuple[str, ...]) -> None:
        self.path = path
        self.csv = path.suffix.lower() == ".csv"
        self.fh = path.open("w", encoding="utf-8", newline="")
        self.labels = labels
        self.writer: csv.DictWriter[str] | None = None

    def write(self, row: dict[str, Any]) -> None:
        if not self.csv:
            self.fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            return
        flat = {k: v for k, v in row.items() if k not in {"labels", "scores"}}
        flat["labels"] = "|".join(row["labels"])
        flat.update({f"score_{k}": v for k, v in row["scores"].items()})
        if self.writer is None:
            self.writer = csv.DictWriter(self.fh, fieldnames=list(flat))
            self.writer.writeheader()
        self.writer.writerow(flat)

    def close(self) -> None:
        self.fh.close()


def predict_file(
    clf: NarrativeClassifier,
    source: Path,
    target: Path,
    batch_size: int = DEFAULT_BATCH,
    on_batch: Callable[[int], None] | None = None,
) -> int:
    """Add ``labels`` and ``scores`` to every row of ``source`` and write ``target``.

    The input is read and written in batches, so files larger than memory work. Rows keep their
    order and their other fields. The output format follows ``target``'s suffix (``.csv`` or JSONL).

    Args:
        clf: A fitted classifier.
        source: Input JSONL or CSV with a ``text`` field.
        target: Output path; written to a temporary name first and renamed when complete.
        batch_size: Rows per prediction call.
        on_batch: Called with the number of rows done after each batch.

    Returns:
        Rows written.

    Raises:
        DataValidationError: A row is malformed or has an empty ``text`` (with file and line).
    """
    partial = target.with_name(target.name + ".partial")
    writer = _Writer(partial, clf.labels)
    done = 0
    batch: list[tuple[int, dict[str, Any]]] = []

    def flush() -> None:
        nonlocal done
        preds = clf.predict([str(row["text"]) for _, row in batch])
        for (_, row), pred in zip(batch, preds, strict=True):
            writer.write({**row, "labels": list(pred.labels), "scores": pred.scores})
        done += len(batch)
        batch.clear()
        if on_batch:
            on_batch(done)

    try:
        for number, row in _read_rows(source):
            text = row.get("text")
            if not isinstance(text, str) or not text.strip():
                raise DataValidationError(
                    [Problem(str(source), number, "field 'text' is missing or empty")]
                )
            batch.append((number, row))
            if len(batch) >= batch_size:
                flush()
        if batch:
            flush()
    except BaseException:
        writer.close()
        partial.unlink(missing_ok=True)
        raise
    writer.close()
    partial.replace(target)
    return done
