"""Contract of the seed corpus (seeds/corpus.jsonl) that the default model learns from."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.feature_extraction.text import CountVectorizer

from classifier.segment import split_passages
from tests.conftest import DEV_SET, DIP, EI, SAN, SEED_ARTICLE

CORPUS = Path(__file__).resolve().parents[1] / "seeds" / "corpus.jsonl"
LABELS = {EI, DIP, SAN}
STYLES = {"news", "statement", "social"}
FIELDS = {"id", "text", "labels", "style", "note"}

# ../shared/taxonomy.md, "The seed article, labelled": the two captions, then the paragraphs.
# The table folds the short paragraph "وقال أيضا ..." into the one before it (diplomacy).
SEED_LABELS = [
    [DIP], [EI, DIP], [EI, DIP], [EI, DIP], [DIP], [DIP], [DIP], [DIP], [DIP], [],
    [EI], [EI], [EI], [EI], [EI], [EI], [EI], [EI],
]  # fmt: skip


@pytest.fixture(scope="module")
def rows() -> list[dict[str, Any]]:
    return [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines()]


def test_schema(rows: list[dict[str, Any]]) -> None:
    for i, row in enumerate(rows, 1):
        assert set(row) <= FIELDS and {"id", "text", "labels", "style"} <= set(row), i
        assert isinstance(row["id"], str) and row["id"], i
        assert isinstance(row["text"], str) and row["text"].strip() == row["text"] != "", i
        assert isinstance(row["labels"], list) and set(row["labels"]) <= LABELS, i
        assert len(set(row["labels"])) == len(row["labels"]), i
        assert row["style"] in STYLES, i
        assert isinstance(row.get("note", ""), str), i


def test_unique_ids(rows: list[dict[str, Any]]) -> None:
    ids = Counter(r["id"] for r in rows)
    assert [i for i, n in ids.items() if n > 1] == []


def test_counts(rows: list[dict[str, Any]]) -> None:
    per_label = Counter(label for r in rows for label in r["labels"])
    assert len(rows) >= 1200
    assert all(per_label[label] >= 250 for label in LABELS), per_label
    assert sum(1 for r in rows if not r["labels"]) >= 400
    assert sum(1 for r in rows if len(r["labels"]) >= 2) >= 0.15 * len(rows)
    assert sum(1 for r in rows if r["style"] != "news") >= 0.15 * len(rows)


def test_passage_length(rows: list[dict[str, Any]]) -> None:
    for r in rows:
        if r["id"].startswith("seed-"):
            continue  # the seed article is kept as given
        assert 15 <= len(r["text"].split()) <= 150, r["id"]


def test_no_near_duplicates(rows: list[dict[str, Any]]) -> None:
    texts = [" ".join(r["text"].split()) for r in rows]
    grams = CountVectorizer(analyzer="char", ngram_range=(5, 5), binary=True, lowercase=False)
    x = grams.fit_transform(texts).astype(np.int32)
    sizes = np.asarray(x.sum(axis=1)).ravel()
    inter = (x @ x.T).tocoo()
    mask = inter.row < inter.col
    a, b, shared = inter.row[mask], inter.col[mask], inter.data[mask]
    jaccard = shared / (sizes[a] + sizes[b] - shared)
    worst = [(rows[i]["id"], rows[j]["id"], round(float(s), 2))
             for i, j, s in zip(a, b, jaccard, strict=True) if s >= 0.6]  # fmt: skip
    assert worst == []


def test_seed_paragraphs_present_with_labels(rows: list[dict[str, Any]]) -> None:
    by_text = {r["text"]: sorted(r["labels"]) for r in rows}
    passages = split_passages(SEED_ARTICLE.read_text(encoding="utf-8"))
    assert len(passages) == len(SEED_LABELS)
    for passage, labels in zip(passages, SEED_LABELS, strict=True):
        assert by_text.get(passage.text) == sorted(labels), passage.text[:40]


@pytest.mark.skipif(not DEV_SET.is_file(), reason="../shared/data/dev.jsonl not present")
def test_no_dev_text_in_corpus() -> None:
    corpus = CORPUS.read_text(encoding="utf-8")
    leaked = []
    for line in DEV_SET.read_text(encoding="utf-8").splitlines():
        probe = json.loads(line)["text"][20:120]
        if len(probe) > 60 and probe in corpus:
            leaked.append(probe[:30])
    assert leaked == []
