from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from classifier import EmptyTextError, NarrativeClassifier, NotFittedError, TrainingDataError
from classifier.model import THRESHOLD_BOUNDS, WARN_NOT_ARABIC, tune_thresholds
from classifier.preprocess import normalize
from tests.conftest import DIP, EI, SAN, SEED_ARTICLE


def test_labels_come_from_data(tiny_model: NarrativeClassifier) -> None:
    assert tiny_model.labels == (DIP, EI, SAN)


def test_predict_returns_frozen_results_with_every_score(tiny_model: NarrativeClassifier) -> None:
    [pred] = tiny_model.predict(["فرضت الخزانة الأميركية عقوبات وتجميد أصول على شركات شحن"])
    assert set(pred.scores) == set(tiny_model.labels)
    assert all(0.0 <= s <= 1.0 for s in pred.scores.values())
    assert SAN in pred.labels and pred.primary == pred.labels[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        pred.primary = None  # type: ignore[misc]


def test_labels_follow_thresholds(tiny_model: NarrativeClassifier) -> None:
    texts = ["استدعت الخارجية السفير", "فاز الفريق بالمباراة", "عقوبات على المصرف المركزي"]
    for pred in tiny_model.predict(texts):
        expected = {lb for lb, s in pred.scores.items() if s >= tiny_model.thresholds[lb]}
        assert set(pred.labels) == expected
        assert pred.primary is None or pred.scores[pred.primary] == max(
            pred.scores[lb] for lb in pred.labels
        )


def test_multi_label_output(tiny_model: NarrativeClassifier) -> None:
    text = "بحث وزيرا الخارجية خلال لقائهما في العاصمة رفع العقوبات وتجميد الأصول المفروضة"
    [pred] = tiny_model.predict([text])
    assert {DIP, SAN} <= set(pred.labels)


def test_no_label_for_unrelated_text(tiny_model: NarrativeClassifier) -> None:
    [pred] = tiny_model.predict(["فاز الفريق الأهلي في مباراة الدوري بهدفين"])
    assert pred.labels == () and pred.primary is None


def test_thresholds_tuned_within_bounds(tiny_model: NarrativeClassifier) -> None:
    lo, hi = THRESHOLD_BOUNDS
    assert set(tiny_model.thresholds) == set(tiny_model.labels)
    assert all(lo <= t <= hi for t in tiny_model.thresholds.values())
    assert tiny_model.oof_scores is not None and tiny_model.oof_scores.shape == (40, 3)


def test_tune_thresholds_maximises_f1() -> None:
    y = np.array([[1], [1], [0], [0], [1], [0]])
    scores = np.array([[0.9], [0.7], [0.6], [0.2], [0.65], [0.1]])
    t = tune_thresholds(y, scores, ["a"])["a"]
    # 0.65 and above are exactly the positives
    assert 0.6 < t <= 0.65
    assert tune_thresholds(np.zeros((3, 1), dtype=int), scores[:3], ["a"]) == {"a": 0.5}


def test_explain_terms_occur_in_text(tiny_model: NarrativeClassifier) -> None:
    text = "فرضت وزارة الخزانة عقوباتٍ جديدة على شركات الشحن، وقالت إن العقوبات تشمل تجميد الأصول."
    evidence = tiny_model.explain(text, k=4)
    assert set(evidence) == set(tiny_model.labels)
    san = evidence[SAN]
    assert 0 < len(san) <= 4
    assert [e.weight for e in san] == sorted((e.weight for e in san), reverse=True)
    assert all(e.weight > 0 for e in san)
    for item in san:
        assert item.spans, item.term
        for start, end in item.spans:
            assert normalize(text[start:end]) == item.term
    assert any("عقوب" in e.term for e in san)


def test_classify_document_one_result_per_paragraph(tiny_model: NarrativeClassifier) -> None:
    text = SEED_ARTICLE.read_text(encoding="utf-8")
    doc = tiny_model.classify_document(text)
    assert len(doc.passages) == 18
    for item in doc.passages:
        assert text[item.passage.start : item.passage.end] == item.passage.text
    for label in tiny_model.labels:
        assert doc.scores[label] == max(p.prediction.scores[label] for p in doc.passages)
    assert set(doc.labels) == {lb for p in doc.passages for lb in p.prediction.labels}


@pytest.mark.parametrize("bad", ["", "   ", "\n\t "])
def test_empty_text_raises(tiny_model: NarrativeClassifier, bad: str) -> None:
    with pytest.raises(EmptyTextError):
        tiny_model.predict(["نص", bad])
    with pytest.raises(EmptyTextError):
        tiny_model.explain(bad)
    with pytest.raises(EmptyTextError):
        tiny_model.classify_document(bad)


def test_non_arabic_warning(tiny_model: NarrativeClassifier) -> None:
    latin, arabic = tiny_model.predict(
        ["The ministry imposed new sanctions", "فرضت الوزارة عقوبات"]
    )
    assert WARN_NOT_ARABIC in latin.warnings
    assert arabic.warnings == ()


@pytest.mark.parametrize(
    ("plain", "variant"),
    [
        ("فرضت الولايات المتحدة عقوبات على ايران", "فَرَضَتِ الوِلاياتُ المُتَّحِدَةُ عُقوباتٍ على إيران"),
        ("التقى وزير الخارجية نظيره الاردني", "إلتقى وزير الخارجيـــة نظيرَه الأردني"),
        ("اتهامات بالتدخل في الانتخابات", "اتهامات بالتدخّل في الإنتخابات"),
    ],
)
def test_prediction_invariant_to_diacritics_and_alef(
    tiny_model: NarrativeClassifier, plain: str, variant: str
) -> None:
    a, b = tiny_model.predict([plain, variant])
    assert a == b


def test_unfitted_raises() -> None:
    with pytest.raises(NotFittedError):
        NarrativeClassifier().predict(["نص"])


def test_fit_rejects_unusable_data() -> None:
    with pytest.raises(TrainingDataError, match="no passage carries a label"):
        NarrativeClassifier().fit(["نص", "نص آخر"], [[], []])
    with pytest.raises(TrainingDataError, match="'sanctions' is on 1"):
        NarrativeClassifier().fit(
            ["نص", "نص آخر", "ثالث"], [["sanctions"], ["diplomacy"], ["diplomacy"]]
        )
    with pytest.raises(TrainingDataError, match="2 texts but 1"):
        NarrativeClassifier().fit(["نص", "نص آخر"], [[]])
