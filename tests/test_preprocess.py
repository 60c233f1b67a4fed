from __future__ import annotations

import json
import pickle
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from classifier import preprocess as pp


@pytest.mark.parametrize(
    ("step", "raw", "expected"),
    [
        # hamza and madda alef forms fold to bare alef
        (pp.normalize_alef, "أحمد", "احمد"),
        (pp.normalize_alef, "إيران", "ايران"),
        (pp.normalize_alef, "آسيا", "اسيا"),
        (pp.normalize_alef, "ٱلله", "الله"),
        (pp.normalize_alef, "مؤتمر", "مؤتمر"),  # hamza on waw is not an alef: kept
        # alef maksura
        (pp.normalize_alef_maksura, "مستشفى", "مستشفي"),
        (pp.normalize_alef_maksura, "على", "علي"),
        # teh marbuta
        (pp.normalize_teh_marbuta, "الحكومة", "الحكومه"),
        (pp.normalize_teh_marbuta, "تاء", "تاء"),
        # diacritics: fatha, damma, kasra, shadda, sukun, tanwin, dagger alef
        (pp.dediacritize, "الْعُقُوبَاتُ", "العقوبات"),
        (pp.dediacritize, "مُحَمَّدٌ", "محمد"),
        (pp.dediacritize, "هٰذا", "هذا"),
        (pp.dediacritize, "شكراً", "شكرا"),
        # tatweel
        (pp.remove_tatweel, "الـــعقوبات", "العقوبات"),
        (pp.remove_tatweel, "مجموعة الـ20", "مجموعة ال20"),
        # digits
        (pp.ascii_digits, "عام ٢٠١٩", "عام 2019"),
        (pp.ascii_digits, "۱۴۰۳", "1403"),
        (pp.ascii_digits, "145مليون", "145مليون"),
        # addresses and mentions
        (pp.replace_urls, "انظر https://example.com/a?b=1 الآن", "انظر  urltoken  الآن"),
        (pp.replace_urls, "www.site.org", " urltoken "),
        (pp.replace_emails, "راسلنا info@news.example.com", "راسلنا  emailtoken "),
        (pp.replace_mentions, "قال @user_1 إن", "قال  mentiontoken  إن"),
        (pp.replace_mentions, "a@b", "a@b"),  # not a mention: preceded by a word character
        # Latin case
        (pp.lowercase, "CNN و BBC", "cnn و bbc"),
        # white space
        (pp.collapse_whitespace, "  كلمة \n\t أخرى  ", "كلمة أخرى"),
        # invisible characters
        (pp.strip_format_chars, "عق\u200fوبات\u202e", "عقوبات"),
        (pp.strip_format_chars, "\ufeffنص\x00", "نص"),
        # presentation forms and ligatures (NFKC)
        (pp.unicode_normalize, "\ufefb", "لا"),
        (pp.unicode_normalize, "\ufe8d\ufedf", "ال"),
    ],
)
def test_step(step: Callable[[str], str], raw: str, expected: str) -> None:
    assert step(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("فَرَضَتْ الولاياتُ المتحدةُ عقوباتٍ", "فرضت الولايات المتحده عقوبات"),
        ("إلى   أين؟", "الي اين؟"),
        ("قمة الـ٢٠ في أوساكا", "قمه ال20 في اوساكا"),
        ("Trump و بوتين https://x.co/1 @AP", "trump و بوتين urltoken mentiontoken"),
        ("", ""),
    ],
)
def test_normalize_composes_steps(raw: str, expected: str) -> None:
    assert pp.normalize(raw) == expected


def test_normalize_is_idempotent() -> None:
    text = "طلب الرئيسُ دونالد ترامب من نظيره الروسي — https://t.co/x عدم التدخّل"
    once = pp.normalize(text)
    assert pp.normalize(once) == once


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("قال الوزير: نعم، بالطبع!", ["قال", "الوزير", "نعم", "بالطبع"]),
        ("عقوبات (جديدة) على 3 شركات", ["عقوبات", "جديدة", "على", "3", "شركات"]),
        ("mixed نص text", ["mixed", "نص", "text"]),
    ],
)
def test_tokenize_keeps_words_only(text: str, tokens: list[str]) -> None:
    assert pp.tokenize(text) == tokens


def test_a_word_token_is_one_with_an_alphanumeric_character() -> None:
    # The regex must agree with str.isalnum() on every code point, or tokens would change.
    mismatched = [
        hex(i) for i in range(sys.maxunicode + 1) if pp._is_word(chr(i)) != chr(i).isalnum()
    ]
    assert mismatched == []
    assert not pp._is_word("_-_") and pp._is_word("_x_") and pp._is_word("٣")


@pytest.mark.parametrize(
    ("text", "low", "high"),
    [
        ("نص عربي خالص", 0.99, 1.0),
        ("plain English", 0.0, 0.01),
        ("نص and text", 0.2, 0.5),
        ("123", 0, 0),
    ],
)
def test_arabic_ratio(text: str, low: float, high: float) -> None:
    assert low <= pp.arabic_ratio(text) <= high


def _arabic_ratio_by_counting(text: str) -> float:
    letters = [ch for ch in text if ch.isalpha()]
    arabic = [ch for ch in letters if pp._ARABIC_LETTER_RE.fullmatch(ch)]
    return len(arabic) / len(letters) if letters else 0.0


@pytest.mark.parametrize(
    "text",
    [
        "نص عربي خالص",
        "نصٌّ مُشَكَّل، وأرقام ١٢٣ و456",
        "CNN: بيان رسمي",
        "ﻻ ﷲ presentation forms",
        "Ελληνικά و русский",
        "_____ ١٢٣ !!!",
        "",
        "ـــ",
        "پیام فارسی گ",
    ],
)
def test_arabic_ratio_counts_every_letter(text: str) -> None:
    # The fast path (no letter of another script) must agree with counting letter by letter.
    assert pp.arabic_ratio(text) == pytest.approx(_arabic_ratio_by_counting(text))


def test_arabic_ratio_matches_counting_on_the_seed_corpus() -> None:
    corpus = Path(__file__).resolve().parents[1] / "seeds" / "corpus.jsonl"
    for line in corpus.read_text(encoding="utf-8").splitlines():
        text = json.loads(line)["text"]
        assert pp.arabic_ratio(text) == pytest.approx(_arabic_ratio_by_counting(text)), text


def test_token_spans_point_at_written_words() -> None:
    text = "فَرَضَت الـعقوبات على https://a.b/c"
    spans = pp.token_spans(text)
    assert [t for t, _, _ in spans] == ["فرضت", "العقوبات", "علي", "urltoken"]
    for token, start, end in spans:
        assert pp.normalize(text[start:end]) == token


def test_find_term_multiword() -> None:
    text = "فرض الاتحاد الأوروبي عقوبات، ثم الاتحاد الأوروبي مجددا"
    spans = pp.token_spans(text)
    found = pp.find_term(spans, "الاتحاد الاوروبي")
    assert [text[s:e] for s, e in found] == ["الاتحاد الأوروبي", "الاتحاد الأوروبي"]


@pytest.mark.parametrize("fn", [pp.normalize, pp.normalize_many, pp.tokenize, *pp.STEPS])
def test_functions_pickle_by_reference(fn: Callable[..., object]) -> None:
    assert pickle.loads(pickle.dumps(fn)) is fn
