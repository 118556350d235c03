"""Retrieval metrics on precomputed embeddings: Recall@K and ranks (standard, original protocol, video).

Conventions shared by every metric here:

* Scores are cosine similarities: embeddings are L2-normalised (in float64) before the dot product, so
  already-normalised model outputs score exactly as their dot product.
* Ranks are 1-based. The rank of a query is ``1 + the number of WRONG candidates scoring at least as
  high as the best RIGHT candidate``. Ties are therefore conservative (a wrong candidate with an equal
  score is ranked ahead of the right one) and the result does not depend on candidate order. Scores
  within ``TIE_TOLERANCE`` (1e-9) of the best right score count as equal, so float rounding in the matrix
  product cannot break a tie between identical embeddings.
* Recall@K is the percentage of queries with rank <= K.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

TIE_TOLERANCE = 1e-9
RECALL_KS: tuple[int, ...] = (1, 5, 10)
_CHUNK_ELEMENTS = 4_000_000  # similarity entries computed at once (32 MB of float64)
_HEADER_KEYS = ("dataset", "split", "model")


@dataclass
class RecallResult:
    """Recall@1/5/10 in percent and the median / mean 1-based rank of the right item."""

    r1: float
    r5: float
    r10: float
    median_rank: float
    mean_rank: float

    @classmethod
    def from_ranks(cls, ranks: ArrayLike) -> RecallResult:
        """Summarise an array of 1-based ranks (one per query)."""
        values = np.asarray(ranks, dtype=np.float64).reshape(-1)
        if values.size == 0:
            raise ValueError("no ranks to summarise")
        r1, r5, r10 = (float(100.0 * np.mean(values <= k)) for k in RECALL_KS)
        return cls(r1, r5, r10, float(np.median(values)), float(np.mean(values)))

    def as_dict(self) -> dict[str, float]:
        """Return {"R@1", "R@5", "R@10", "median_rank", "mean_rank"}."""
        return {
            "R@1": self.r1,
            "R@5": self.r5,
            "R@10": self.r10,
            "median_rank": self.median_rank,
            "mean_rank": self.mean_rank,
        }


# ----------------------------------------------------------------------------------------- core


def _as_matrix(embeddings: ArrayLike, name: str) -> NDArray[np.float64]:
    """Return embeddings as a 2-D float64 array with L2-normalised rows (zero rows stay zero)."""
    matrix = np.asarray(embeddings, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty 2-D array, got shape {matrix.shape}")
    if not np.all(np.isfinite(matrix)):
        raise ValueError(f"{name} contains NaN or infinite values")
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms > 0, norms, 1.0)


def _as_index(labels: ArrayLike, length: int, upper: int, name: str) -> NDArray[np.int64]:
    """Return an integer label array of the given length with values in [0, upper)."""
    array = np.asarray(labels)
    if array.ndim != 1 or array.shape[0] != length:
        raise ValueError(f"{name} must have shape ({length},), got {array.shape}")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{name} must hold integers, got {array.dtype}")
    index = array.astype(np.int64)
    if index.size and (index.min() < 0 or index.max() >= upper):
        raise ValueError(f"{name} values must lie in [0, {upper})")
    return index


def retrieval_ranks(
    queries: NDArray[np.float64],
    candidates: NDArray[np.float64],
    query_labels: NDArray[np.int64],
    candidate_labels: NDArray[np.int64],
) -> NDArray[np.int64]:
    """1-based rank per query: 1 + wrong candidates scoring >= the best right one (labels equal = right)."""
    if queries.shape[1] != candidates.shape[1]:
        raise ValueError(f"embedding sizes differ: {queries.shape[1]} vs {candidates.shape[1]}")
    ranks = np.empty(queries.shape[0], dtype=np.int64)
    step = max(1, _CHUNK_ELEMENTS // max(1, candidates.shape[0]))
    for start in range(0, queries.shape[0], step):
        stop = min(start + step, queries.shape[0])
        scores = queries[start:stop] @ candidates.T
        right = candidate_labels[None, :] == query_labels[start:stop, None]
        if not np.all(right.any(axis=1)):
            missing = start + int(np.argmin(right.any(axis=1)))
            raise ValueError(f"query {missing} has no matching candidate")
        best = np.where(right, scores, -np.inf).max(axis=1)
        ranks[start:stop] = 1 + ((scores >= best[:, None] - TIE_TOLERANCE) & ~right).sum(axis=1)
    return ranks


# ----------------------------------------------------------------------------------------- standard


def text_to_image(text_emb: ArrayLike, image_emb: ArrayLike, caption_to_image: ArrayLike) -> RecallResult:
    """Each caption ranks all images; the rank is that of the caption's own image."""
    texts, images = _as_matrix(text_emb, "text_emb"), _as_matrix(image_emb, "image_emb")
    labels = _as_index(caption_to_image, texts.shape[0], images.shape[0], "caption_to_image")
    ranks = retrieval_ranks(texts, images, labels, np.arange(images.shape[0], dtype=np.int64))
    return RecallResult.from_ranks(ranks)


def image_to_text(image_emb: ArrayLike, text_emb: ArrayLike, caption_to_image: ArrayLike) -> RecallResult:
    """Each image ranks all captions; the rank is that of its best-ranked own caption."""
    texts, images = _as_matrix(text_emb, "text_emb"), _as_matrix(image_emb, "image_emb")
    labels = _as_index(caption_to_image, texts.shape[0], images.shape[0], "caption_to_image")
    ranks = retrieval_ranks(images, texts, np.arange(images.shape[0], dtype=np.int64), labels)
    return RecallResult.from_ranks(ranks)


def text_to_video(text_emb: ArrayLike, video_emb: ArrayLike, caption_to_video: ArrayLike) -> RecallResult:
    """Each caption ranks all videos (e.g. mean_pool of frame embeddings); the rank is its own video's."""
    texts, videos = _as_matrix(text_emb, "text_emb"), _as_matrix(video_emb, "video_emb")
    labels = _as_index(caption_to_video, texts.shape[0], videos.shape[0], "caption_to_video")
    ranks = retrieval_ranks(texts, videos, labels, np.arange(videos.shape[0], dtype=np.int64))
    return RecallResult.from_ranks(ranks)


def mean_pool(frame_emb: ArrayLike, groups: ArrayLike, n_groups: int | None = None) -> NDArray[np.float32]:
    """Average frame embeddings per video (groups[i] = video index of frame i) and L2-normalise each mean."""
    frames = np.asarray(frame_emb, dtype=np.float64)
    if frames.ndim != 2 or frames.shape[0] == 0:
        raise ValueError(f"frame_emb must be a non-empty 2-D array, got shape {frames.shape}")
    raw = np.asarray(groups)
    count = int(raw.max()) + 1 if n_groups is None and raw.size else int(n_groups or 0)
    index = _as_index(raw, frames.shape[0], count, "groups")
    frames_per_group = np.bincount(index, minlength=count)
    if np.any(frames_per_group == 0):
        raise ValueError(f"video {int(np.argmin(frames_per_group))} has no frames")
    sums = np.zeros((count, frames.shape[1]), dtype=np.float64)
    np.add.at(sums, index, frames)
    means = sums / frames_per_group[:, None]
    norms = np.linalg.norm(means, axis=1, keepdims=True)
    return (means / np.where(norms > 0, norms, 1.0)).astype(np.float32)


# ----------------------------------------------------------------------------------------- original


def second_longest_caption(caption_indices: Sequence[int], captions: Sequence[str]) -> int:
    """Index of the 2nd caption ordered by (length descending, position ascending); the only one if alone."""
    if not caption_indices:
        raise ValueError("an image has no captions")
    ordered = sorted(caption_indices, key=lambda k: (-len(captions[k]), k))
    return ordered[1] if len(ordered) > 1 else ordered[0]


def original_protocol(
    text_emb: ArrayLike,
    image_emb: ArrayLike,
    caption_to_image: ArrayLike,
    captions: Sequence[str],
    batch_size: int = 64,
) -> dict[str, float]:
    """The original project's text->image Recall@1/5/10 within fixed batches of consecutive images.

    Images are cut, in their given order, into consecutive batches of ``batch_size``; the last incomplete
    batch is DROPPED, as the original iterated only over full batches (a smaller batch would also be an
    easier retrieval task). Each image contributes ONE query: the second of its captions ordered by
    (character length descending, position ascending), i.e. the 2nd-longest with ties going to the
    earlier caption (an image with a single caption uses it). Each query ranks only the images of its own
    batch, with the module's conservative tie rule; the recalls (percent) are averaged over all queries.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    texts, images = _as_matrix(text_emb, "text_emb"), _as_matrix(image_emb, "image_emb")
    labels = _as_index(caption_to_image, texts.shape[0], images.shape[0], "caption_to_image")
    if len(captions) != texts.shape[0]:
        raise ValueError(f"captions has {len(captions)} entries but text_emb has {texts.shape[0]} rows")
    n_batches = images.shape[0] // batch_size
    if n_batches == 0:
        raise ValueError(f"the original protocol needs at least {batch_size} images, got {images.shape[0]}")
    per_image: list[list[int]] = [[] for _ in range(images.shape[0])]
    for caption_index, image_index in enumerate(labels.tolist()):
        per_image[image_index].append(caption_index)
    ranks = []
    local = np.arange(batch_size, dtype=np.int64)
    for batch in range(n_batches):
        members = range(batch * batch_size, (batch + 1) * batch_size)
        chosen = [second_longest_caption(per_image[j], captions) for j in members]
        batch_images = images[batch * batch_size : (batch + 1) * batch_size]
        ranks.append(retrieval_ranks(texts[chosen], batch_images, local, local))
    result = RecallResult.from_ranks(np.concatenate(ranks)).as_dict()
    return {key: result[key] for key in ("R@1", "R@5", "R@10")}


# ----------------------------------------------------------------------------------------- report


def _cell(value: Any, decimals: int) -> str:
    """Format one metric value (missing or non-numeric -> '-')."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "-"
    return f"{value:.{decimals}f}"


def format_table(results: Mapping[str, Any]) -> str:
    """Render a results dict ({dataset, split, model, <protocol>: {<direction>: metrics}}) as a text table."""
    header_items = [(key, results[key]) for key in _HEADER_KEYS if key in results]
    header_items += [
        (key, value)
        for key, value in results.items()
        if key not in _HEADER_KEYS and not isinstance(value, Mapping)
    ]
    title = "  ".join(f"{key}: {value}" for key, value in header_items)
    columns = [("R@1", 2), ("R@5", 2), ("R@10", 2), ("median_rank", 1), ("mean_rank", 1)]
    head = ["protocol", "direction", "R@1", "R@5", "R@10", "MedR", "MeanR"]
    rows: list[list[str]] = []
    for protocol, directions in results.items():
        if protocol in _HEADER_KEYS or not isinstance(directions, Mapping):
            continue
        for direction, metrics in directions.items():
            if not isinstance(metrics, Mapping):
                continue
            cells = [_cell(metrics.get(name), decimals) for name, decimals in columns]
            rows.append(
                [protocol.replace("_", " "), direction.replace("_to_", "->").replace("_", " "), *cells]
            )
    widths = [max(len(line[i]) for line in [head, *rows]) for i in range(len(head))]

    def render(line: list[str]) -> str:
        """Left-align the two label columns and right-align the numbers."""
        labels = [line[i].ljust(widths[i]) for i in range(2)]
        numbers = [line[i].rjust(widths[i]) for i in range(2, len(line))]
        return "  ".join(labels + numbers).rstrip()

    table = [render(head), "  ".join("-" * w for w in widths), *(render(row) for row in rows)]
    if not rows:
        table.append("(no results)")
    return "\n".join([title, *table] if title else table)
