"""The camel-tools functions we call work without torch or transformers installed or imported."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

PROBE = """
import sys
from classifier.preprocess import normalize, tokenize
from classifier.pipeline import ModelConfig, build_pipeline
assert normalize("أَحْمَدُ ذهبَ إلى المدرسة ٢٠٢٤") == "احمد ذهب الي المدرسه 2024", normalize("أَحْمَدُ")
assert tokenize("قال: نعم، بالطبع!") == ["قال", "نعم", "بالطبع"]
heavy = sorted(m for m in sys.modules if m.split(".")[0] in {"torch", "transformers"})
assert not heavy, heavy
print("ok")
"""


def test_torch_and_transformers_not_installed() -> None:
    assert importlib.util.find_spec("torch") is None
    assert importlib.util.find_spec("transformers") is None


def test_camel_functions_work_without_heavy_imports() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=False, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
