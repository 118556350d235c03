"""Tests for frameseek.lab.evaluation: hand-worked Recall@K / rank examples, ties, protocols and properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from frameseek.lab.evaluation import (
    RecallResult,
    format_table,
    image_to_text,
    mean_pool,
    original_protocol,
    second_longest_caption,
    text_to_image,
    text_to_video,
)

# 3 images and 6 captions (two per image) in 2-d; every vector has unit length, so scores are plain
# dot products.
IMAGES = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
TEXTS = np.array(
    [
        [1.0, 0.0],  # T0 -> I0
        [0.0, 1.0],  # T1 -> I0
        [0.6, 0.8],  # T2 -> I1
        [0.8, 0.6],  # T3 -> I1
        [-1.0, 0.0],  # T4 -> I2
        [0.0, -1.0],  # T5 -> I2
    ]
)
CAPTION_TO_IMAGE = np.array([0, 0, 1, 1, 2, 2])


def test_text_to_image_hand_worked() -> None:
    """Each caption ranks the 3 images; ties with a wrong image count against the caption."""
    # T0 scores (I0, I1, I2) = ( 1,    0,   -1  ) -> own I0 is first                   -> rank 1
    # T1 scores               = ( 0,    1,    0  ) -> I1 higher, I2 ties own I0         -> rank 3
    # T2 scores               = ( 0.6,  0.8, -0.6) -> own I1 first                      -> rank 1
    # T3 scores               = ( 0.8,  0.6, -0.8) -> I0 higher than own I1             -> rank 2
    # T4 scores               = (-1,    0,    1  ) -> own I2 first                      -> rank 1
    # T5 scores               = ( 0,   -1,    0  ) -> I0 ties own I2                    -> rank 2
    # ranks [1, 3, 1, 2, 1, 2]: R@1 = 3/6, R@5 = R@10 = 6/6, median of [1,1,1,2,2,3] = 1.5, mean = 10/6
    result = text_to_image(TEXTS, IMAGES, CAPTION_TO_IMAGE)
    assert result.r1 == pytest.approx(50.0)
    assert result.r5 == pytest.approx(100.0)
    assert result.r10 == pytest.approx(100.0)
    assert result.median_rank == pytest.approx(1.5)
    assert result.mean_rank == pytest.approx(10 / 6)


def test_image_to_text_hand_worked() -> None:
    """Each image ranks the 6 captions; its rank is that of its best own caption."""
    # I0 = ( 1, 0): scores T0..T5 = ( 1,  0,  0.6,  0.8, -1,  0) own {T0, T1}, best 1 (T0)
    #               no wrong caption >= 1                                                -> rank 1
    # I1 = ( 0, 1): scores        = ( 0,  1,  0.8,  0.6,  0, -1) own {T2, T3}, best 0.8 (T2)
    #               wrong T1 (1) >= 0.8                                                  -> rank 2
    # I2 = (-1, 0): scores        = (-1,  0, -0.6, -0.8,  1,  0) own {T4, T5}, best 1 (T4) -> rank 1
    # ranks [1, 2, 1]: R@1 = 2/3, median 1, mean 4/3
    result = image_to_text(IMAGES, TEXTS, CAPTION_TO_IMAGE)
    assert result.r1 == pytest.approx(200 / 3)
    assert result.r5 == pytest.approx(100.0)
    assert result.median_rank == pytest.approx(1.0)
    assert result.mean_rank == pytest.approx(4 / 3)


def test_scores_are_cosine_so_scale_does_not_matter() -> None:
    """Embeddings are L2-normalised first: scaling any row leaves every metric unchanged."""
    scaled_texts = TEXTS * np.array([[3.0], [0.5], [7.0], [2.0], [1.0], [9.0]])
    scaled_images = IMAGES * np.array([[10.0], [0.1], [4.0]])
    assert text_to_image(scaled_texts, scaled_images, CAPTION_TO_IMAGE) == text_to_image(
        TEXTS, IMAGES, CAPTION_TO_IMAGE
    )
    assert image_to_text(scaled_images, scaled_texts, CAPTION_TO_IMAGE) == image_to_text(
        IMAGES, TEXTS, CAPTION_TO_IMAGE
    )


def test_ties_count_against_in_both_directions() -> None:
    """Two identical images: each caption's own image ties with the other one, so every rank is 2."""
    # t2i: T0 scores (I0, I1) = (1, 1) -> the wrong I1 ties -> rank 2; same for T1 -> R@1 = 0, mean 2
    # i2t: I0 scores (T0, T1) = (1, 1) -> the wrong T1 ties its own T0 -> rank 2; same for I1
    images = np.array([[1.0, 0.0], [1.0, 0.0]])
    texts = np.array([[1.0, 0.0], [1.0, 0.0]])
    t2i = text_to_image(texts, images, [0, 1])
    i2t = image_to_text(images, texts, [0, 1])
    for result in (t2i, i2t):
        assert result.r1 == 0.0
        assert result.r5 == 100.0
        assert result.mean_rank == 2.0


def test_ties_survive_float_rounding_of_duplicate_embeddings() -> None:
    """A duplicated high-dimensional float32 image is a tie (not an ulp-level win) wherever it sits."""
    rng = np.random.default_rng(7)
    images = rng.normal(size=(300, 512)).astype(np.float32)
    images[257] = images[3]
    texts = images[[3, 257]].copy()
    result = text_to_image(texts, images, [3, 257])
    assert result.mean_rank == 2.0
    assert result.r1 == 0.0


def test_own_captions_tied_with_each_other_do_not_hurt() -> None:
    """Only WRONG items are counted: an image whose two captions tie at the top still has rank 1."""
    images = np.array([[1.0, 0.0], [0.0, 1.0]])
    texts = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    result = image_to_text(images, texts, [0, 0, 1])
    assert result.r1 == 100.0
    assert result.mean_rank == 1.0


def test_recall_result_from_ranks_and_as_dict() -> None:
    """Recall@K is the percentage of ranks <= K; as_dict uses the report's key names."""
    result = RecallResult.from_ranks([1, 4, 6, 11, 2])
    assert result.as_dict() == {
        "R@1": pytest.approx(20.0),
        "R@5": pytest.approx(60.0),
        "R@10": pytest.approx(80.0),
        "median_rank": 4.0,
        "mean_rank": pytest.approx(24 / 5),
    }
    with pytest.raises(ValueError):
        RecallResult.from_ranks([])


def test_mean_pool_and_text_to_video_hand_worked() -> None:
    """Frames are averaged per video and re-normalised; captions then rank the pooled videos."""
    frames = np.array([[1.0, 0.0], [0.0, 1.0], [3.0, 0.0]])
    videos = mean_pool(frames, [0, 0, 1])
    # video 0 = mean((1,0), (0,1)) = (0.5, 0.5) -> (0.7071, 0.7071); video 1 = (3, 0) -> (1, 0)
    assert videos.dtype == np.float32
    np.testing.assert_allclose(videos, [[2**-0.5, 2**-0.5], [1.0, 0.0]], atol=1e-6)
    # T0 (0,1) -> V0: scores (0.707, 0) -> rank 1;  T1 (1,0) -> V1: (0.707, 1) -> rank 1
    # T2 (1,1) -> V1: cosine (1.0, 0.707) -> V0 wins -> rank 2.  ranks [1,1,2]: R@1 2/3, mean 4/3
    result = text_to_video([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0]], videos, [0, 1, 1])
    assert result.r1 == pytest.approx(200 / 3)
    assert result.median_rank == 1.0
    assert result.mean_rank == pytest.approx(4 / 3)


def test_mean_pool_rejects_a_video_without_frames() -> None:
    """A group index with no frames (here video 1 of 3) is an error, not a zero vector."""
    with pytest.raises(ValueError, match="video 1"):
        mean_pool(np.ones((2, 3)), [0, 2])
    assert mean_pool(np.ones((2, 3)), [0, 0], n_groups=1).shape == (1, 3)


def test_second_longest_caption_ordering() -> None:
    """Order by (length desc, position asc) and take the 2nd; a lone caption is used as is."""
    captions = ["aaaa", "aaaaaa", "aaaaa", "ccccc", "ddddd", "eee", "x"]
    assert second_longest_caption([0, 1, 2], captions) == 2  # lengths 4, 6, 5 -> 6 (1), then 5 (2)
    assert second_longest_caption([3, 4, 5], captions) == 4  # lengths 5, 5, 3 -> tie: 3 first, then 4
    assert second_longest_caption([6], captions) == 6
    with pytest.raises(ValueError):
        second_longest_caption([], captions)


def test_original_protocol_tiny_batches_of_two() -> None:
    """Batches [I0, I1] and [I2, I3]; I4 is a last incomplete batch and is dropped."""
    right, up = [1.0, 0.0], [0.0, 1.0]
    images = np.array([right, up, right, up, right])
    captions = [
        "aaaa",  # 0 -> I0, len 4
        "aaaaaa",  # 1 -> I0, len 6 (longest)
        "aaaaa",  # 2 -> I0, len 5: 2nd-longest, chosen, points right = I0 -> batch scores (1, 0) -> rank 1
        "ccccc",  # 3 -> I1, len 5 (longest, first of the tie)
        "ddddd",  # 4 -> I1, len 5: chosen (tie -> order), points right = I0 -> scores (1, 0) -> rank 2
        "eee",  # 5 -> I1, len 3
        "x",  # 6 -> I2, only caption: chosen, points right -> batch [I2, I3] scores (1, 0) -> rank 1
        "yy",  # 7 -> I3, len 2 (longest)
        "y",  # 8 -> I3, len 1: chosen, points right = I2 -> scores (1, 0) -> rank 2
        "zzz",  # 9 -> I4 (dropped; a batch of one would always give rank 1)
        "zz",  # 10 -> I4
    ]
    texts = np.array([up, up, right, up, right, up, right, up, right, up, up])
    caption_to_image = [0, 0, 0, 1, 1, 1, 2, 3, 3, 4, 4]
    # ranks [1, 2, 1, 2] -> R@1 = 50, R@5 = R@10 = 100 (keeping I4 would give R@1 = 60)
    result = original_protocol(texts, images, caption_to_image, captions, batch_size=2)
    assert result == {"R@1": pytest.approx(50.0), "R@5": 100.0, "R@10": 100.0}
    # The same data under the standard protocol: I2 and I4 duplicate I0, so batching clearly matters.
    assert text_to_image(texts, images, caption_to_image).r1 < 50.0


def test_original_protocol_needs_one_full_batch() -> None:
    """Fewer images than batch_size leaves no full batch to evaluate."""
    with pytest.raises(ValueError, match="at least 64"):
        original_protocol(IMAGES[[0]], IMAGES, [0], ["a"])


def test_input_validation() -> None:
    """Shape and label mistakes are reported, not silently broadcast."""
    with pytest.raises(ValueError, match="caption_to_image"):
        text_to_image(TEXTS, IMAGES, [0, 1, 2])
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        text_to_image(TEXTS, IMAGES, [0, 0, 1, 1, 2, 3])
    with pytest.raises(ValueError, match="sizes differ"):
        text_to_image(np.ones((6, 3)), IMAGES, CAPTION_TO_IMAGE)
    with pytest.raises(ValueError, match="no matching"):
        image_to_text(IMAGES, TEXTS[:2], [0, 0])


def test_format_table() -> None:
    """The table has a title line, a header and one row per protocol/direction; missing cells are '-'."""
    metrics = {"R@1": 12.345, "R@5": 40.0, "R@10": 55.5, "median_rank": 9.0, "mean_rank": 31.25}
    results = {
        "dataset": "flickr8k",
        "split": "dev",
        "model": "lite",
        "standard": {"text_to_image": metrics, "image_to_text": metrics},
        "original_protocol": {"text_to_image": {"R@1": 30.0, "R@5": 70.0, "R@10": 85.0}},
    }
    lines = format_table(results).splitlines()
    assert lines[0] == "dataset: flickr8k  split: dev  model: lite"
    assert lines[1].split() == ["protocol", "direction", "R@1", "R@5", "R@10", "MedR", "MeanR"]
    assert lines[3].split() == ["standard", "text->image", "12.35", "40.00", "55.50", "9.0", "31.2"]
    assert lines[4].split()[:2] == ["standard", "image->text"]
    assert lines[5].split() == ["original", "protocol", "text->image", "30.00", "70.00", "85.00", "-", "-"]
    assert len(lines) == 6


def _reference_ranks(sim: np.ndarray, right: np.ndarray) -> list[int]:
    """Brute-force ranks: 1 + wrong candidates with score >= the best right score."""
    ranks = []
    for row, mask in zip(sim, right, strict=True):
        best = max(s for s, ok in zip(row, mask, strict=True) if ok)
        ranks.append(1 + sum(1 for s, ok in zip(row, mask, strict=True) if not ok and s >= best))
    return ranks


@settings(max_examples=40, deadline=None)
@given(
    counts=st.lists(st.integers(min_value=1, max_value=4), min_size=1, max_size=12),
    dim=st.integers(min_value=1, max_value=8),
)
def test_perfect_embeddings_give_full_recall(counts: list[int], dim: int) -> None:
    """Orthogonal one-hot images and captions equal to their image's embedding -> R@1 = 100 both ways."""
    n = len(counts)
    images = np.eye(n, max(n, dim))
    caption_to_image = np.repeat(np.arange(n), counts)
    texts = images[caption_to_image]
    for result in (
        text_to_image(texts, images, caption_to_image),
        image_to_text(images, texts, caption_to_image),
    ):
        assert result.r1 == 100.0
        assert result.median_rank == 1.0
        assert result.mean_rank == 1.0


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_matches_brute_force_with_many_ties(data: st.DataObject) -> None:
    """Small-integer embeddings (lots of exact ties) agree with a brute-force reference both ways."""
    n = data.draw(st.integers(min_value=1, max_value=6))
    m = data.draw(st.integers(min_value=n, max_value=12))
    coords = st.integers(min_value=-2, max_value=2)
    images = np.array(data.draw(st.lists(st.lists(coords, min_size=2, max_size=2), min_size=n, max_size=n)))
    texts = np.array(data.draw(st.lists(st.lists(coords, min_size=2, max_size=2), min_size=m, max_size=m)))
    labels = np.array(
        list(range(n)) + data.draw(st.lists(st.integers(0, n - 1), min_size=m - n, max_size=m - n))
    )

    def unit(x: np.ndarray) -> np.ndarray:
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        return x / np.where(norms > 0, norms, 1.0)

    sim = np.round(unit(texts.astype(float)) @ unit(images.astype(float)).T, 9)
    t2i = _reference_ranks(sim, labels[:, None] == np.arange(n)[None, :])
    i2t = _reference_ranks(sim.T, np.arange(n)[:, None] == labels[None, :])
    assert text_to_image(texts, images, labels) == RecallResult.from_ranks(t2i)
    assert image_to_text(images, texts, labels) == RecallResult.from_ranks(i2t)
