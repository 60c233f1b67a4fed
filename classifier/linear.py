"""The fitted pipeline's arithmetic in plain NumPy: score passages without scikit-learn.

A fitted pipeline of word and character TF-IDF and one-vs-rest logistic regression is, at
prediction time, a few lookups and one dot product per passage: count the terms found in each
vocabulary, weight them (``1 + log(count)`` times the term's idf), scale each vocabulary's vector
to unit length, and take the logistic function of its dot product with each label's weights.
:class:`LinearScorer` holds exactly those numbers, taken from the fitted estimators, and computes
the same scores (``tests/test_linear.py`` pins them to ``Pipeline.predict_proba``).

What this buys a service: no scikit-learn import (seconds here) and no pickle at start-up, a
faster call for one passage (no estimator validation), each word's (and each raw chunk of text's)
normalised form, tokens and character n-gram columns cached, and a batch counted, weighted and
multiplied in a few NumPy calls. It is written next to the pickled pipeline as ``scorer.npz``
(arrays only, loaded with ``allow_pickle=False``); the pipeline stays the artifact of record.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from numpy.typing import NDArray

from classifier.errors import ModelLoadError
from classifier.features import word_char_ngrams
from classifier.preprocess import normalize_chunk, strip_format_chars, tokenize

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

SCORER_FILE = "scorer.npz"
SCORER_FORMAT = "narrative-linear/1"
# Terms are stored as one newline-joined UTF-8 buffer: a term never holds a newline (words are
# split on white space, and character n-grams are taken inside words).
_TERM_SEP = "\n"
# Per-word (and per-chunk) caches of columns and tokens; words repeat, so they stay small.
_CACHE_WORDS = 200_000
_NO_COLUMNS = np.zeros(0, dtype=np.intp)
# Documents are scored in slices of about this many characters: the temporary arrays take some
# 60 bytes per character, so a request at the size limits stays within tens of megabytes.
_SLICE_CHARS = 250_000
_INT32_MAX = int(np.iinfo(np.int32).max)

Kind = Literal["word", "char"]


@dataclass(frozen=True, eq=False)
class Block:
    """One vectoriser's part of the feature space.

    Attributes:
        name: The vectoriser's name in the pipeline (``word`` or ``char``).
        kind: ``word`` (tokens and word n-grams) or ``char`` (character n-grams inside words).
        ngram_range: Smallest and largest n.
        terms: The vocabulary, in column order.
        idf: Inverse document frequency of each term (float32, as fitted).
        offset: The block's first column in the joined feature space.
        sublinear_tf: Whether counts become ``1 + log(count)``.
    """

    name: str
    kind: Kind
    ngram_range: tuple[int, int]
    terms: tuple[str, ...]
    idf: NDArray[np.float32]
    offset: int
    sublinear_tf: bool
    vocabulary: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # Derived, not stored: the term list is the one source of truth.
        object.__setattr__(self, "vocabulary", {t: i for i, t in enumerate(self.terms)})


def _logistic(decision: NDArray[np.float64]) -> NDArray[np.float64]:
    return 1.0 / (1.0 + np.exp(-decision))


def word_ngrams(tokens: Sequence[str], ngram_range: tuple[int, int]) -> list[str]:
    """Word n-grams as scikit-learn's word analyser makes them (tokens joined by a space).

    Args:
        tokens: The tokens of one document.
        ngram_range: Smallest and largest n.

    Returns:
        Every n-gram for n in the range, shorter n first.
    """
    lo, hi = ngram_range
    grams: list[str] = list(tokens) if lo == 1 else []
    for n in range(max(lo, 2), min(hi, len(tokens)) + 1):
        # zip of the shifted token lists (stopping at the shortest) gives each window without
        # slicing per position
        grams.extend(map(" ".join, zip(*(tokens[k:] for k in range(n)), strict=False)))
    return grams


@dataclass(frozen=True, slots=True)
class _Entry:
    """What one word (or one raw chunk of text) adds to a document.

    Attributes:
        char_columns: Per character block (in block order), the columns of its n-grams found in
            that vocabulary, sorted.
        tokens: Its word tokens, in order (the word block makes its n-grams across tokens).
    """

    char_columns: tuple[NDArray[np.intp], ...]
    tokens: tuple[str, ...]


class _WordEntries(dict[str, _Entry]):
    """Entries of normalised words, computed on first sight of the word."""

    def __init__(self, char_blocks: Sequence[Block]) -> None:
        super().__init__()
        self.char_blocks = tuple(char_blocks)

    def __missing__(self, word: str) -> _Entry:
        columns = []
        for block in self.char_blocks:
            lo, hi = block.ngram_range
            found = map(block.vocabulary.get, word_char_ngrams(word, lo, hi))
            # Sorted, so that a document's occurrences are sorted runs, which sort faster.
            columns.append(np.sort(np.asarray([c for c in found if c is not None], dtype=np.intp)))
        entry = _Entry(tuple(columns), tuple(tokenize(word)))
        if len(self) >= _CACHE_WORDS:
            self.clear()
        self[word] = entry
        return entry


class _ChunkEntries(dict[str, _Entry]):
    """Entries of raw chunks of text (white-space-free), through their normalised words."""

    def __init__(self, words: _WordEntries) -> None:
        super().__init__()
        self.words = words

    def __missing__(self, chunk: str) -> _Entry:
        parts = [self.words[w] for w in normalize_chunk(chunk).split()]
        if len(parts) == 1:
            entry = parts[0]
        else:
            n_blocks = len(self.words.char_blocks)
            entry = _Entry(
                tuple(
                    np.concatenate([p.char_columns[i] for p in parts] or [_NO_COLUMNS])
                    for i in range(n_blocks)
                ),
                tuple(t for p in parts for t in p.tokens),
            )
        if len(self) >= _CACHE_WORDS:
            self.clear()
        self[chunk] = entry
        return entry


class LinearScorer:
    """Scores of a fitted word + char TF-IDF, one-vs-rest logistic regression pipeline.

    A batch is scored at once: the Python work is one cached lookup per word (or raw chunk) and
    the word n-grams of each document; the counting, weighting, normalising and dot products are
    a few NumPy calls over all the batch's term occurrences. The caches are plain dicts, safe to
    share between threads (at worst two threads compute the same entry).

    Args:
        blocks: The feature blocks, in the pipeline's order.
        coef: ``(labels, features)`` weights over the joined feature space.
        intercept: ``(labels,)`` intercepts.
    """

    def __init__(
        self,
        blocks: Sequence[Block],
        coef: NDArray[np.float64],
        intercept: NDArray[np.float64],
    ) -> None:
        self.blocks = tuple(blocks)
        self.coef = np.ascontiguousarray(coef, dtype=np.float64)
        self.intercept = np.asarray(intercept, dtype=np.float64)
        n_features = sum(len(b.terms) for b in self.blocks)
        if self.coef.shape != (len(self.intercept), n_features):
            raise ModelLoadError(
                f"scorer weights have shape {self.coef.shape}, expected"
                f" ({len(self.intercept)}, {n_features})"
            )
        char_blocks = [i for i, b in enumerate(self.blocks) if b.kind == "char"]
        # A block's position among the character blocks, where its columns sit in an entry.
        self._char_slot = {block: slot for slot, block in enumerate(char_blocks)}
        self._words = _WordEntries([self.blocks[i] for i in char_blocks])
        self._chunks = _ChunkEntries(self._words)

    def clear_cache(self) -> None:
        """Forget the cached columns and tokens of the words and chunks seen so far."""
        self._words.clear()
        self._chunks.clear()

    def term(self, column: int) -> tuple[Block, str]:
        """The block and term of a joined-space column."""
        for block in self.blocks:
            if block.offset <= column < block.offset + len(block.terms):
                return block, block.terms[column - block.offset]
        raise IndexError(column)

    def _occurrences(
        self, index: int, block: Block, entries: Sequence[Sequence[_Entry]]
    ) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
        """Document index and block-local column of every term occurrence in the vocabulary."""
        n_docs = len(entries)
        if block.kind == "char":
            slot = self._char_slot[index]
            parts = [e.char_columns[slot] for doc in entries for e in doc]
            if not parts:
                return _NO_COLUMNS, _NO_COLUMNS
            lengths = np.fromiter(map(len, parts), dtype=np.intp, count=len(parts))
            entry_docs = np.repeat(np.arange(n_docs), [len(doc) for doc in entries])
            return np.repeat(entry_docs, lengths), np.concatenate(parts)
        vocab_get = block.vocabulary.get
        flat: list[int] = []
        per_doc: list[int] = []
        for doc in entries:
            tokens = [t for e in doc for t in e.tokens]
            cols = [
                c for c in map(vocab_get, word_ngrams(tokens, block.ngram_range)) if c is not None
            ]
            flat.extend(cols)
            per_doc.append(len(cols))
        return np.repeat(np.arange(n_docs), per_doc), np.asarray(flat, dtype=np.intp)

    def _block_tfidf(
        self, index: int, block: Block, entries: Sequence[Sequence[_Entry]]
    ) -> tuple[NDArray[np.integer], NDArray[np.integer], NDArray[np.float32]]:
        """One block's TF-IDF entries of a batch: rows, block-local columns, values (row-major)."""
        n_docs, n_terms = len(entries), len(block.terms)
        docs, cols = self._occurrences(index, block, entries)
        # One key per (document, term): sorting groups a document's occurrences of a term and
        # orders the entries by document, then column, as a CSR matrix holds them.
        key_type = np.int32 if n_docs * n_terms <= _INT32_MAX else np.int64
        keys = np.sort(docs.astype(key_type) * n_terms + cols.astype(key_type), kind="stable")
        n = keys.size
        first = np.empty(n, dtype=bool)
        first[:1] = True
        np.not_equal(keys[1:], keys[:-1], out=first[1:])
        starts = np.flatnonzero(first)
        counts = np.empty(starts.size, dtype=np.float32)
        counts[:-1] = starts[1:] - starts[:-1]
        counts[-1:] = n - starts[-1:]
        rows, cols = np.divmod(keys[starts], n_terms)
        values = counts
        if block.sublinear_tf:
            np.log(values, out=values)
            values += np.float32(1)
        values *= block.idf[cols]
        # As scikit-learn's l2 normaliser: float32 squares summed in column order in a double
        # (bincount adds its weights one after another, so each row's sum is sequential).
        squares = (values * values).astype(np.float64)
        norms = np.sqrt(np.bincount(rows, weights=squares, minlength=n_docs))
        norms[norms == 0] = 1.0  # an empty row stays empty; x / 1.0 is x exactly
        return rows, cols, (values / norms[rows]).astype(np.float32)

    def _tfidf(
        self, entries: Sequence[Sequence[_Entry]]
    ) -> tuple[NDArray[np.integer], NDArray[np.intp], NDArray[np.float32]]:
        """The batch's TF-IDF entries: rows, joined-space columns, values.

        Block after block, each block row-major: so, taken in order, one row's entries come in
        ascending joined-space column order (the blocks follow one another in that space).
        """
        parts = [self._block_tfidf(i, b, entries) for i, b in enumerate(self.blocks)]
        rows = np.concatenate([p[0] for p in parts])
        cols = np.concatenate([p[1] + b.offset for p, b in zip(parts, self.blocks, strict=True)])
        return rows, cols, np.concatenate([p[2] for p in parts])

    def features(self, document: str) -> tuple[NDArray[np.intp], NDArray[np.float32]]:
        """The TF-IDF vector of one normalised document, as sparse columns and values.

        Args:
            document: A document already passed through :func:`classifier.preprocess.normalize`.

        Returns:
            Joined-space columns (ascending) and their float32 values, each block scaled to unit
            length, as the fitted vectorisers give them.
        """
        _, cols, values = self._tfidf([self._of_document(document)])
        return cols, values

    def _of_document(self, document: str) -> list[_Entry]:
        return list(map(self._words.__getitem__, document.split()))

    def _of_text(self, text: str) -> list[_Entry]:
        # The chunks normalize_cached would normalise one by one: words of the same document.
        return list(map(self._chunks.__getitem__, strip_format_chars(text).split()))

    def _decide(
        self, items: Sequence[str], entries_of: Callable[[str], list[_Entry]]
    ) -> NDArray[np.float64]:
        out = np.empty((len(items), len(self.intercept)), dtype=np.float64)
        start = 0
        while start < len(items):
            stop, chars = start + 1, len(items[start])
            while stop < len(items) and chars + len(items[stop]) <= _SLICE_CHARS:
                chars += len(items[stop])
                stop += 1
            out[start:stop] = self._decision([entries_of(x) for x in items[start:stop]])
            start = stop
        return out

    def _decision(self, entries: Sequence[Sequence[_Entry]]) -> NDArray[np.float64]:
        rows, cols, values = self._tfidf(entries)
        # np.take gathers whole columns several times faster than fancy indexing here
        products = np.take(self.coef, cols, axis=1) * values.astype(np.float64)
        totals = np.zeros((len(self.intercept), len(entries)), dtype=np.float64)
        # ufunc.at adds one entry after another onto its row's running total, so each row is
        # summed in column order, as SciPy's sparse product does; the intercept comes last.
        for label, weights in enumerate(products):
            np.add.at(totals[label], rows, weights)
        return totals.T + self.intercept

    def decision(self, documents: Sequence[str]) -> NDArray[np.float64]:
        """Per-label decision values (log-odds) of normalised documents, ``(docs, labels)``."""
        return self._decide(documents, self._of_document)

    def scores(self, documents: Sequence[str]) -> NDArray[np.float64]:
        """Per-label probabilities of normalised documents, ``(docs, labels)``.

        Args:
            documents: Documents already passed through
                :func:`classifier.preprocess.normalize`.

        Returns:
            The logistic function of each label's decision value, as the one-vs-rest logistic
            regression's ``predict_proba`` gives it.
        """
        return _logistic(self.decision(documents))

    def score_texts(self, texts: Sequence[str]) -> NDArray[np.float64]:
        """Per-label probabilities of raw texts: ``scores(normalize_many(texts))``, in one pass.

        Normalisation works chunk by chunk (see :func:`classifier.preprocess.normalize_cached`),
        so each raw chunk's normalised words, character n-gram columns and tokens are cached
        together, and a text costs one lookup per chunk.

        Args:
            texts: Raw texts.

        Returns:
            ``(texts, labels)`` probabilities, equal to :meth:`scores` of the normalised texts.
        """
        return _logistic(self._decide(texts, self._of_text))

    @classmethod
    def from_pipeline(cls, pipeline: Pipeline) -> LinearScorer | None:
        """Take the numbers out of a fitted pipeline, when it is of the supported shape.

        Args:
            pipeline: A fitted pipeline from :func:`classifier.pipeline.build_pipeline`.

        Returns:
            The scorer, or None for a pipeline whose scores it cannot reproduce (the calibrated
            SVM), which then predicts through scikit-learn.
        """
        view = linear_view(pipeline)
        return view[0] if view is not None and view[1] else None

    def save(self, path: Path) -> None:
        """Write the scorer as one ``.npz`` of plain arrays (no pickled objects).

        Args:
            path: The file to write.
        """
        meta: dict[str, Any] = {"format": SCORER_FORMAT, "blocks": []}
        arrays: dict[str, NDArray[Any]] = {"coef": self.coef, "intercept": self.intercept}
        for i, block in enumerate(self.blocks):
            if any(_TERM_SEP in t for t in block.terms):
                raise ValueError(f"a term of block {block.name!r} contains a newline")
            meta["blocks"].append(
                {
                    "name": block.name,
                    "kind": block.kind,
                    "ngram_range": list(block.ngram_range),
                    "offset": block.offset,
                    "sublinear_tf": block.sublinear_tf,
                }
            )
            joined = _TERM_SEP.join(block.terms).encode("utf-8")
            arrays[f"terms_{i}"] = np.frombuffer(joined, dtype=np.uint8)
            arrays[f"idf_{i}"] = block.idf
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
        with path.open("wb") as fh:
            np.savez(fh, allow_pickle=False, **arrays)

    @classmethod
    def load(cls, path: Path) -> LinearScorer:
        """Read a scorer written by :meth:`save`.

        Args:
            path: The ``.npz`` file (its checksum is verified by the caller).

        Returns:
            The scorer.

        Raises:
            ModelLoadError: The file is not a scorer of this format.
        """
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(bytes(data["meta"]).decode("utf-8"))
                if meta.get("format") != SCORER_FORMAT:
                    raise ModelLoadError(f"{path} is not of format {SCORER_FORMAT}")
                blocks = []
                for i, spec in enumerate(meta["blocks"]):
                    text = bytes(data[f"terms_{i}"]).decode("utf-8")
                    blocks.append(
                        Block(
                            name=str(spec["name"]),
                            kind="char" if spec["kind"] == "char" else "word",
                            ngram_range=(int(spec["ngram_range"][0]), int(spec["ngram_range"][1])),
                            terms=tuple(text.split(_TERM_SEP)) if text else (),
                            idf=np.asarray(data[f"idf_{i}"], dtype=np.float32),
                            offset=int(spec["offset"]),
                            sublinear_tf=bool(spec["sublinear_tf"]),
                        )
                    )
                return cls(blocks, data["coef"], data["intercept"])
        except ModelLoadError:
            raise
        except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
            raise ModelLoadError(f"cannot read the scorer {path}: {exc!r}") from exc


def _blocks_of(pipeline: Pipeline) -> list[Block] | None:
    from sklearn.feature_extraction.text import TfidfVectorizer

    from classifier.features import CharWbNgrams

    blocks: list[Block] = []
    offset = 0
    for name, vec in pipeline.named_steps["features"].transformer_list:
        if not isinstance(vec, TfidfVectorizer) or vec.norm != "l2" or not vec.use_idf:
            return None
        if vec.binary or vec.lowercase or vec.stop_words is not None:
            return None
        kind: Kind
        if isinstance(vec.analyzer, CharWbNgrams):
            kind, ngram_range = "char", vec.analyzer.ngram_range
        elif vec.analyzer == "char_wb":
            kind, ngram_range = "char", vec.ngram_range
        elif vec.analyzer == "word" and vec.tokenizer is tokenize:
            kind, ngram_range = "word", vec.ngram_range
        else:
            return None
        terms = [""] * len(vec.vocabulary_)
        for term, column in vec.vocabulary_.items():
            terms[column] = term
        blocks.append(
            Block(
                name=name,
                kind=kind,
                ngram_range=(int(ngram_range[0]), int(ngram_range[1])),
                terms=tuple(terms),
                idf=np.asarray(vec.idf_, dtype=np.float32),
                offset=offset,
                sublinear_tf=bool(vec.sublinear_tf),
            )
        )
        offset += len(terms)
    return blocks


def linear_view(pipeline: Pipeline) -> tuple[LinearScorer, bool] | None:
    """The pipeline's features and per-label weights, and whether they reproduce its scores.

    For logistic regression the weights are the model itself (exact). For the calibrated SVM
    they are the SVM weights averaged over the calibration folds: right for telling which terms
    pushed a label up, not for scoring.

    Args:
        pipeline: A fitted pipeline from :func:`classifier.pipeline.build_pipeline`.

    Returns:
        ``(scorer, exact)``, or None when the features are of a kind this module cannot compute.
    """
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.linear_model import LogisticRegression

    blocks = _blocks_of(pipeline)
    if blocks is None:
        return None
    estimators = pipeline.named_steps["clf"].estimators_
    rows: list[NDArray[np.float64]] = []
    intercepts: list[float] = []
    exact = True
    for est in estimators:
        if isinstance(est, LogisticRegression):
            rows.append(np.asarray(est.coef_[0], dtype=np.float64))
            intercepts.append(float(est.intercept_[0]))
        elif isinstance(est, CalibratedClassifierCV):
            fold_models = [c.estimator for c in est.calibrated_classifiers_]
            rows.append(np.mean([np.asarray(m.coef_[0]) for m in fold_models], axis=0))
            intercepts.append(float(np.mean([m.intercept_[0] for m in fold_models])))
            exact = False
        else:
            return None
    return LinearScorer(blocks, np.vstack(rows), np.asarray(intercepts)), exact
