"""Compact embeddings for large indexes: a fitted linear projection to fewer dimensions, then float16 or
product-quantised (PQ) storage.

``lite``'s three-head ensemble embeds into 1,536 dimensions (6 KB a frame in float32). A projection onto the
top singular directions of a sample of the model's own image *and* text embeddings (uncentred: the scores
are dot products of unit vectors) keeps the scores' geometry; rows are re-normalised after projecting, so
scores stay cosine similarities. Queries must go through the same projection (``project``).

Measured on Flickr8k DEV with the committed ``lite`` (projection fitted on TRAIN embeddings only): see the
model card's "Compact index" table. Not wired into the library index yet: a ``Codec`` would be saved beside
an index (``projection`` as a safetensors tensor) and applied to frame and query embeddings alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

Storage = Literal["float32", "float16", "pq"]


def fit_projection(sample: NDArray[np.floating[Any]], dim: int) -> NDArray[np.float32]:
    """(D, dim) orthonormal columns: the top right singular vectors of the (uncentred) sample rows."""
    data = np.asarray(sample, dtype=np.float64)
    if data.ndim != 2 or not 0 < dim <= min(data.shape):
        raise ValueError(f"need a 2-D sample with at least {dim} rows and columns, got {data.shape}")
    _, _, vt = np.linalg.svd(data, full_matrices=False)
    return np.ascontiguousarray(vt[:dim].T, dtype=np.float32)


def project(embeddings: NDArray[np.floating[Any]], projection: NDArray[np.float32]) -> NDArray[np.float32]:
    """Project rows and re-normalise them to unit length (zero rows stay zero)."""
    out = np.asarray(embeddings, dtype=np.float32) @ projection
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return (out / np.where(norms > 0, norms, 1.0)).astype(np.float32)


@dataclass
class Codec:
    """How stored vectors are made from embeddings: an optional projection, then a storage format."""

    projection: NDArray[np.float32] | None
    storage: Storage = "float16"
    pq_subquantizers: int = 64  # PQ: bytes per vector (8-bit codes)
    _pq: Any = None

    @classmethod
    def fit(
        cls,
        sample: NDArray[np.floating[Any]],
        dim: int | None = 512,
        storage: Storage = "float16",
        pq_subquantizers: int = 64,
    ) -> Codec:
        """Fit the projection (``dim`` None: keep every dimension) and, for PQ, the codebooks, on a sample of
        image and text embeddings of the model (never on the vectors it will be measured on)."""
        projection = None if dim is None else fit_projection(sample, dim)
        codec = cls(projection, storage, pq_subquantizers)
        if storage == "pq":
            import faiss

            vectors = codec.queries(sample)
            pq = faiss.IndexPQ(vectors.shape[1], pq_subquantizers, 8, faiss.METRIC_INNER_PRODUCT)
            pq.train(np.ascontiguousarray(vectors))
            codec._pq = pq
        return codec

    @property
    def bytes_per_vector(self) -> int:
        if self.projection is None:
            raise ValueError("bytes_per_vector needs a projection (the input size is otherwise unknown)")
        dim = self.projection.shape[1]
        return {"float32": 4 * dim, "float16": 2 * dim, "pq": self.pq_subquantizers}[self.storage]

    def queries(self, embeddings: NDArray[np.floating[Any]]) -> NDArray[np.float32]:
        """Query vectors: projected (if any), kept in float32 (queries are never stored)."""
        if self.projection is None:
            return np.asarray(embeddings, dtype=np.float32)
        return project(embeddings, self.projection)

    def encode(self, embeddings: NDArray[np.floating[Any]]) -> NDArray[Any]:
        """What an index stores: float32 / float16 vectors, or uint8 PQ codes."""
        vectors = self.queries(embeddings)
        if self.storage == "float32":
            return vectors
        if self.storage == "float16":
            return vectors.astype(np.float16)
        if self._pq is None:
            raise ValueError("a PQ codec must be fitted first (Codec.fit)")
        return np.asarray(self._pq.sa_encode(np.ascontiguousarray(vectors)), dtype=np.uint8)

    def decode(self, stored: NDArray[Any]) -> NDArray[np.float32]:
        """Stored vectors back as float32 (PQ: the codebook reconstruction) to score queries against."""
        if self.storage == "pq":
            return np.asarray(self._pq.sa_decode(np.ascontiguousarray(stored)), dtype=np.float32)
        return np.asarray(stored, dtype=np.float32)
