"""Moments with confidence: one result per moment led by its best frame, a calibrated confidence that orders
the results and says whether anything matches, and the tracks fused on the confidence scale — on real
footage (the street video, MSR-VTT clips) through the real decoder and the real lite model."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from frameseek.errors import InputError
from frameseek.moments.confidence import FOUND_AT
from frameseek.moments.fusion import merge_moments, noisy_or, overlap_share
from frameseek.moments.temporal import pick_moments
from frameseek.search import Searcher, SearchResponse, SearchResult
from test_search import shared_model  # tests/ is on sys.path (like conftest)
from videos import MSRVTT_DIR, require_bikes

LONG_CLIPS = ("video236.mp4", "video4382.mp4", "video1085.mp4")  # 30 s, 29 s, 20 s: room for many moments
QUERIES = [
    "a cyclist wearing a helmet",
    "cars in a traffic jam",
    "a bike parked against a wall",
    "a teacher talking in a classroom",
    "a person walking",
    "qwxz zzkp",
]


# ------------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("moments-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FRAMESEEK_HOME", str(root))
        yield root


@pytest.fixture(scope="module")
def searcher(home: Path) -> Searcher:
    return Searcher(shared_model())


@pytest.fixture(scope="module")
def bikes() -> Path:
    return require_bikes()


def long_clips() -> list[Path]:
    clips = [MSRVTT_DIR / name for name in LONG_CLIPS]
    if not all(c.is_file() for c in clips):
        pytest.skip(f"MSR-VTT clips {LONG_CLIPS} are not available in {MSRVTT_DIR}")
    return clips


def result(
    time: float, start: float, end: float, confidence: float, match: str = "visual", video: str = "v.mp4"
) -> SearchResult:
    return SearchResult(
        video=video,
        title="v",
        time=time,
        timecode="",
        score=confidence,
        start=start,
        end=end,
        thumbnail=None,
        match=match,
        text="words" if match != "visual" else None,
        confidence=confidence,
    )


def check_moments(response: SearchResponse) -> None:
    """One result per moment, led by its best frame, ordered by a confidence in [0, 1]."""
    confidences = [r.confidence for r in response.results]
    assert all(0.0 <= c <= 1.0 for c in confidences)
    assert confidences == sorted(confidences, reverse=True)
    assert response.found == any(c >= FOUND_AT for c in confidences)
    for i, a in enumerate(response.results):
        for b in response.results[i + 1 :]:
            assert overlap_share(a, b) <= 0.5, f"{a.start}-{a.end} and {b.start}-{b.end} are one moment"
    timelines = {t.video: t for t in response.timelines}
    for hit in response.results:
        if hit.match != "visual":
            continue
        line = timelines[hit.video]
        inside = (line.times >= hit.start - 1e-6) & (line.times < hit.end - 1e-6)
        assert inside.any() and hit.start <= hit.time <= hit.end
        best = float(line.times[inside][int(np.argmax(line.scores[inside]))])
        assert hit.time == pytest.approx(best, abs=1e-5), "the moment's time is its best frame"


# ------------------------------------------------------------------------------- moments of a timeline


def test_a_bump_inside_a_moment_is_not_a_moment_of_its_own() -> None:
    times = np.arange(12, dtype=np.float64)
    conf = np.array([0.01, 0.02, 0.1, 0.7, 0.8, 0.9, 0.85, 0.88, 0.6, 0.05, 0.3, 0.02])
    picked = pick_moments(times, conf, conf, None, min_gap=0.0)
    assert picked[0] == (5, 3, 8)  # 0.85 / 0.88 at 6-7 s are the same moment, not a second one
    assert [p for p, _, _ in picked] == [5, 10]  # then the weak one at 10 s, its best frame alone
    assert picked[1] == (10, 10, 10)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(0.0, 1.0), min_size=1, max_size=40),
    st.integers(1, 10),
    st.floats(0.0, 3.0),
    st.floats(0.0, 1.0),
)
def test_moments_never_share_a_frame_and_each_is_led_by_its_best(
    conf: list[float], limit: int, min_gap: float, keep: float
) -> None:
    c = np.array(conf)
    times = np.arange(len(c), dtype=np.float64)
    picked = pick_moments(times, c, c, limit, min_gap, keep)
    assert 1 <= len(picked) <= limit
    covered = np.zeros(len(c), dtype=int)
    for peak, first, last in picked:
        assert first <= peak <= last
        assert c[peak] == c[first : last + 1].max()
        covered[first : last + 1] += 1
    assert covered.max() == 1
    assert [c[p] for p, _, _ in picked] == sorted((c[p] for p, _, _ in picked), reverse=True)


# ------------------------------------------------------------------------------------------- fusion


def test_a_spoken_and_a_visual_match_of_the_same_moment_fuse_into_one_naming_both() -> None:
    seen = result(2.0, 1.5, 3.0, 0.6)
    said = result(1.2, 1.2, 3.4, 0.7, match="speech")
    elsewhere = result(8.0, 7.0, 9.0, 0.4)
    fused = merge_moments([seen, said, elsewhere], None, 2.0)
    assert len(fused) == 2
    moment = fused[0]
    assert moment.match == "speech+visual" and moment.text == "words"
    assert moment.confidence == pytest.approx(1 - 0.3 * 0.4)  # noisy-OR: 0.88, above either alone
    assert (moment.start, moment.end, moment.time) == (1.2, 3.4, 1.2)  # the strongest one leads
    assert fused[1].confidence == 0.4


def test_a_weak_visual_peak_beside_a_spoken_match_adds_a_little_but_not_its_name() -> None:
    said = result(4.0, 4.0, 6.0, 0.9, match="speech")
    faint = result(5.0, 5.0, 6.0, 0.1)
    (moment,) = merge_moments([faint, said], None, 2.0)
    assert moment.match == "speech" and moment.confidence == pytest.approx(noisy_or([0.9, 0.1]))
    assert (moment.start, moment.end) == (4.0, 6.0)


def test_two_frames_of_one_track_are_one_vote() -> None:
    a, b = result(1.0, 0.0, 2.0, 0.6), result(1.5, 0.5, 2.5, 0.6)
    (moment,) = merge_moments([a, b], None, 0.0)
    assert moment.confidence == 0.6 and moment.match == "visual"


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(0, 50), st.floats(0, 10), st.floats(0, 1), st.sampled_from(["visual", "speech"])),
        min_size=1,
        max_size=25,
    ),
    st.floats(0, 3),
)
def test_no_two_fused_moments_overlap_by_more_than_half(
    parts: list[tuple[float, float, float, str]], min_gap: float
) -> None:
    candidates = [  # times and confidences as results carry them (6 decimals)
        result(round(start, 6), round(start, 6), round(start + length, 6), round(p, 6), kind)
        for start, length, p, kind in parts
    ]
    fused = merge_moments(candidates, None, min_gap)
    best = max(c.confidence for c in candidates)
    assert fused[0].confidence >= best - 1e-6  # fusion never loses evidence (confidences keep 6 decimals)
    for i, a in enumerate(fused):
        assert 0.0 <= a.confidence <= 1.0 and a.start <= a.time <= a.end
        for b in fused[i + 1 :]:
            assert overlap_share(a, b) <= 0.5


# ---------------------------------------------------------------------------------------- real footage


@pytest.mark.parametrize("query", QUERIES)
def test_results_on_the_street_video_are_moments(searcher: Searcher, bikes: Path, query: str) -> None:
    check_moments(searcher.search(bikes, query, top_k=10, min_gap=0.0))


@pytest.mark.parametrize("query", QUERIES)
def test_results_on_long_msrvtt_clips_are_moments(searcher: Searcher, query: str) -> None:
    for clip in long_clips():
        response = searcher.search(clip, query, top_k=10, min_gap=0.0)
        check_moments(response)
        segments = [(r.start, r.end) for r in response.results]
        assert len(set(segments)) == len(segments), "one moment shown twice"


def test_all_moments_of_a_video_are_the_ranked_results_before_the_cut(
    searcher: Searcher, bikes: Path
) -> None:
    moments = searcher.moments(bikes, "a bike parked against a wall")
    (video,) = moments
    ranked = searcher.search(bikes, "a bike parked against a wall", top_k=100).results
    assert moments[video] == ranked


def test_a_spoken_and_a_seen_traffic_jam_are_one_moment_naming_both(
    searcher: Searcher, bikes: Path, tmp_path: Path
) -> None:
    clip = tmp_path / "street.mp4"
    shutil.copy(bikes, clip)
    (tmp_path / "street.en.srt").write_text(
        "1\n00:00:01,200 --> 00:00:03,000\nlook at all these cars stuck in a traffic jam\n\n",
        encoding="utf-8",
    )
    seen_only = searcher.search(bikes, "cars in a traffic jam", top_k=5)
    both = searcher.search(clip, "cars in a traffic jam", top_k=5)
    check_moments(both)
    top = both.results[0]
    assert set(top.match.split("+")) == {"speech", "visual"}, top
    assert top.start <= 1.2 and top.end >= 3.0 and "traffic jam" in (top.text or "")
    assert top.confidence >= seen_only.results[0].confidence
    assert sum(overlap_share(top, r) > 0 for r in both.results) == 1  # nothing else claims the jam


def test_found_and_min_confidence_in_the_python_api(searcher: Searcher, bikes: Path) -> None:
    present = searcher.search(bikes, "cars in a traffic jam")
    absent = searcher.search(bikes, "an elephant on the moon")
    assert present.found and present.as_dict()["found"] is True
    assert not absent.found and absent.results and absent.as_dict()["found"] is False
    assert all(0 <= r["confidence"] <= 1 for r in absent.as_dict()["results"])
    kept = searcher.search(bikes, "cars in a traffic jam", min_confidence=FOUND_AT)
    assert kept.results and all(r.confidence >= FOUND_AT for r in kept.results) and kept.found
    assert searcher.search(bikes, "an elephant on the moon", min_confidence=FOUND_AT).results == []
    for bad in (-0.01, 1.01, float("nan")):
        with pytest.raises(InputError, match="min-confidence"):
            searcher.search(bikes, "a car", min_confidence=bad)
        with pytest.raises(InputError, match="min-confidence"):
            searcher.search_library("a car", min_confidence=bad)


def test_library_search_ranks_moments_by_confidence_exact_and_faiss(searcher: Searcher) -> None:
    clips = long_clips()
    searcher.add([str(c) for c in clips], library="moments")
    for use_ann in (False, True):
        response = searcher.search_library(
            "a teacher talking in a classroom", library="moments", top_k=8, use_ann=use_ann, min_gap=0.0
        )
        confidences = [r.confidence for r in response.results]
        assert confidences and confidences == sorted(confidences, reverse=True)
        assert response.found == (confidences[0] >= FOUND_AT)
        for i, a in enumerate(response.results):
            for b in response.results[i + 1 :]:
                assert overlap_share(a, b) <= 0.5
        cut = searcher.search_library(
            "a teacher talking in a classroom", library="moments", use_ann=use_ann, min_confidence=0.99
        )
        assert all(r.confidence >= 0.99 for r in cut.results)


# ------------------------------------------------------------------ present / absent (needs calibration)

PRESENT = [  # written from what the footage shows, in words of our own; never used to fit or tune anything
    ("bikes.mp4", "cars in a traffic jam"),
    ("bikes.mp4", "a cyclist in a helmet riding beside a van"),
    ("bikes.mp4", "a bicycle leaning against a wall"),
    ("bikes.mp4", "a street behind a metal railing"),
    ("bikes.mp4", "cobblestone pavement"),
    ("video176.mp4", "a man speaking on a stage in front of an audience"),
    ("video1672.mp4", "a basketball player dunking the ball"),
    ("video1820.mp4", "a girl playing a recorder"),
    ("video3696.mp4", "an orchestra with a conductor"),
    ("video740.mp4", "actors performing on a theatre stage"),
    ("video2752.mp4", "children sitting at desks in a classroom"),
    ("video6188.mp4", "a toy spiderman figure"),
    ("video1085.mp4", "an athlete in a red uniform"),
    ("video24.mp4", "a man driving a car"),
    ("video676.mp4", "a man on the telephone"),
    ("video2262.mp4", "a woman lecturing a class"),
    ("video4382.mp4", "a teacher in front of a chalkboard"),
    ("video1882.mp4", "a little boy being interviewed"),
    ("video231.mp4", "a classroom full of children"),
    ("video236.mp4", "a teacher speaking to the camera"),
]
ABSENT = [
    ("bikes.mp4", "a herd of zebras drinking at a river"),
    ("bikes.mp4", "a submarine under the polar ice"),
    ("bikes.mp4", "penguins on an iceberg"),
    ("video176.mp4", "a volcano erupting lava"),
    ("video1672.mp4", "a rocket launching into space"),
    ("video1820.mp4", "a horse galloping along a beach"),
    ("video3696.mp4", "a shark swimming in the ocean"),
    ("video740.mp4", "a hot air balloon over the desert"),
    ("video2752.mp4", "a cow grazing in a field"),
    ("video6188.mp4", "fireworks over a city at night"),
    ("video1085.mp4", "a surfer riding a big wave"),
    ("video24.mp4", "a tractor ploughing a field"),
    ("video676.mp4", "a giraffe eating leaves from a tree"),
    ("video2262.mp4", "a sailboat on a calm lake"),
    ("video4382.mp4", "a skier going down a snowy slope"),
    ("video1882.mp4", "a camel walking in the desert"),
    ("video231.mp4", "lightning striking a tree"),
    ("video236.mp4", "a scuba diver at a coral reef"),
    ("video1781.mp4", "a monkey swinging through the jungle"),
    ("video5311.mp4", "a waterfall in a rain forest"),
]


def _video(name: str) -> Path:
    return require_bikes() if name == "bikes.mp4" else MSRVTT_DIR / name


def _verdicts(searcher: Searcher, queries: list[tuple[str, str]], expected: bool) -> tuple[float, list[str]]:
    """The share of ``queries`` whose verdict (``found``) is ``expected``, and the wrong ones."""
    if not searcher.calibration.calibrated:
        pytest.fail("lite ships a fitted calibration (calibration.json beside its weights); it is missing")
    right, wrong = 0, []
    for name, query in queries:
        response = searcher.search(_video(name), query, top_k=1)
        if response.found == expected:
            right += 1
        else:
            wrong.append(f"{name} {query!r}: found={response.found} ({response.results[0].confidence:.2f})")
    return right / len(queries), wrong


@pytest.mark.slow
def test_absent_queries_are_not_found(searcher: Searcher) -> None:
    """ "Nothing matches" is said when nothing does: at least 90 % of the absent queries are not found."""
    accuracy, wrong = _verdicts(searcher, ABSENT, expected=False)
    assert accuracy >= 0.9, f"accuracy {accuracy:.2f}; wrong: {'; '.join(wrong)}"


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    reason="issue 22's target is not met yet: with lite's calibration 10 of these 20 present queries are "
    "found (the absent ones: 20 of 20 right), 0.75 overall; the other 10 score 0.06-0.41, where absent "
    "queries reach too (up to 0.40): no threshold gets 0.9 (the best, 0.056, gives 0.875)",
)
def test_present_queries_are_found(searcher: Searcher) -> None:
    """At least 90 % of the present queries are found (together with the absent ones: issue 22's target)."""
    accuracy, wrong = _verdicts(searcher, PRESENT, expected=True)
    assert accuracy >= 0.9, f"accuracy {accuracy:.2f}; wrong: {'; '.join(wrong)}"
