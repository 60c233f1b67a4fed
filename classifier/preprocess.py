"""Arabic text preprocessing: small pure ``str -> str`` steps composed in :func:`normalize`.

Every function here is module-level so that a persisted scikit-learn pipeline that refers to it
can be unpickled anywhere the package is installed (no lambdas, no closures).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache

from camel_tools.tokenizers.word import simple_word_tokenize
from camel_tools.utils.dediac import dediac_ar
from camel_tools.utils.normalize import (
    normalize_alef_ar,
    normalize_alef_maksura_ar,
    normalize_teh_marbuta_ar,
    normalize_unicode,
)

URL_TOKEN = "urltoken"
EMAIL_TOKEN = "emailtoken"
MENTION_TOKEN = "mentiontoken"
PLACEHOLDERS = frozenset({URL_TOKEN, EMAIL_TOKEN, MENTION_TOKEN})

# Zero-width and bidi formatting characters, BOM, soft hyphen and C0/C1 controls except \t \n \r.
_FORMAT_CHARS_RE = re.compile(
    "[\u00ad\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff"
    "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]"
)
URL_RE = re.compile(r"(?:https?://|www\.)[^\s<>\"]+", re.IGNORECASE)
EMAIL_RE = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
MENTION_RE = re.compile(r"(?<![\w@])@\w{1,30}")
_TATWEEL_RE = re.compile("\u0640+")
_SPACE_RE = re.compile(r"\s+")
_DIGITS = str.maketrans("٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹", "01234567890123456789")
_ARABIC_LETTERS = "\u0621-\u063a\u0641-\u064a\u0671-\u06d3\u06fa-\u06fc"
_ARABIC_LETTER_RE = re.compile(f"[{_ARABIC_LETTERS}]")
_NON_ARABIC_RE = re.compile(f"[^{_ARABIC_LETTERS}]+")
_NON_LETTERS_RE = re.compile(r"[\W\d_]+")
# \w is str.isalnum() and "_" (checked over every code point), so this is isalnum() itself.
_ALNUM_RE = re.compile(r"[^\W_]")
_OTHER_LETTER_RE = re.compile(f"[^\\W\\d_{_ARABIC_LETTERS}]")


def strip_format_chars(text: str) -> str:
    """Remove invisible formatting characters (bidi marks, zero-width, BOM) and control codes."""
    return _FORMAT_CHARS_RE.sub("", text)


def unicode_normalize(text: str) -> str:
    """Apply camel-tools' NFKC normalisation (folds Arabic presentation forms and ligatures)."""
    return str(normalize_unicode(text))


def replace_urls(text: str) -> str:
    """Replace web addresses with a placeholder token."""
    return URL_RE.sub(f" {URL_TOKEN} ", text)


def replace_emails(text: str) -> str:
    """Replace e-mail addresses with a placeholder token."""
    return EMAIL_RE.sub(f" {EMAIL_TOKEN} ", text)


def replace_mentions(text: str) -> str:
    """Replace social-media @mentions with a placeholder token."""
    return MENTION_RE.sub(f" {MENTION_TOKEN} ", text)


def dediacritize(text: str) -> str:
    """Remove Arabic diacritics (harakat, tanwin, shadda, sukun, dagger alef)."""
    return str(dediac_ar(text))


def remove_tatweel(text: str) -> str:
    """Remove the tatweel (kashida) elongation character."""
    return _TATWEEL_RE.sub("", text)


def normalize_alef(text: str) -> str:
    """Fold hamzated and madda alef forms (أ إ آ ٱ) to bare alef (ا)."""
    return str(normalize_alef_ar(text))


def normalize_alef_maksura(text: str) -> str:
    """Fold alef maksura (ى) to yeh (ي)."""
    return str(normalize_alef_maksura_ar(text))


def normalize_teh_marbuta(text: str) -> str:
    """Fold teh marbuta (ة) to heh (ه)."""
    return str(normalize_teh_marbuta_ar(text))


def ascii_digits(text: str) -> str:
    """Map Arabic-Indic and Persian digits to ASCII digits."""
    return text.translate(_DIGITS)


def lowercase(text: str) -> str:
    """Lower-case Latin (and other cased) letters; Arabic has no case and is unchanged."""
    return text.lower()


def collapse_whitespace(text: str) -> str:
    """Collapse runs of white space to one space and trim the ends."""
    return _SPACE_RE.sub(" ", text).strip()


# Order matters: addresses are replaced before lower-casing and digit folding touch them, and
# e-mails before mentions because an e-mail contains an "@".
STEPS: tuple[Callable[[str], str], ...] = (
    strip_format_chars,
    unicode_normalize,
    replace_urls,
    replace_emails,
    replace_mentions,
    dediacritize,
    remove_tatweel,
    normalize_alef,
    normalize_alef_maksura,
    normalize_teh_marbuta,
    ascii_digits,
    lowercase,
    collapse_whitespace,
)


def normalize(text: str) -> str:
    """Normalise Arabic text for feature extraction.

    Args:
        text: Raw text as received.

    Returns:
        The text after every step in :data:`STEPS`, in order.
    """
    for step in STEPS:
        text = step(text)
    return text


# Every step after strip_format_chars maps a whitespace-free chunk to text that depends on that
# chunk alone, so a text's normalisation is its chunks' normalisations joined by spaces. Chunks
# (words) repeat across documents, which makes a per-chunk cache pay off; a test pins the
# equality with normalize() on the seed corpus and on odd input.
_WORD_STEPS = STEPS[1:]
_CACHE_WORDS = 200_000


@lru_cache(maxsize=_CACHE_WORDS)
def normalize_chunk(chunk: str) -> str:
    """Normalise one white-space-free chunk of text whose format characters are stripped.

    A text's normalisation is its chunks' normalisations joined by spaces (see
    :func:`normalize_cached`); the result may hold spaces (placeholders) or be empty.

    Args:
        chunk: One item of ``strip_format_chars(text).split()``.

    Returns:
        The chunk after every step of :data:`STEPS` but the first.
    """
    for step in _WORD_STEPS:
        chunk = step(chunk)
    return chunk


def normalize_cached(text: str) -> str:
    """Same result as :func:`normalize`, computed word by word with a cache (faster in bulk).

    Args:
        text: Raw text.

    Returns:
        ``normalize(text)``.
    """
    chunks = [normalize_chunk(c) for c in strip_format_chars(text).split()]
    return collapse_whitespace(" ".join(c for c in chunks if c))


def normalize_many(texts: Iterable[str]) -> list[str]:
    """Normalise a batch of texts (the first step of the persisted pipeline).

    Args:
        texts: Raw texts.

    Returns:
        The normalised texts, in order.
    """
    return [normalize_cached(t) for t in texts]


def _is_word(token: str) -> bool:
    # Has a character for which str.isalnum() holds (one regex scan, not a generator).
    return _ALNUM_RE.search(token) is not None


@lru_cache(maxsize=_CACHE_WORDS)
def _chunk_tokens(chunk: str) -> tuple[str, ...]:
    return tuple(tok for tok in simple_word_tokenize(chunk) if _is_word(tok))


def tokenize(text: str) -> list[str]:
    """Split normalised text into word tokens with camel-tools' word tokenizer.

    camel-tools splits on white space first and then separates punctuation inside each chunk,
    so tokenising chunk by chunk (cached, since words repeat) gives exactly its result.
    Punctuation tokens are dropped: they carry no narrative and would only add noise features.

    Args:
        text: Text, normally already passed through :func:`normalize`.

    Returns:
        The word tokens in order.
    """
    tokens: list[str] = []
    for chunk in text.split():
        tokens.extend(_chunk_tokens(chunk))
    return tokens


def arabic_ratio(text: str) -> float:
    """Share of letters in ``text`` that are Arabic letters (0.0 when there are no letters).

    Args:
        text: Any text.

    Returns:
        A number in [0, 1].
    """
    # Arabic news is nearly always all-Arabic: one scan for another script's letter settles it.
    if _OTHER_LETTER_RE.search(text) is None:
        return 1.0 if _ARABIC_LETTER_RE.search(text) else 0.0
    letters = _NON_LETTERS_RE.sub("", text)
    if not letters:
        return 0.0
    return len(_NON_ARABIC_RE.sub("", letters)) / len(letters)


# Words in the original text, with diacritics and tatweel kept inside the match so that a span
# covers the whole written word; addresses first so they map to their placeholder tokens.
_SPAN_RE = re.compile(
    URL_RE.pattern
    + "|"
    + EMAIL_RE.pattern
    + "|"
    + MENTION_RE.pattern
    + "|[\\w\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06ed\u0640]+",
    re.IGNORECASE,
)


def token_spans(text: str) -> list[tuple[str, int, int]]:
    """Locate normalised word tokens in the original text.

    Args:
        text: Original, unnormalised text.

    Returns:
        ``(token, start, end)`` triples where ``token`` is a normalised token and
        ``text[start:end]`` is the written form it came from.
    """
    spans: list[tuple[str, int, int]] = []
    for match in _SPAN_RE.finditer(text):
        for token in tokenize(normalize(match.group())):
            spans.append((token, match.start(), match.end()))
    return spans


def find_term(spans: Sequence[tuple[str, int, int]], term: str) -> list[tuple[int, int]]:
    """Find every occurrence of a (possibly multi-word) normalised term among token spans.

    Args:
        spans: Output of :func:`token_spans`.
        term: One or more normalised tokens separated by single spaces.

    Returns:
        ``(start, end)`` character offsets into the original text, one pair per occurrence.
    """
    parts = term.split(" ")
    n = len(parts)
    found: list[tuple[int, int]] = []
    for i in range(len(spans) - n + 1):
        if all(spans[i + k][0] == parts[k] for k in range(n)):
            found.append((spans[i][1], spans[i + n - 1][2]))
    return found
