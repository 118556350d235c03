"""The subspace a compact projection keeps (numpy only: the model installs it, research code reuses it)."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray


def fit_projection(sample: NDArray[np.floating[Any]], dim: int) -> NDArray[np.float32]:
    """(D, dim) orthonormal columns: the top right singular vectors of the (uncentred) sample rows."""
    data = np.asarray(sample, dtype=np.float64)
    if data.ndim != 2 or not 0 < dim <= min(data.shape):
        raise ValueError(f"need a 2-D sample with at least {dim} rows and columns, got {data.shape}")
    _, _, vt = np.linalg.svd(data, full_matrices=False)
    return np.ascontiguousarray(vt[:dim].T, dtype=np.float32)


def balanced_sample(
    image_embeddings: NDArray[np.floating[Any]], text_embeddings: NDArray[np.floating[Any]], seed: int = 0
) -> NDArray[np.float32]:
    """As many text rows as image rows (a seeded choice when there are more captions than images), so
    neither side's directions dominate the fit."""
    rng = np.random.default_rng(seed)
    texts = np.asarray(text_embeddings, dtype=np.float32)
    count = min(len(image_embeddings), len(texts))
    picked = texts[np.sort(rng.choice(len(texts), count, replace=False))] if len(texts) > count else texts
    return np.concatenate([np.asarray(image_embeddings, dtype=np.float32), picked])
