"""Split long documents into passages, keeping character offsets into the original text."""

from __future__ import annotations

import re
from dataclasses import dataclass

# Paragraphs are separated by a blank line when the text has any; otherwise by single newlines.
_BLANK_LINE_RE = re.compile(r"\n[ \t\u00a0]*\n")
_LINE_RE = re.compile(r"\n")
# A sentence ends after . ! ? Arabic question mark, Arabic semicolon or an ellipsis, then spaces.
_SENTENCE_END_RE = re.compile(r"(?<=[.!?؟؛…])\s+")

DEFAULT_MAX_CHARS = 1500


@dataclass(frozen=True, slots=True)
class Passage:
    """A passage of a document.

    Attributes:
        text: The passage text, exactly ``document[start:end]``.
        start: Offset of the first character in the document.
        end: Offset one past the last character.
    """

    text: str
    start: int
    end: int


def _pieces(text: str, offset: int, separator: re.Pattern[str]) -> list[Passage]:
    out: list[Passage] = []
    pos = 0
    for match in [*separator.finditer(text), None]:
        stop = match.start() if match else len(text)
        chunk = text[pos:stop]
        stripped = chunk.strip()
        if stripped:
            lead = len(chunk) - len(chunk.lstrip())
            start = offset + pos + lead
            out.append(Passage(stripped, start, start + len(stripped)))
        if match:
            pos = match.end()
    return out


def _windows(paragraph: Passage, max_chars: int) -> list[Passage]:
    """Group a long paragraph's sentences into windows of at most ``max_chars`` characters."""
    sentences = _pieces(paragraph.text, paragraph.start, _SENTENCE_END_RE)
    windows: list[Passage] = []
    current: list[Passage] = []
    for sentence in sentences:
        if current and sentence.end - current[0].start > max_chars:
            windows.append(_join(paragraph, current))
            current = []
        current.append(sentence)
    if current:
        windows.append(_join(paragraph, current))
    return windows


def _join(paragraph: Passage, sentences: list[Passage]) -> Passage:
    start, end = sentences[0].start, sentences[-1].end
    rel = start - paragraph.start
    return Passage(paragraph.text[rel : rel + end - start], start, end)


def split_passages(text: str, max_chars: int = DEFAULT_MAX_CHARS) -> list[Passage]:
    """Split a document into passages: paragraphs, and overlong paragraphs into sentence windows.

    Args:
        text: The whole document.
        max_chars: Paragraphs longer than this are cut into windows of whole sentences no longer
            than this (a single sentence longer than the limit stays whole).

    Returns:
        Passages in document order; ``text[p.start:p.end] == p.text`` for each.
    """
    separator = _BLANK_LINE_RE if _BLANK_LINE_RE.search(text) else _LINE_RE
    passages: list[Passage] = []
    for paragraph in _pieces(text, 0, separator):
        if len(paragraph.text) > max_chars:
            passages.extend(_windows(paragraph, max_chars))
        else:
            passages.append(paragraph)
    return passages
