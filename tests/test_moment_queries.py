"""Order, duration, count and overlap: "A, then B within N s", "lasting at least", --count / --first /
--last, "A while B" — the query value, the pure composition over moments, and the same on a real montage."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Sequence

import pytest

from frameseek.errors import InputError
from frameseek.moments.confidence import FOUND_AT
from frameseek.moments.sequence import answer_videos, combine, compose, distinct, lasting, sequences, together
from frameseek.query import MAX_STEPS, MomentQuery, Query
from frameseek.results import SearchResult
from frameseek.search import Searcher
from montage import (
    CLASSROOM,
    ORCHESTRA,
    RECORDER,
    SCENES,
    SUBTITLES,
    TRAFFIC,
    Montage,
    build_montage,
    timeline_of,
)

TIMELINE = timeline_of(SCENES)
SURE, WEAK = 0.9, 0.1


def moment(
    start: float, end: float, confidence: float, *, time: float | None = None, match: str = "visual"
) -> SearchResult:
    t = (start + end) / 2 if time is None else time
    return SearchResult(
        video="montage.mp4",
        title="montage",
        time=t,
        timecode="",
        score=confidence / 2,
        start=start,
        end=end,
        thumbnail=None,
        match=match,
        confidence=confidence,
    )


def seen(kind: str) -> list[SearchResult]:
    """What a model that sees ``kind`` well finds: a sure moment per scene of that kind, a weak one per
    other scene (all moments, as ranking hands them over)."""
    return [moment(start, end, SURE if k == kind else WEAK) for k, start, end in TIMELINE]


def said(words: str) -> list[SearchResult]:
    """The subtitle cues as speech moments: sure where ``words`` are said, weak elsewhere."""
    return [moment(a, b, SURE if words in text else WEAK, match="speech") for a, b, text in SUBTITLES]


def spans(kind: str) -> list[tuple[float, float]]:
    return [(start, end) for k, start, end in TIMELINE if k == kind]


def answer(query: MomentQuery, steps: Sequence[list[SearchResult]], during: list[SearchResult] | None = None):
    return compose(query, steps, during, top_k=5)


# ------------------------------------------------------------------------------------ the query value
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"text": "a"}, None),
        ({"text": "  ", "then": ["b"]}, "the query is empty"),
        ({"text": "a", "then": ["b", " "]}, "--then step 2 is empty"),
        ({"text": "a", "within": 5}, "--within needs a next step"),
        ({"text": "a", "then": ["b"], "within": -1}, "--within must be a number of seconds above 0"),
        ({"text": "a", "then": ["b"], "within": math.nan}, "--within must be a number of seconds above 0"),
        ({"text": "a", "then": ["b"], "within": math.inf}, "--within must be a number of seconds above 0"),
        ({"text": "a", "min_duration": 0}, "--min-duration must be a number of seconds above 0"),
        ({"text": "a", "first": True, "last": True}, "--first and --last"),
        ({"text": "a", "count": True, "first": True}, "--count lists every matching moment"),
        ({"text": "a", "then": ["b"], "while_": "c"}, "--while goes with one query"),
        ({"text": "a", "while_": ""}, "--while is empty"),
        ({"text": "a", "then": ["b"] * MAX_STEPS}, f"at most {MAX_STEPS} steps"),
    ],
)
def test_a_moment_query_refuses_each_invalid_combination_with_one_line(
    kwargs: dict[str, object], message: str | None
) -> None:
    text = kwargs.pop("text")
    if message is None:
        assert MomentQuery.of(text, **kwargs).steps == ("a",)  # type: ignore[arg-type]
        return
    with pytest.raises(InputError, match=message) as raised:
        MomentQuery.of(text, **kwargs)  # type: ignore[arg-type]
    assert "\n" not in str(raised.value)


def test_a_moment_query_is_cleaned_once_and_names_itself() -> None:
    q = MomentQuery.of("  kids in  a classroom ", then=["cars in a traffic jam"], within=5, min_duration=2)
    assert q.steps == ("kids in a classroom", "cars in a traffic jam")
    assert q.label == "kids in a classroom, then cars in a traffic jam (within 5 s) (at least 2 s)"
    assert q.as_dict()["within"] == 5.0 and q.as_dict()["while"] is None
    assert not q.is_plain and MomentQuery.of("a dog").is_plain
    assert MomentQuery.of("a", while_="b").texts == ("a", "b")
    assert MomentQuery.plain(Query.of("a dog")).steps == ("a dog",)
    with pytest.raises(InputError):
        MomentQuery.plain(Query.of(image="x.png"))  # type: ignore[arg-type]


def test_counting_a_sequence_is_allowed_and_counts_the_sequences() -> None:
    q = MomentQuery.of("girl", then=["orchestra"], within=1, count=True)
    result = answer(q, [seen(RECORDER), seen(ORCHESTRA)])
    assert result.count == 1  # only the third girl is followed by the orchestra within 1 s
    assert (result.results[0].start, result.results[0].end) == (spans(RECORDER)[2][0], spans(ORCHESTRA)[1][1])


# ------------------------------------------------------------------------------------------ sequence
def test_a_forward_sequence_is_found_and_spans_from_the_first_step_to_the_last() -> None:
    q = MomentQuery.of("kids in a classroom", then=["cars in a traffic jam"], within=5)
    result = answer(q, [seen(CLASSROOM), seen(TRAFFIC)])
    assert result.found and result.count == 1
    best = result.results[0]
    (classroom,), (traffic,) = spans(CLASSROOM), spans(TRAFFIC)
    assert (best.start, best.end) == (classroom[0], traffic[1])
    assert best.time == (classroom[0] + classroom[1]) / 2  # the first step's representative frame
    assert best.confidence == SURE


def test_the_reversed_sequence_is_not_found_where_only_the_forward_order_happens() -> None:
    forward = answer(MomentQuery.of("classroom", then=["traffic"]), [seen(CLASSROOM), seen(TRAFFIC)])
    reverse = answer(MomentQuery.of("traffic", then=["classroom"]), [seen(TRAFFIC), seen(CLASSROOM)])
    assert forward.found
    assert not reverse.found and reverse.count == 0
    assert all(r.confidence < FOUND_AT for r in reverse.results)  # the closest, shown as weak


def test_within_limits_the_gap_between_one_step_s_end_and_the_next_step_s_start() -> None:
    # the classroom ends at 16.0, the next girl with a recorder starts at 17.8: a gap of 1.8 s
    steps = [seen(CLASSROOM), seen(RECORDER)]
    assert not answer(MomentQuery.of("classroom", then=["girl"], within=1.5), steps).found
    assert answer(MomentQuery.of("classroom", then=["girl"], within=2.0), steps).found


def test_a_three_step_chain_needs_every_gap_within_the_limit() -> None:
    # girl (3–7) → classroom (11–16): a gap of 4 s; classroom → traffic (16–17.8): none
    steps = [seen(RECORDER), seen(CLASSROOM), seen(TRAFFIC)]
    found = answer(MomentQuery.of("girl", then=["classroom", "traffic"], within=4), steps)
    assert found.found
    assert (found.results[0].start, found.results[0].end) == (3.0, 17.8)
    assert not answer(MomentQuery.of("girl", then=["classroom", "traffic"], within=3), steps).found


def test_a_chain_is_as_confident_as_its_weakest_step() -> None:
    a = [moment(0, 2, 0.95)]
    b = [moment(3, 5, 0.6)]
    c = [moment(6, 8, 0.8)]
    (chain,) = sequences([a, b, c], within=2)
    assert chain.confidence == 0.6 and chain.score == 0.3


def test_one_moment_that_matches_both_steps_is_not_a_sequence() -> None:
    same = [moment(4, 8, SURE)]
    assert sequences([same, same]) == []


def test_each_step_chains_to_the_nearest_next_moment_so_repeats_count_apart() -> None:
    # A B A B: two sequences, not one A chained to the last B
    a = [moment(0, 2, SURE), moment(10, 12, SURE)]
    b = [moment(3, 5, SURE), moment(13, 15, SURE)]
    result = answer(MomentQuery.of("a", then=["b"], count=True), [a, b])
    assert result.count == 2
    assert [(r.start, r.end) for r in result.results] == [(0, 5), (10, 15)]


# ------------------------------------------------------------------------------------------ duration
def test_min_duration_keeps_only_moments_that_last_long_enough() -> None:
    everything = [moment(start, end, SURE) for _, start, end in TIMELINE]
    long = lasting(everything, 4.5)
    assert [(m.start, m.end) for m in long] == spans(CLASSROOM)  # the only scene of 5 s
    result = answer(MomentQuery.of("anything", min_duration=4.5, count=True), [everything])
    assert result.count == 1


def test_min_duration_on_a_sequence_applies_to_its_whole_span() -> None:
    q = MomentQuery.of("classroom", then=["traffic"], within=5, min_duration=6.5)
    assert answer(q, [seen(CLASSROOM), seen(TRAFFIC)]).found  # 11.0–17.8: 6.8 s
    q = MomentQuery.of("classroom", then=["traffic"], within=5, min_duration=7)
    assert not answer(q, [seen(CLASSROOM), seen(TRAFFIC)]).found


# ------------------------------------------------------------------------------ count, first, last
def test_count_equals_the_number_of_scenes_of_that_kind_and_lists_them_in_time_order() -> None:
    for kind in (RECORDER, ORCHESTRA, CLASSROOM):
        result = answer(MomentQuery.of(kind, count=True), [seen(kind)])
        assert result.count == len(spans(kind))
        assert [(r.start, r.end) for r in result.results] == spans(kind)


def test_first_and_last_are_the_earliest_and_the_latest_match() -> None:
    girls = spans(RECORDER)
    first = answer(MomentQuery.of(RECORDER, first=True), [seen(RECORDER)])
    last = answer(MomentQuery.of(RECORDER, last=True), [seen(RECORDER)])
    assert [(r.start, r.end) for r in first.results] == [girls[0]]
    assert [(r.start, r.end) for r in last.results] == [girls[-1]]
    assert first.count == last.count == 3


def test_count_of_nothing_is_zero_and_shows_the_closest_as_weak() -> None:
    result = answer(MomentQuery.of("an elephant", count=True), [seen("elephant")])
    assert result.count == 0 and not result.found
    assert result.results and all(r.confidence < FOUND_AT for r in result.results)


def test_overlapping_duplicates_count_once() -> None:
    twice = [moment(3, 7, 0.9), moment(3.5, 7.5, 0.8), moment(20, 22, 0.7)]
    kept = distinct(twice)
    assert [(m.start, m.end) for m in kept] == [(3, 7), (20, 22)]
    assert answer(MomentQuery.of("a", count=True), [twice]).count == 2


def test_counts_add_up_across_videos() -> None:
    q = MomentQuery.of(RECORDER, count=True)
    one = answer(q, [seen(RECORDER)])
    both = combine(q, [one, one])
    assert both.count == 6 and len(both.results) == 6


# ------------------------------------------------------------------------------------------ together
def test_while_finds_the_overlap_of_a_picture_and_what_is_said() -> None:
    crowd = [moment(start, end, SURE) for k, start, end in TIMELINE if k in (ORCHESTRA, CLASSROOM)]
    result = answer(MomentQuery.of("a crowd", while_="thank you", count=True), [crowd], said("thank you"))
    assert result.count == 1
    (overlap,) = result.results
    assert (overlap.start, overlap.end) == (30.3, 32.8)  # the cue, inside the last orchestra scene
    assert overlap.match == "visual+speech"


def test_while_finds_nothing_where_the_two_never_overlap() -> None:
    classroom = seen(CLASSROOM)
    result = answer(MomentQuery.of("kids in a classroom", while_="thank you"), [classroom], said("thank you"))
    assert not result.found


def test_an_overlap_is_as_confident_as_the_weaker_of_the_two() -> None:
    (overlap,) = together([moment(0, 10, 0.9, time=2)], [moment(4, 6, 0.7)])
    assert (overlap.start, overlap.end, overlap.confidence) == (4, 6, 0.7)
    assert overlap.time == 4  # the picture's best frame (2 s) lies outside: the overlap's start


def test_answer_videos_composes_each_video_on_its_own() -> None:
    other = [dataclasses.replace(m, video="other.mp4") for m in seen(RECORDER)]
    q = MomentQuery.of(RECORDER, count=True)
    both = answer_videos(q, {RECORDER: [*seen(RECORDER), *other]}, ["montage.mp4", "other.mp4"])
    assert both.count == 6
    assert [r.video for r in both.results] == ["montage.mp4"] * 3 + ["other.mp4"] * 3


# ------------------------------------------------------------------------- through Searcher, real montage
@pytest.fixture(scope="module")
def montage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Montage]:
    """The montage, built once, in a FRAMESEEK_HOME of this module's own (indexed once)."""
    root = tmp_path_factory.mktemp("moment-queries")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FRAMESEEK_HOME", str(root / "home"))
        yield build_montage(root / "montage.mp4")


@pytest.fixture(scope="module")
def searcher(montage: Montage) -> Searcher:
    return Searcher("lite")


def inside(result: SearchResult, where: list[tuple[float, float]], slack: float = 1.0) -> bool:
    """The result's best frame lies in one of the spans (a sampled frame may sit up to 1 s off an edge)."""
    return any(start - slack <= result.time <= end + slack for start, end in where)


def test_count_through_searcher_equals_the_scenes_of_that_kind_in_the_montage(
    searcher: Searcher, montage: Montage
) -> None:
    for text, kind in (("a girl holding a recorder", RECORDER), ("kids in a classroom", CLASSROOM)):
        response = searcher.search(montage.path, searcher.moment_query(text, count=True))
        assert response.count == len(montage.spans(kind)), (text, [r.as_dict() for r in response.results])
        assert all(inside(r, montage.spans(kind)) for r in response.results)
        assert response.as_dict()["count"] == response.count and response.found


def test_a_sequence_through_searcher_is_found_forward_and_not_reversed(
    searcher: Searcher, montage: Montage
) -> None:
    forward = searcher.search(
        montage.path, searcher.moment_query("kids in a classroom", then=["cars in a traffic jam"], within=5)
    )
    reverse = searcher.search(
        montage.path, searcher.moment_query("cars in a traffic jam", then=["kids in a classroom"], within=5)
    )
    assert forward.found and forward.count == 1
    best = forward.results[0]
    (classroom,), (traffic,) = montage.spans(CLASSROOM), montage.spans(TRAFFIC)
    assert classroom[0] - 1 <= best.start and best.end <= traffic[1] + 1
    assert forward.query == "kids in a classroom, then cars in a traffic jam (within 5 s)"
    assert not reverse.found and reverse.count == 0


def test_first_and_last_through_searcher_are_the_first_and_last_scene(
    searcher: Searcher, montage: Montage
) -> None:
    girls = montage.spans(RECORDER)
    (first,) = searcher.search(
        montage.path, searcher.moment_query("a girl holding a recorder", first=True)
    ).results
    (last,) = searcher.search(
        montage.path, searcher.moment_query("a girl holding a recorder", last=True)
    ).results
    assert inside(first, girls[:1]) and inside(last, girls[-1:])


def test_while_through_searcher_finds_the_crowd_while_thank_you_is_said(
    searcher: Searcher, montage: Montage
) -> None:
    response = searcher.search(montage.path, searcher.moment_query("a crowd of people", while_="thank you"))
    assert response.found and response.count == 1
    best = response.results[0]
    said_at = next((a, b) for a, b, text in SUBTITLES if "thank you" in text)
    assert said_at[0] <= best.start and best.end <= said_at[1]  # the overlap lies within what was said
    assert "speech" in best.match
    nothing = searcher.search(
        montage.path, searcher.moment_query("cars in a traffic jam", while_="thank you")
    )
    assert not nothing.found


def test_min_duration_through_searcher_keeps_the_long_enough_scene(
    searcher: Searcher, montage: Montage
) -> None:
    (classroom,) = montage.spans(CLASSROOM)
    assert searcher.search(montage.path, searcher.moment_query("kids in a classroom", min_duration=3)).found
    too_long = searcher.search(
        montage.path,
        searcher.moment_query("kids in a classroom", min_duration=classroom[1] - classroom[0] + 2),
    )
    assert not too_long.found


# ------------------------------------------------------------------------------------------ the app
def test_the_app_builds_then_while_and_at_least_and_words_errors_for_the_page() -> None:
    from frameseek.app.logic import make_moment_query

    assert make_moment_query("a dog", then="  ", while_="") is None  # blank fields: a plain query
    q = make_moment_query("a dog", then="a cat", within=5)
    assert q is not None and q.steps == ("a dog", "a cat") and q.within == 5
    q = make_moment_query("a crowd", while_="thank you", at_least=2)
    assert q is not None and q.while_ == "thank you" and q.min_duration == 2
    with pytest.raises(InputError, match="'within' needs a next step") as raised:
        make_moment_query("a dog", within=5)
    assert "--" not in str(raised.value)
    with pytest.raises(InputError, match="'while' goes with one query"):
        make_moment_query("a dog", then="a cat", while_="a bird")
