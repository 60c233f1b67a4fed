"""The memoised preprocessing and features give exactly the straightforward pipeline's results."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from camel_tools.tokenizers.word import simple_word_tokenize
from sklearn.feature_extraction.text import TfidfVectorizer

from classifier import NarrativeClassifier
from classifier.features import CharWbNgrams
from classifier.preprocess import normalize, normalize_cached, tokenize
from tests.conftest import TINY_CONFIG

CORPUS = Path(__file__).resolve().parents[1] / "seeds" / "corpus.jsonl"
ODD = [
    "",
    "   ",
    "a\x1cb c\u200bd",
    "ﷺ صلى ﷻ",
    "\ufefbأ\u0640\u0640ب https://x.y/z?q=1 info@a.b @user_1 ١٢٣ ABC",
    "كلمة،كلمة!؟ (قوس) «اقتباس» 3.5% #وسم 😀👍🏽",
    "\u202eمعكوس\u202c \u00a0 nbsp\tتاب\nسطر",
    "x" * 300,
]


@pytest.fixture(scope="module")
def texts() -> list[str]:
    rows = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines()]
    return [r["text"] for r in rows] + ODD


def test_cached_normalize_equals_normalize(texts: list[str]) -> None:
    for text in texts:
        assert normalize_cached(text) == normalize(text), text[:40]


def test_chunked_tokenize_equals_camel(texts: list[str]) -> None:
    for text in texts:
        norm = normalize(text)
        expected = [t for t in simple_word_tokenize(norm) if any(c.isalnum() for c in t)]
        assert tokenize(norm) == expected, text[:40]


def test_memoised_char_ngrams_equal_sklearn(texts: list[str]) -> None:
    for lo, hi in ((2, 5), (3, 6), (1, 1)):
        plain = TfidfVectorizer(analyzer="char_wb", ngram_range=(lo, hi), lowercase=False)
        reference = plain.build_analyzer()
        fast = CharWbNgrams((lo, hi))
        for text in texts:
            norm = normalize(text)
            assert fast(norm) == reference(norm)


@pytest.mark.slow
def test_predictions_identical_to_plain_pipeline(
    tiny_corpus: tuple[list[str], list[list[str]]], texts: list[str]
) -> None:
    train_texts, labels = tiny_corpus
    fast = NarrativeClassifier(TINY_CONFIG).fit(train_texts, labels)
    plain = NarrativeClassifier(replace(TINY_CONFIG, fast_char=False)).fit(train_texts, labels)
    probe = [t for t in texts if t.strip()][::7]
    np.testing.assert_array_equal(fast.predict_scores(probe), plain.predict_scores(probe))
    assert fast.thresholds == plain.thresholds
