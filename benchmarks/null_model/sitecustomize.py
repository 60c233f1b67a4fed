"""Scoring that costs nothing, for `benchmarks/service.py --null-model` only.

Python imports ``sitecustomize`` at start-up from any folder on ``PYTHONPATH``; the benchmark puts
this folder there for both servers (ours and MLflow's) and sets
``NARRATIVES_BENCH_NULL_MODEL=1``. Every passage then gets the same constant scores, so the run
measures what each server spends around the model: parsing, validation, threads, serialising.
Nothing outside the benchmark imports this module.
"""

from __future__ import annotations

import os

if os.environ.get("NARRATIVES_BENCH_NULL_MODEL") == "1":
    from collections.abc import Sequence

    import numpy as np
    from numpy.typing import NDArray

    from classifier.model import NarrativeClassifier

    def _constant_scores(self: NarrativeClassifier, texts: Sequence[str]) -> NDArray[np.floating]:
        return np.full((len(list(texts)), len(self.labels)), 0.5)

    NarrativeClassifier.predict_scores = _constant_scores  # type: ignore[method-assign]
