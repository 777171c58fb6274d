"""bench/semcache_eval.py: the ensemble of two embedders and the precision reported at a recall."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest
from bench.semcache_eval import Ensemble, Pair, best_at_recall, vectors

TEXTS = {
    "How do I bake bread?": ([1.0, 0.0], [0.6, 0.8, 0.0]),
    "What is the way to bake bread?": ([0.8, 0.6], [0.6, 0.8, 0.0]),
}


def fake(side: int) -> Callable[[Sequence[str]], Any]:
    def embed(texts: Sequence[str]) -> Any:
        return np.array([TEXTS[t][side] for t in texts], dtype=np.float32)

    return embed


def test_an_ensemble_dot_product_is_the_mean_of_its_models_cosines() -> None:
    ensemble = Ensemble(["a", "b"], [fake(0), fake(1)])
    pairs = [Pair("p1", "How do I bake bread?", "What is the way to bake bread?", True)]
    one, two, _ = vectors("a+b", ensemble, pairs, None)
    assert np.allclose(np.linalg.norm(one, axis=1), 1.0)
    assert float(one[0] @ two[0]) == pytest.approx((0.8 + 1.0) / 2)


def test_the_best_precision_is_taken_among_points_that_keep_the_recall() -> None:
    curve = [
        {"threshold": 0.90, "precision": 0.80, "recall": 0.50},
        {"threshold": 0.93, "precision": 0.88, "recall": 0.31},
        {"threshold": 0.95, "precision": 0.92, "recall": 0.22},
    ]
    assert best_at_recall(curve, 0.30) == curve[1]
    assert best_at_recall(curve, 0.60) is None
