"""Peers measured against our model in the same run: fastText supervised and keyword rules.

Both see exactly our training passages and our normalisation, and both get per-label thresholds
tuned like ours (on cross-validated scores, maximising F1), so the comparison is of the models.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from classifier.model import tune_thresholds
from classifier.preprocess import normalize, tokenize
from classifier.stratify import MultilabelStratifiedKFold
from training.evaluation import binarize

NONE_LABEL = "__none__"


def _line(text: str) -> str:
    return " ".join(tokenize(normalize(text)))


class FastTextPeer:
    """fastText supervised, one-vs-all loss, word bigrams and 2-5 character subwords."""

    def __init__(self, epoch: int = 25, lr: float = 0.5, dim: int = 100, seed: int = 0) -> None:
        self.params = dict(
            epoch=epoch, lr=lr, dim=dim, wordNgrams=2, minn=2, maxn=5, loss="ova",
            bucket=200_000, thread=1, seed=seed, verbose=0,
        )  # fmt: skip
        self.labels: tuple[str, ...] = ()
        self.thresholds: dict[str, float] = {}
        self.model: object | None = None

    def _train(self, texts: Sequence[str], label_sets: Sequence[Sequence[str]]) -> object:
        import fasttext

        fd, path = tempfile.mkstemp(suffix=".txt")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            for text, labels in zip(texts, label_sets, strict=True):
                tags = " ".join(f"__label__{lb}" for lb in (labels or [NONE_LABEL]))
                fh.write(f"{tags} {_line(text)}\n")
        try:
            return fasttext.train_supervised(path, **self.params)
        finally:
            os.unlink(path)

    def _scores(self, model: object, texts: Sequence[str]) -> NDArray[np.floating]:
        out = np.zeros((len(texts), len(self.labels)))
        index = {f"__label__{lb}": j for j, lb in enumerate(self.labels)}
        for i, text in enumerate(texts):
            # model.f.predict is the binding's own call; model.predict breaks on numpy 2.
            for prob, name in model.f.predict(_line(text), -1, 0.0, "strict"):  # type: ignore[attr-defined]
                if name in index:
                    out[i, index[name]] = prob
        return out

    def fit(self, texts: Sequence[str], label_sets: Sequence[Sequence[str]]) -> FastTextPeer:
        self.labels = tuple(sorted({lb for ls in label_sets for lb in ls}))
        y = binarize(label_sets, self.labels)
        oof = np.zeros(y.shape)
        for train, test in MultilabelStratifiedKFold(5).split(None, y):
            fold = self._train([texts[i] for i in train], [label_sets[i] for i in train])
            oof[test] = self._scores(fold, [texts[i] for i in test])
        self.thresholds = tune_thresholds(y, oof, self.labels)
        self.model = self._train(texts, label_sets)
        return self

    def predict_scores(self, texts: Sequence[str]) -> NDArray[np.floating]:
        assert self.model is not None
        return self._scores(self.model, texts)


# Hand-written cue phrases, matched on normalised text (alef, yeh and teh marbuta folded).
KEYWORDS: dict[str, tuple[str, ...]] = {
    "election_interference": (
        r"التدخل (الروسي |الاجنبي |الخارجي )?في (الانتخابات|الاستفتاء)",
        r"تزوير",
        r"شراء الاصوات",
        r"التلاعب (بالنتائج|بالانتخابات|باصوات)",
        r"التاثير (علي|في) (الناخبين|الانتخابات)",
        r"حسابات وهميه",
        r"ذباب الكتروني",
        r"حملات? تضليل",
        r"تمويل اجنبي",
        r"حشو الصناديق",
    ),
    "diplomacy": (
        r"وزير الخارجيه",
        r"وزاره الخارجيه",
        r"\bسفير",
        r"\bالسفاره",
        r"مباحثات",
        r"قمه",
        r"اتصالا? هاتفيا?",
        r"زياره رسميه",
        r"العلاقات (الثنائيه|الدبلوماسيه|بين البلدين)",
        r"مبعوث",
        r"وساطه",
        r"مذكره تفاهم",
        r"استدعاء السفير",
        r"نظيره",
    ),
    "sanctions": (
        r"\bعقوبات\b",
        r"العقوبات",
        r"حظر (الاسلحه|النفط|السفر|تصدير)",
        r"تجميد (اصول|الاصول|ارصده)",
        r"القائمه السوداء",
        r"الحظر (الاقتصادي|الامريكي|الاميركي|الدولي)",
        r"مكتب مراقبه الاصول",
        r"رفع العقوبات",
        r"الالتفاف علي العقوبات",
    ),
}


class KeywordPeer:
    """Keyword rules: a label fires when any of its cue phrases occurs (nothing learned)."""

    def __init__(self) -> None:
        self.patterns = {lb: re.compile("|".join(ps)) for lb, ps in KEYWORDS.items()}
        self.labels = tuple(sorted(self.patterns))
        self.thresholds = dict.fromkeys(self.labels, 0.5)

    def fit(self, texts: Sequence[str], label_sets: Sequence[Sequence[str]]) -> KeywordPeer:
        return self

    def predict_scores(self, texts: Sequence[str]) -> NDArray[np.floating]:
        out = np.zeros((len(texts), len(self.labels)))
        for i, text in enumerate(texts):
            norm = normalize(text)
            for j, lb in enumerate(self.labels):
                out[i, j] = 1.0 if self.patterns[lb].search(norm) else 0.0
        return out
