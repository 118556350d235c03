"""Compact stored vectors, for research on index size: a fitted linear projection to fewer dimensions,
then float16 or product-quantised (PQ) storage.

The installed ``lite`` already embeds compactly: its 3,328-d heads-plus-class-channel output goes through a
fixed 512-d projection inside the model (``heads.ProjectedHead``, fitted on TRAIN embeddings by
``frameseek train --project-dim``), so every index, the library's float16 re-rank vectors included, stores
512 dimensions. ``Codec`` measures what further steps (a smaller projection, PQ codes instead of float16)
would cost; the table is in ``docs/lite-research/NEXT_LITE.md`` ("Compact index"). Queries go through the
same projection (``queries``) and stay float32.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from frameseek.lab.subspace import fit_projection

Storage = Literal["float32", "float16", "pq"]


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
