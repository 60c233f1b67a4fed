"""Feature analysers: character n-grams inside word boundaries, memoised per word.

scikit-learn's ``char_wb`` analyser rebuilds every word's n-grams in Python for every document.
Words repeat (a few thousand distinct words cover most news text), so caching each word's n-grams
gives the same features several times faster. :class:`CharWbNgrams` is a picklable class, not a
closure, so a persisted pipeline that uses it loads anywhere the package is installed.
"""

from __future__ import annotations

from functools import lru_cache

# Enough for the vocabulary of a large news corpus; each entry is a small tuple of strings.
_CACHE_WORDS = 200_000


@lru_cache(maxsize=_CACHE_WORDS)
def word_char_ngrams(word: str, min_n: int, max_n: int) -> tuple[str, ...]:
    """Character n-grams of one space-padded word, exactly as scikit-learn's ``char_wb`` makes them.

    Args:
        word: A word without white space.
        min_n: Smallest n-gram length.
        max_n: Largest n-gram length.

    Returns:
        The n-grams, in scikit-learn's order (a word shorter than ``n`` counts once).
    """
    padded = f" {word} "
    size = len(padded)
    grams: list[str] = []
    for n in range(min_n, max_n + 1):
        if size <= n:
            grams.append(padded)
            break
        grams.extend(padded[i : i + n] for i in range(size - n + 1))
    return tuple(grams)


class CharWbNgrams:
    """Analyser equal to ``TfidfVectorizer(analyzer="char_wb", lowercase=False)``, memoised.

    Args:
        ngram_range: Smallest and largest n-gram length.
    """

    def __init__(self, ngram_range: tuple[int, int]) -> None:
        self.ngram_range = (int(ngram_range[0]), int(ngram_range[1]))

    def __call__(self, document: str) -> list[str]:
        """Return the document's n-grams, word by word."""
        lo, hi = self.ngram_range
        grams: list[str] = []
        for word in document.split():
            grams.extend(word_char_ngrams(word, lo, hi))
        return grams

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CharWbNgrams) and other.ngram_range == self.ngram_range

    def __hash__(self) -> int:
        return hash(self.ngram_range)

    def __repr__(self) -> str:
        return f"CharWbNgrams({self.ngram_range})"
