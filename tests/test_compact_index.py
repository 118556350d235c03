"""Compact index vectors: a fitted projection, float16 and PQ storage keep the ranking of unit vectors."""

from __future__ import annotations

import numpy as np
import pytest

from frameseek.lab.compact import Codec, project
from frameseek.lab.subspace import fit_projection

BASIS = np.random.default_rng(7).standard_normal((12, 96))


def _clustered(rng: np.random.Generator, n: int) -> np.ndarray:
    """Unit vectors near one low-rank subspace (as a model's embeddings are)."""
    data = rng.standard_normal((n, BASIS.shape[0])) @ BASIS + 0.05 * rng.standard_normal((n, BASIS.shape[1]))
    return data / np.linalg.norm(data, axis=1, keepdims=True)


def test_projection_is_orthonormal_and_keeps_scores() -> None:
    rng = np.random.default_rng(0)
    sample, items = _clustered(rng, 400), _clustered(rng, 50)
    projection = fit_projection(sample, 16)
    assert projection.shape == (96, 16)
    np.testing.assert_allclose(projection.T @ projection, np.eye(16), atol=1e-5)
    small = project(items, projection)
    np.testing.assert_allclose(np.linalg.norm(small, axis=1), 1.0, atol=1e-5)
    full_scores, small_scores = items @ items.T, small @ small.T
    assert np.abs(full_scores - small_scores).max() < 0.05
    with pytest.raises(ValueError):
        fit_projection(sample[:8], 16)


@pytest.mark.parametrize(("storage", "size"), [("float32", 64), ("float16", 32), ("pq", 8)])
def test_codecs_keep_nearest_neighbours(storage: str, size: int) -> None:
    rng = np.random.default_rng(1)
    sample = _clustered(rng, 2000)
    items = _clustered(rng, 200)
    queries = items + 0.02 * rng.standard_normal(items.shape)  # each query's right answer: its item
    codec = Codec.fit(sample, dim=16, storage=storage, pq_subquantizers=8)  # type: ignore[arg-type]
    stored = codec.encode(items)
    assert codec.bytes_per_vector == size == stored.nbytes // len(items)
    scores = codec.queries(queries) @ codec.decode(stored).T
    hits = float(np.mean(scores.argmax(axis=1) == np.arange(len(items))))
    assert hits >= 0.95, hits
