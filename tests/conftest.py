"""Shared fixtures: a tiny corpus written for the tests, and a classifier fitted on it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from classifier import ModelConfig, NarrativeClassifier

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
SEED_ARTICLE = ROOT / "seeds" / "000_36b1b46c6597c04a.txt"
DEV_SET = SHARED / "data" / "dev.jsonl"

EI = "election_interference"
DIP = "diplomacy"
SAN = "sanctions"

# Short passages written for these tests only (not from any data set).
TINY_CORPUS: list[tuple[str, list[str]]] = [
    ("اتهمت لجنة برلمانية جهات أجنبية بالتدخل في الانتخابات عبر حسابات وهمية", [EI]),
    ("رصدت أجهزة الاستخبارات حملة تضليل تستهدف الناخبين قبل الاقتراع", [EI]),
    (
        "قالت الحملة إن قراصنة أجانب اخترقوا بريدها وسربوا رسائله للتأثير على التصويت",
        [EI],
    ),
    ("نفت موسكو اتهامات بالتدخل في الانتخابات الرئاسية ووصفتها بأنها ملفقة", [EI]),
    ("كشف تحقيق عن تمويل أجنبي غير مشروع لأحزاب قبل الانتخابات التشريعية", [EI]),
    ("حذرت المفوضية من شبكات ذباب إلكتروني تنشر أخبارا كاذبة لتوجيه أصوات الناخبين", [EI]),
    ("أعلنت المنصة حذف مئات الحسابات المزيفة التي حاولت التلاعب بالرأي العام قبل الاستفتاء", [EI]),
    ("وثق المراقبون عمليات تزوير وشراء أصوات منظمة في عدة دوائر انتخابية", [EI]),
    ("استقبل وزير الخارجية نظيره التركي وبحثا تعزيز العلاقات الثنائية", [DIP]),
    ("أجرى الرئيس اتصالا هاتفيا مع العاهل الأردني تناول التطورات الإقليمية", [DIP]),
    ("قررت الحكومة استدعاء السفير احتجاجا على تصريحات مسيئة", [DIP]),
    ("وقع البلدان مذكرة تفاهم للتعاون خلال قمة ثنائية في العاصمة", [DIP]),
    ("أعلنت الدولتان استئناف العلاقات الدبلوماسية وإعادة فتح السفارتين", [DIP]),
    ("وصل المبعوث الأممي إلى العاصمة في إطار جهود الوساطة بين الطرفين", [DIP]),
    ("اختتمت جولة المفاوضات بين الوفدين دون التوصل إلى اتفاق نهائي", [DIP]),
    ("زار رئيس الوزراء بكين في زيارة رسمية التقى خلالها الرئيس الصيني", [DIP]),
    ("فرضت وزارة الخزانة عقوبات على شركات شحن متهمة بنقل النفط", [SAN]),
    ("أقر الاتحاد الأوروبي حزمة عقوبات جديدة تشمل تجميد أصول مسؤولين", [SAN]),
    ("أدرجت واشنطن مصرفا على القائمة السوداء بتهمة الالتفاف على الحظر", [SAN]),
    ("قال تجار إن العقوبات الاقتصادية رفعت أسعار الأدوية المستوردة", [SAN]),
    ("مدد مجلس الأمن حظر الأسلحة المفروض على البلاد عاما إضافيا", [SAN]),
    ("شددت الإدارة قيود التصدير على الرقائق عقابا للشركات المتعاونة مع الجيش", [SAN]),
    ("رفعت الحكومة الأميركية بعض العقوبات عن قطاع الطيران المدني", [SAN]),
    ("حظر سفر وتجميد أرصدة بحق قادة الميليشيا المتهمين بانتهاكات", [SAN]),
    ("ناقش الوزيران خلال لقائهما إمكانية رفع العقوبات عن البلاد", [DIP, SAN]),
    ("احتجت الخارجية لدى السفير على الحزمة الجديدة من العقوبات", [DIP, SAN]),
    ("طلب الرئيس من نظيره خلال القمة عدم التدخل في الانتخابات المقبلة", [EI, DIP]),
    ("طردت الحكومة دبلوماسيين اتهمتهم بمحاولة التأثير على الناخبين", [EI, DIP]),
    ("فرضت الخزانة عقوبات على أفراد أداروا حملة تضليل استهدفت الانتخابات", [EI, SAN]),
    ("فاز النادي الأهلي على منافسه بهدفين في الدوري", []),
    ("أعلنت اللجنة نتائج الانتخابات البلدية وبلغت نسبة المشاركة أربعين في المئة", []),
    ("قضت المحكمة بعقوبة السجن خمس سنوات على المتهم في قضية سرقة", []),
    ("ارتفعت أسعار الذهب في الأسواق المحلية مع تراجع الدولار", []),
    ("انتخب أعضاء النقابة رئيسا جديدا في اجتماع الجمعية العمومية", []),
    ("قصفت المدفعية مواقع على أطراف المدينة وأفادت مصادر بسقوط قتلى", []),
    ("افتتح وزير الصحة مستشفى جديدا لعلاج أمراض القلب", []),
    ("أطلقت الشركة هاتفا ذكيا جديدا بكاميرا متطورة", []),
    ("تتوقع الأرصاد أمطارا غزيرة على المناطق الساحلية نهاية الأسبوع", []),
    ("أوقف الاتحاد اللاعب أربع مباريات بسبب سلوكه في الملعب", []),
    ("ناقش البرلمان مشروع الموازنة العامة للعام المقبل", []),
]


# Forty short passages: keep features seen once (the default min_df=2 suits real corpora).
TINY_CONFIG = ModelConfig(cv_folds=3, min_df=1)


@pytest.fixture(scope="session")
def tiny_corpus() -> tuple[list[str], list[list[str]]]:
    texts = [t for t, _ in TINY_CORPUS]
    labels = [ls for _, ls in TINY_CORPUS]
    return texts, labels


@pytest.fixture(scope="session")
def tiny_model(tiny_corpus: tuple[list[str], list[list[str]]]) -> NarrativeClassifier:
    texts, labels = tiny_corpus
    return NarrativeClassifier(TINY_CONFIG).fit(texts, labels)


@pytest.fixture(scope="session")
def model_dir(tiny_model: NarrativeClassifier, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model saved as a local model folder named "tiny" (run id "run-1").

    Tests must not write into it; a test that needs to alter a model saves its own.
    """
    from tests.service_fixtures import save_test_model

    return save_test_model(tiny_model, tmp_path_factory.mktemp("models") / "tiny")


@contextmanager
def mlflow_state_kept() -> Iterator[None]:
    """Undo ``tracking.configure()`` on exit.

    MLflow keeps its URIs in globals *and* environment variables, which would point later tests
    (and the servers they start) at one test's store.
    """
    import mlflow

    names = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
    before = {name: os.environ.get(name) for name in names}
    try:
        yield
    finally:
        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(None)
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
