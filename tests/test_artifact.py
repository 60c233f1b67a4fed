from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from classifier import ModelLoadError, NarrativeClassifier, load_model, read_manifest, save_model
from classifier.artifact import MANIFEST_FILE, PIPELINE_FILE, sha256_file
from classifier.linear import SCORER_FILE

TEXTS = ["فرضت واشنطن عقوبات على مصرف", "استقبل الرئيس السفير الجديد", "فاز الفريق بالمباراة"]


@pytest.fixture()
def saved(tmp_path: Path, tiny_model: NarrativeClassifier) -> Path:
    save_model(tiny_model, tmp_path / "m", {"sanctions": "restrictive measures"}, {"data": "x"})
    return tmp_path / "m"


def test_round_trip(saved: Path, tiny_model: NarrativeClassifier) -> None:
    loaded, manifest = load_model(saved)
    assert loaded.labels == tiny_model.labels
    assert loaded.thresholds == tiny_model.thresholds
    assert loaded.config == tiny_model.config
    assert loaded.predict(TEXTS) == tiny_model.predict(TEXTS)
    assert manifest.label_definitions == {"sanctions": "restrictive measures"}
    assert manifest.metadata == {"data": "x"}
    assert manifest.versions["scikit-learn"]


def test_truncated_pipeline_rejected(saved: Path) -> None:
    path = saved / PIPELINE_FILE
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ModelLoadError, match="checksum mismatch"):
        load_model(saved)


def test_tampered_pipeline_rejected_before_unpickling(saved: Path) -> None:
    # A valid pickle that would run code if loaded: it must be refused on its checksum.
    import pickle

    class Boom:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (print, ("pwned",))

    (saved / PIPELINE_FILE).write_bytes(pickle.dumps(Boom()))
    with pytest.raises(ModelLoadError, match="checksum mismatch"):
        load_model(saved)


def test_corrupt_manifest_rejected(saved: Path) -> None:
    (saved / MANIFEST_FILE).write_text("{not json", encoding="utf-8")
    with pytest.raises(ModelLoadError, match="not valid JSON"):
        load_model(saved)


def test_incomplete_manifest_rejected(saved: Path) -> None:
    raw = json.loads((saved / MANIFEST_FILE).read_text(encoding="utf-8"))
    del raw["thresholds"]
    (saved / MANIFEST_FILE).write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(ModelLoadError, match="incomplete"):
        read_manifest(saved)


def test_incompatible_version_rejected_before_unpickling_the_pipeline(saved: Path) -> None:
    raw = json.loads((saved / MANIFEST_FILE).read_text(encoding="utf-8"))
    raw["versions"]["scikit-learn"] = "0.24.2"
    (saved / MANIFEST_FILE).write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(ModelLoadError, match=r"scikit-learn 0\.24\.2"):
        load_model(saved, with_pipeline=True)


def test_the_scorer_does_not_depend_on_the_scikit_learn_version(saved: Path) -> None:
    # Plain arrays, no pickle: another scikit-learn release reads them the same.
    raw = json.loads((saved / MANIFEST_FILE).read_text(encoding="utf-8"))
    raw["versions"]["scikit-learn"] = "0.24.2"
    (saved / MANIFEST_FILE).write_text(json.dumps(raw), encoding="utf-8")
    loaded, _ = load_model(saved)
    assert loaded.pipeline is None and loaded.scorer is not None
    assert loaded.predict(TEXTS)


def test_loads_from_the_scorer_unless_the_pipeline_is_asked_for(
    saved: Path, tiny_model: NarrativeClassifier
) -> None:
    fast, _ = load_model(saved)
    full, _ = load_model(saved, with_pipeline=True)
    assert fast.pipeline is None and fast.scorer is not None
    assert full.pipeline is not None and full.scorer is not None
    assert fast.predict(TEXTS) == full.predict(TEXTS) == tiny_model.predict(TEXTS)
    assert fast.explain(TEXTS[0]) == full.explain(TEXTS[0]) == tiny_model.explain(TEXTS[0])


@pytest.mark.parametrize(
    ("damage", "problem"),
    [("truncated", "checksum mismatch"), ("deleted", "no scorer file")],
)
def test_a_damaged_scorer_is_refused(saved: Path, damage: str, problem: str) -> None:
    path = saved / SCORER_FILE
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:100])
    else:
        path.unlink()
    with pytest.raises(ModelLoadError, match=problem):
        load_model(saved)


def test_a_scorer_that_is_not_a_scorer_is_refused(saved: Path) -> None:
    # Checksums agree (both rewritten), the content is wrong: a clear error, no crash.
    np.savez(saved / SCORER_FILE, coef=np.zeros((2, 2)))
    raw = json.loads((saved / MANIFEST_FILE).read_text(encoding="utf-8"))
    raw["scorer_sha256"] = sha256_file(saved / SCORER_FILE)
    (saved / MANIFEST_FILE).write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(ModelLoadError, match="cannot read the scorer"):
        load_model(saved)


def test_missing_model_rejected(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="no model manifest"):
        load_model(tmp_path / "nowhere")


def test_labels_mismatch_rejected(saved: Path) -> None:
    raw = json.loads((saved / MANIFEST_FILE).read_text(encoding="utf-8"))
    raw["labels"] = ["a", "b"]
    raw["thresholds"] = {"a": 0.5, "b": 0.5}
    (saved / MANIFEST_FILE).write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(ModelLoadError, match="does not match"):
        load_model(saved)
