from __future__ import annotations

import pytest

from classifier.segment import split_passages
from tests.conftest import SEED_ARTICLE


def _check_offsets(text: str) -> None:
    for p in split_passages(text, max_chars=120):
        assert text[p.start : p.end] == p.text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("فقرة أولى.\n\nفقرة ثانية.", ["فقرة أولى.", "فقرة ثانية."]),
        ("سطر أول\nسطر ثان", ["سطر أول", "سطر ثان"]),
        ("  \n\n  نص وحيد  \n\n\n", ["نص وحيد"]),
        ("عنوان\nعنوان\n\nفقرة", ["عنوان\nعنوان", "فقرة"]),
        ("", []),
    ],
)
def test_paragraphs(text: str, expected: list[str]) -> None:
    assert [p.text for p in split_passages(text)] == expected
    _check_offsets(text)


def test_long_paragraph_becomes_sentence_windows() -> None:
    sentence = "قال المتحدث إن المباحثات كانت مثمرة وبناءة. "
    text = sentence * 20
    passages = split_passages(text, max_chars=200)
    assert len(passages) > 1
    assert all(len(p.text) <= 200 for p in passages)
    assert all(text[p.start : p.end] == p.text for p in passages)
    # no text lost: windows cover every sentence in order
    assert " ".join(p.text for p in passages) == text.strip()


def test_seed_article_paragraphs() -> None:
    text = SEED_ARTICLE.read_text(encoding="utf-8")
    passages = split_passages(text)
    # 2 captions + 16 paragraphs (the taxonomy table folds "وقال أيضا" into the one before it)
    assert len(passages) == 18
    assert passages[1].text.startswith("طلب الرئيس دونالد ترامب")
    _check_offsets(text)
