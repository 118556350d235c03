"""Temporal non-maximum suppression and segments: hand examples and hypothesis properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from frameseek.moments.temporal import segment_bounds, segment_times, temporal_nms

SCORES = st.floats(min_value=-1.0, max_value=1.0, allow_nan=False, allow_infinity=False, width=32)
GAPS = st.floats(min_value=0.0, max_value=5.0, allow_nan=False, allow_infinity=False)
KEEPS = st.floats(min_value=0.0, max_value=1.0, allow_nan=False, allow_infinity=False)


@st.composite
def timelines(draw: st.DrawFn, min_size: int = 1, max_size: int = 40) -> tuple[list[float], list[float]]:
    """Strictly increasing frame times (irregular spacing, like variable-rate video) and their scores."""
    steps = draw(
        st.lists(
            st.floats(min_value=0.01, max_value=3.0, allow_nan=False, allow_infinity=False),
            min_size=min_size,
            max_size=max_size,
        )
    )
    start = draw(st.floats(min_value=0.0, max_value=10.0, allow_nan=False, allow_infinity=False))
    times = list(np.cumsum([start, *steps[:-1]]).astype(float))
    scores = draw(st.lists(SCORES, min_size=len(times), max_size=len(times)))
    return times, scores


def _near(scores: list[float], peak: int, keep: float, i: int) -> bool:
    """Hand-written reference: within keep × (peak − median) of the peak's score, on either side."""
    s = np.asarray(scores, dtype=np.float64)
    band = keep * max(0.0, s[peak] - float(np.median(s)))
    return bool(abs(s[i] - s[peak]) <= band)


# ---------------------------------------------------------------------------------------- temporal_nms


def test_nms_hand_example() -> None:
    times = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    scores = [0.1, 0.9, 0.8, 0.2, 0.7, 0.95, 0.3]
    # 5 (0.95) first; 1 (0.9) is 4 s away; 2 (0.8) is within 2 s of 1; 4 (0.7) within 2 s of 5.
    assert temporal_nms(times, scores, top_k=5, min_gap=2.0) == [5, 1, 3]
    assert temporal_nms(times, scores, top_k=2, min_gap=2.0) == [5, 1]
    assert temporal_nms(times, scores, top_k=3, min_gap=0.0) == [5, 1, 2]


def test_nms_edge_cases() -> None:
    assert temporal_nms([], [], top_k=3, min_gap=1.0) == []
    assert temporal_nms([0.0, 1.0], [0.5, 0.4], top_k=0, min_gap=1.0) == []
    assert temporal_nms([0.0], [0.5], top_k=3, min_gap=1.0) == [0]
    # exactly min_gap apart is allowed ("no two closer than")
    assert temporal_nms([0.0, 2.0], [0.5, 0.4], top_k=3, min_gap=2.0) == [0, 1]
    # a huge gap keeps only the best frame
    assert temporal_nms([0.0, 1.0, 2.0], [0.1, 0.3, 0.2], top_k=3, min_gap=100.0) == [1]


@settings(max_examples=300, deadline=None)
@given(timelines(), st.integers(min_value=1, max_value=12), GAPS)
def test_nms_properties(timeline: tuple[list[float], list[float]], top_k: int, min_gap: float) -> None:
    times, scores = timeline
    chosen = temporal_nms(times, scores, top_k, min_gap)

    assert 1 <= len(chosen) <= top_k
    assert len(set(chosen)) == len(chosen)
    assert all(0 <= i < len(times) for i in chosen)
    # the best frame always comes first
    assert scores[chosen[0]] == max(scores)
    # best first
    picked = [scores[i] for i in chosen]
    assert picked == sorted(picked, reverse=True)
    # no two chosen frames closer than min_gap
    for a in range(len(chosen)):
        for b in range(a + 1, len(chosen)):
            assert abs(times[chosen[a]] - times[chosen[b]]) >= min_gap
    # greedy maximality: a frame left out (and better than the last pick, or any frame when fewer
    # than top_k were picked) is within min_gap of a chosen frame that scores at least as much
    last = picked[-1]
    for i in set(range(len(times))) - set(chosen):
        if len(chosen) < top_k or scores[i] > last:
            assert any(abs(times[i] - times[j]) < min_gap and scores[j] >= scores[i] for j in chosen), (
                f"frame {i} should have been chosen"
            )


@settings(max_examples=100, deadline=None)
@given(timelines(), st.integers(min_value=1, max_value=12))
def test_nms_without_gap_is_a_plain_top_k(timeline: tuple[list[float], list[float]], top_k: int) -> None:
    times, scores = timeline
    chosen = temporal_nms(times, scores, top_k, 0.0)
    assert len(chosen) == min(top_k, len(times))
    assert sorted((scores[i] for i in chosen), reverse=True) == sorted(scores, reverse=True)[: len(chosen)]


@settings(max_examples=100, deadline=None)
@given(timelines(min_size=2), GAPS)
def test_nms_order_of_input_does_not_matter(
    timeline: tuple[list[float], list[float]], min_gap: float
) -> None:
    """Shuffled frames give the same picks (as times) when scores are distinct."""
    times, scores = timeline
    if len(set(scores)) != len(scores):
        return
    order = np.random.default_rng(0).permutation(len(times))
    picked = [times[i] for i in temporal_nms(times, scores, 5, min_gap)]
    shuffled = temporal_nms([times[i] for i in order], [scores[i] for i in order], 5, min_gap)
    assert [times[order[i]] for i in shuffled] == picked


# -------------------------------------------------------------------------------------- segment_bounds


def test_segment_bounds_hand_examples() -> None:
    scores = [0.0, 0.0, 1.0, 5.0, 4.0, 1.0, 0.0]
    # median 1.0 → threshold 5 - 0.5 * 4 = 3 → frames 3..4
    assert segment_bounds(scores, 3, keep=0.5) == (3, 4)
    # keep 0 → only frames scoring exactly the peak's score
    assert segment_bounds(scores, 3, keep=0.0) == (3, 3)
    # a weak hit (below the median) is its own frame, even beside much better frames
    assert segment_bounds([-0.03, 0.0, 0.22, 0.15, 0.29], 0, keep=0.5) == (0, 0)
    # a secondary hit's segment stops where another, clearly better peak begins
    assert segment_bounds([0.0, 0.0, 0.6, 0.5, 0.9, 0.0, 0.0], 2, keep=0.5) == (2, 3)
    # keep 1 → down to the median (1.0): frames 2..5
    assert segment_bounds(scores, 3, keep=1.0) == (2, 5)
    # a dip below the threshold splits runs: the segment stays on the peak's side
    assert segment_bounds([5.0, 1.0, 5.0, 5.0, 0.0], 2, keep=0.5) == (2, 3)
    # a flat timeline is one segment
    assert segment_bounds([0.3] * 6, 2, keep=0.5) == (0, 5)
    assert segment_bounds([0.7], 0) == (0, 0)


def test_segment_bounds_rejects_bad_peak() -> None:
    with pytest.raises(ValueError):
        segment_bounds([0.1, 0.2], 2)
    with pytest.raises(ValueError):
        segment_bounds([0.1, 0.2], -1)
    with pytest.raises(ValueError):
        segment_bounds([], 0)


@settings(max_examples=300, deadline=None)
@given(st.lists(SCORES, min_size=1, max_size=60), st.data(), KEEPS)
def test_segment_bounds_properties(scores: list[float], data: st.DataObject, keep: float) -> None:
    peak = data.draw(st.integers(min_value=0, max_value=len(scores) - 1))
    first, last = segment_bounds(scores, peak, keep)

    assert 0 <= first <= peak <= last < len(scores)  # contains the peak, contiguous (a range)
    assert all(_near(scores, peak, keep, i) for i in range(first, last + 1))  # every frame inside is near
    if first > 0:
        assert not _near(scores, peak, keep, first - 1)  # the frames just outside are not
    if last < len(scores) - 1:
        assert not _near(scores, peak, keep, last + 1)


@settings(max_examples=200, deadline=None)
@given(st.lists(SCORES, min_size=1, max_size=60), st.data(), KEEPS, KEEPS)
def test_segment_grows_with_keep(scores: list[float], data: st.DataObject, k1: float, k2: float) -> None:
    peak = data.draw(st.integers(min_value=0, max_value=len(scores) - 1))
    small, large = sorted((k1, k2))
    a_first, a_last = segment_bounds(scores, peak, small)
    b_first, b_last = segment_bounds(scores, peak, large)
    assert b_first <= a_first and a_last <= b_last


# --------------------------------------------------------------------------------------- segment_times


def test_segment_times_hand_examples() -> None:
    times = [0.0, 1.0, 2.0, 3.0]
    # a frame stands for the time until the next one
    assert segment_times(times, 1, 2, duration=3.5, step=1.0) == (1.0, 3.0)
    assert segment_times(times, 0, 0, duration=3.5, step=1.0) == (0.0, 1.0)
    # the last frame stands for one step, cut at the end of the video
    assert segment_times(times, 3, 3, duration=3.5, step=1.0) == (3.0, 3.5)
    assert segment_times(times, 2, 3, duration=10.0, step=1.0) == (2.0, 4.0)
    assert segment_times(times, 2, 3, duration=None, step=1.0) == (2.0, 4.0)
    # a duration shorter than the last frame time (bad metadata) never makes end < start
    assert segment_times(times, 3, 3, duration=2.5, step=1.0) == (3.0, 3.0)


@settings(max_examples=300, deadline=None)
@given(
    timelines(),
    st.data(),
    st.floats(min_value=0.01, max_value=5.0, allow_nan=False),
    st.one_of(st.none(), st.floats(min_value=0.0, max_value=10.0, allow_nan=False)),
)
def test_segment_times_properties(
    timeline: tuple[list[float], list[float]], data: st.DataObject, step: float, extra: float | None
) -> None:
    times, _ = timeline
    n = len(times)
    first = data.draw(st.integers(min_value=0, max_value=n - 1))
    last = data.draw(st.integers(min_value=first, max_value=n - 1))
    peak = data.draw(st.integers(min_value=first, max_value=last))
    duration = None if extra is None else times[-1] + extra  # a real duration is never before a frame

    start, end = segment_times(times, first, last, duration, step)

    assert start == times[first]
    assert start <= times[peak] <= end
    if duration is not None:
        assert end <= duration
    if last + 1 < n:
        assert end == times[last + 1]  # up to the next sampled frame, not beyond
    else:
        assert end <= times[last] + step + 1e-9


@settings(max_examples=200, deadline=None)
@given(timelines(), st.integers(min_value=1, max_value=5), GAPS, KEEPS)
def test_nms_then_segments(
    timeline: tuple[list[float], list[float]], top_k: int, min_gap: float, keep: float
) -> None:
    """The whole chain as search.py uses it: every hit's segment contains the hit's time."""
    times, scores = timeline
    duration = times[-1] + 1.0
    peaks = temporal_nms(times, scores, top_k, min_gap)
    assert 1 <= len(peaks) <= top_k
    for peak in peaks:
        first, last = segment_bounds(scores, peak, keep)
        start, end = segment_times(times, first, last, duration, 1.0)
        assert start <= times[peak] <= end <= duration
