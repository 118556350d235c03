"""Score timed text (subtitles, speech, on-screen text) against a query: lexical + semantic, absolute [0, 1].

Lexical score of a span (``SpanMatcher.lexical_scores``), on text normalised by ``normalize`` (case, accents,
punctuation) and folded for OCR confusions (``0``→``o``, ``1``/``i``→``l``):

* **phrase**: the query's words appear in the span, contiguous and in order → ``1.0``;
* otherwise ``LEXICAL_CAP * max(word, char)`` where each channel is a BM25 score divided by the best score
  the query could get (so it is a weighted fraction of the query matched, ``0`` when nothing matches):

  ``channel = Σ_t w_t · min(1, tf·(k1+1) / (tf + k1·(1 - b + b·len/avglen))) / Σ_t w_t``

  over the query's distinct terms ``t``: words for ``word``, 3-grams of the text with spaces removed for
  ``char`` (so ``"final lap"`` matches ``"FINALLAP"`` and a slightly misread ``"WINTCR PRUNING"``). A term
  present once in a span of average length saturates at 1. ``w_t`` is ``STOPWORD_WEIGHT`` for an English
  stop word (``1`` otherwise) times a within-track IDF factor in [0.5, 1]: ``0.5 + 0.5·idf(n)/idf(1)``,
  ``idf(n) = ln(1 + (N - n + 0.5)/(n + 0.5))`` for a term in ``n`` of the track's ``N`` spans (``1`` when
  ``n`` is 0 or 1), so text repeated on every span (a channel logo) counts less but never makes a perfect
  match score below 1. ``char`` is shifted down by ``CHAR_NOISE`` (chance 3-gram overlap between unrelated
  texts) and rescaled to [0, 1].

Semantic score: ``clip(level, 0, 1)`` times ``SEMANTIC_WEIGHT``, where the semantic **level**
(``semantic_levels``) is ``(cos - SEMANTIC_FLOOR) / (SEMANTIC_CEILING - SEMANTIC_FLOOR)`` of the query's
and the span's embeddings (the caller's ``embed``: L2-normalised rows), not clipped: the calibration reads
it beside the lexical score (how far below the floor an unrelated span falls still says something).

Languages: a span's language is its own label (Whisper's, ``--speech-language``'s, the screen-text
detector's), else ``text.multilingual.detect_language`` of its text; the query's is detected the same way.
An English (or unlabelled) span against an English (or undetectable) query goes through ``embed`` as above
(all-MiniLM-L6-v2 beats the multilingual encoder on English: AUROC 0.954 vs 0.900, ``text.multilingual``);
any other pair through the multilingual encoder (``multilingual``), rescaled by ``MULTILINGUAL_FLOOR`` /
``MULTILINGUAL_CEILING`` so that the same score means the same confidence. Lexical matching works in every
language (Unicode-normalised words and 3-grams); a query's stop words are English's plus its own language's.

Fused score: ``max(lexical, semantic)``; an exact phrase (1.0) always ranks at or above any semantic-only or
partial match (≤ 0.9). Constants measured with all-MiniLM-L6-v2 (see ``SEMANTIC_FLOOR``).

One module because the two channels, their normalisation and the highlight share one tokenizer and one set
of measured constants.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from frameseek.errors import InputError
from frameseek.text.multilingual import detect_language, encode_multilingual, stop_words
from frameseek.text.spans import TextSpan

Embed = Callable[[list[str]], np.ndarray]
"""The project's text encoder: ``embed(texts)`` → ``(len(texts), d)`` float array, L2-normalised rows."""

K1 = 1.2
"""BM25 term-frequency saturation."""

B = 0.3
"""BM25 length normalisation; lower than the usual 0.75 so a long slide containing the query still scores
high (a term once in a span 2× the average length saturates at 0.86 instead of 0.71)."""

LEXICAL_CAP = 0.9
"""Best lexical score without an exact phrase match (all words present out of order, or only as 3-grams)."""

STOPWORD_WEIGHT = 0.2
"""Weight of an English stop word in the query (1 for other words), unless the query has only stop words."""

CHAR_NOISE = 0.35
"""Fraction of a query's 3-grams that unrelated texts share by chance: the char channel is 0 up to this.
Measured on 14 short captions × 17 queries: unrelated pairs share up to 0.32 of the query's 3-grams
("final lap" vs "small label here"); a one-letter misread of a two-word query keeps ~0.7."""

SEMANTIC_FLOOR = 0.3
"""all-MiniLM-L6-v2 cosine at or below which a span is unrelated: unrelated query/caption pairs measured
-0.06 to 0.30 (e.g. "discount" vs "LAP 3 OF 10" 0.30), related ones 0.5-0.8."""

SEMANTIC_CEILING = 0.8
"""Cosine at which the semantic score saturates ("the last lap of the race" vs "FINAL LAP" measured 0.79)."""

MULTILINGUAL_FLOOR = 0.2
"""The multilingual encoder's cosine at or below which a span is unrelated. With ``MULTILINGUAL_CEILING``
fitted by ``lab.calibration.fit_multilingual_range`` (MSR-VTT captions + Flickr8k DEV FIT half, under lite's
fitted text logistic over the fused score): on the held-out DEV EVAL half the text confidence (now over
the level and lexical channels) measures ECE 0.056 / AUROC 0.918 through this encoder, against ECE 0.045 /
AUROC 0.955 through all-MiniLM-L6-v2."""

MULTILINGUAL_CEILING = 0.84
"""The multilingual encoder's cosine at which the semantic score saturates (a translation: 0.81-0.89)."""

SEMANTIC_WEIGHT = 0.9
"""Semantic score at saturation: an exact phrase (1.0) still ranks first."""

NEAR_IDENTICAL = 0.8
"""``text_similarity`` at or above which two readings are the same text (OCR jitter between frames)."""


def semantic_level(cosine: np.ndarray, floor: float, ceiling: float) -> np.ndarray:
    """A cosine rescaled by an encoder's floor / ceiling (0 at the floor, 1 at the ceiling), unclipped."""
    return (np.asarray(cosine) - floor) / (ceiling - floor)


def fused_score(lexical: np.ndarray, level: np.ndarray) -> np.ndarray:
    """The ``SpanMatcher`` score of spans from their channels: ``max(lexical, SEMANTIC_WEIGHT · clip(level))``."""
    return np.maximum(lexical, SEMANTIC_WEIGHT * np.clip(level, 0.0, 1.0))


_FOLD = str.maketrans({"0": "o", "1": "l", "i": "l"})
"""Characters OCR confuses, folded to one (on both the query and the text)."""

STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "been",
        "but",
        "by",
        "for",
        "from",
        "had",
        "has",
        "have",
        "he",
        "her",
        "his",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "me",
        "my",
        "no",
        "nor",
        "not",
        "of",
        "on",
        "or",
        "our",
        "she",
        "so",
        "than",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "too",
        "us",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "you",
        "your",
    ]
)

_TOKEN = re.compile(r"\S+")


@dataclass(frozen=True)
class SpanMatch:
    """One span's match: its position in the matcher's spans, the fused score and its two components."""

    index: int
    span: TextSpan
    score: float
    lexical: float
    semantic: float


def _normalized_chars(text: str) -> tuple[str, list[int]]:
    """``text`` normalised (accents removed, case folded, non-alphanumerics → space), and for each output
    character the index of the input character it came from."""
    out: list[str] = []
    origin: list[int] = []
    for i, ch in enumerate(text):
        for c in unicodedata.normalize("NFKD", ch):
            if unicodedata.combining(c):
                continue
            for folded in c.casefold():
                out.append(folded if folded.isalnum() else " ")
                origin.append(i)
    return "".join(out), origin


def normalize(text: str) -> str:
    """Lower case, accents removed, punctuation as spaces, single spaces: ``"Été, FINAL-lap!"`` → ``"ete final lap"``."""
    return " ".join(_normalized_chars(text)[0].split())


def tokens(text: str) -> list[str]:
    """Normalised words of ``text``, folded for OCR confusions (``"F1NAL"`` → ``"flnal"``, as ``"final"``)."""
    return normalize(text).translate(_FOLD).split()


def _grams(compact: str, n: int = 3) -> list[str]:
    return [compact[i : i + n] for i in range(len(compact) - n + 1)]


def levenshtein(a: str, b: str) -> int:
    """Edit distance (insertions, deletions, substitutions) between two strings."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def text_similarity(a: str, b: str) -> float:
    """``1 - edit distance / longer length`` of the normalised, OCR-folded texts (1.0: same text)."""
    na, nb = " ".join(tokens(a)), " ".join(tokens(b))
    if not na and not nb:
        na, nb = a.strip(), b.strip()
    longest = max(len(na), len(nb))
    return 1.0 if longest == 0 else 1.0 - levenshtein(na, nb) / longest


def _idf(n: int, total: int) -> float:
    return math.log(1.0 + (total - n + 0.5) / (n + 0.5))


class _Channel:
    """BM25 statistics of one tokenisation (words or 3-grams) over a track's spans."""

    def __init__(self, docs: list[list[str]]) -> None:
        self.total = len(docs)
        self.lengths = np.array([len(d) for d in docs], dtype=np.float64)
        self.avg_length = float(self.lengths.mean()) if self.total and self.lengths.sum() > 0 else 1.0
        self.postings: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        gathered: dict[str, tuple[list[int], list[int]]] = {}
        for index, doc in enumerate(docs):
            for term, count in Counter(doc).items():
                where, counts = gathered.setdefault(term, ([], []))
                where.append(index)
                counts.append(count)
        for term, (where, counts) in gathered.items():
            self.postings[term] = (np.array(where, dtype=np.int64), np.array(counts, dtype=np.float64))
        self._norm = K1 * (1.0 - B + B * self.lengths / self.avg_length)

    def score(self, terms: dict[str, float]) -> np.ndarray:
        """Weighted fraction of ``terms`` (term → prior weight) each span holds, BM25-saturated, in [0, 1]."""
        result = np.zeros(self.total, dtype=np.float64)
        if not terms or not self.total:
            return result
        best_idf = _idf(1, self.total)
        weight_sum = 0.0
        for term, prior in terms.items():
            where, counts = self.postings.get(term, (None, None))
            n = 0 if where is None else len(where)
            discount = 1.0 if n <= 1 else 0.5 + 0.5 * _idf(n, self.total) / best_idf
            weight = prior * discount
            weight_sum += weight
            if where is not None and counts is not None:
                saturated = counts * (K1 + 1.0) / (counts + self._norm[where])
                result[where] += weight * np.minimum(saturated, 1.0)
        return result / weight_sum if weight_sum > 0 else result


def _query_terms(query: str) -> tuple[list[str], dict[str, float], dict[str, float]]:
    """Query words (folded), word-term weights, and 3-gram weights of its content words run together."""
    words = tokens(query)
    language = detect_language(query)
    stop = STOPWORDS if language in (None, "en") else STOPWORDS | {normalize(w) for w in stop_words(language)}
    content = [w for w in words if w not in stop] or words
    only_stop = not any(w not in stop for w in words)
    weights: dict[str, float] = {}
    for w in words:
        weights[w] = 1.0 if only_stop or w not in stop else STOPWORD_WEIGHT
    grams = dict.fromkeys(_grams("".join(content)), 1.0)
    return words, weights, grams


def _contains_phrase(doc: Sequence[str], phrase: Sequence[str]) -> bool:
    n = len(phrase)
    if n == 0 or n > len(doc):
        return False
    first = phrase[0]
    return any(doc[i] == first and list(doc[i : i + n]) == list(phrase) for i in range(len(doc) - n + 1))


def _english(language: str | None) -> bool:
    return language is None or language == "en"


class SpanMatcher:
    """Scores one track's spans against queries; build once per track (precomputes statistics, embeddings).

    ``embed`` (the project's text encoder) enables the semantic score; ``embeddings`` passes the spans'
    embeddings already computed (e.g. stored in an index) instead of embedding them here. ``multilingual``
    (default: the packaged multilingual encoder, loaded only when a pair is not English-English; None: off)
    scores the spans or queries in other languages.
    """

    def __init__(
        self,
        spans: Sequence[TextSpan],
        embed: Embed | None = None,
        *,
        embeddings: np.ndarray | None = None,
        semantic_floor: float = SEMANTIC_FLOOR,
        semantic_ceiling: float = SEMANTIC_CEILING,
        multilingual: Embed | None = encode_multilingual,
    ) -> None:
        if not semantic_floor < semantic_ceiling:
            raise InputError(
                f"semantic_floor ({semantic_floor}) must be below semantic_ceiling ({semantic_ceiling})"
            )
        self.spans: tuple[TextSpan, ...] = tuple(spans)
        self.embed = embed
        self.semantic_floor = semantic_floor
        self.semantic_ceiling = semantic_ceiling
        self.multilingual = multilingual
        self.languages: tuple[str | None, ...] = tuple(
            s.language or detect_language(s.text) for s in self.spans
        )
        """Each span's language: its label, else detected from its text (None: cannot tell)."""
        self._english = np.array([_english(lang) for lang in self.languages], dtype=bool)
        self._multilingual: np.ndarray | None = None
        self._words = [tokens(s.text) for s in self.spans]
        self._word_channel = _Channel(self._words)
        self._char_channel = _Channel([_grams("".join(w)) for w in self._words])
        self._embeddings: np.ndarray | None = None
        if embeddings is not None:
            array = np.asarray(embeddings, dtype=np.float32)
            if array.ndim != 2 or array.shape[0] != len(self.spans):
                raise InputError(
                    f"embeddings must have one row per span ({len(self.spans)}), got shape {array.shape}"
                )
            self._embeddings = array
        elif embed is not None and self.spans:
            self._embeddings = self._embed([s.text for s in self.spans])

    @property
    def embeddings(self) -> np.ndarray | None:
        """The spans' embeddings (one row per span), to store alongside the spans; None without ``embed``."""
        return self._embeddings

    def _embed(self, texts: list[str]) -> np.ndarray:
        assert self.embed is not None
        return self._embed_with(self.embed, texts)

    def lexical_scores(self, query: str) -> np.ndarray:
        """Lexical score per span in [0, 1] (see the module docstring); 0 where nothing of the query matches."""
        words, weights, grams = _query_terms(_checked(query))
        word = self._word_channel.score(weights)
        char = self._char_channel.score(grams)
        char = np.clip((char - CHAR_NOISE) / (1.0 - CHAR_NOISE), 0.0, 1.0)
        lexical = LEXICAL_CAP * np.maximum(word, char)
        for index, doc in enumerate(self._words):
            if lexical[index] > 0 and _contains_phrase(doc, words):
                lexical[index] = 1.0
        return lexical

    def semantic_scores(self, query: str, *, query_embedding: np.ndarray | None = None) -> np.ndarray:
        """Rescaled cosine per span in [0, ``SEMANTIC_WEIGHT``]: ``embed``'s for English pairs, the multilingual
        encoder's for the others (see the module docstring); zeros where neither is available."""
        return SEMANTIC_WEIGHT * np.clip(
            self.semantic_levels(query, query_embedding=query_embedding), 0.0, 1.0
        )

    @property
    def has_semantics(self) -> bool:
        """Whether spans have a semantic channel (an ``embed``, or embeddings given)."""
        return self._embeddings is not None or self.embed is not None

    def semantic_levels(self, query: str, *, query_embedding: np.ndarray | None = None) -> np.ndarray:
        """The semantic level per span: its cosine rescaled by the floor / ceiling of the encoder that gave
        it (0 at the floor, 1 at the ceiling), unclipped; zeros where no encoder is available."""
        _checked(query)
        if self.multilingual is None or not self.spans:
            return self._own_levels(query, query_embedding)
        english = self._english if _english(detect_language(query)) else np.zeros(len(self.spans), bool)
        if english.all():
            return self._own_levels(query, query_embedding)
        result = np.zeros(len(self.spans), dtype=np.float64)
        if english.any():
            result[english] = self._own_levels(query, query_embedding)[english]
        other = ~english
        cosine = self._multilingual_embeddings()[other] @ self._embed_with(self.multilingual, [query])[0]
        result[other] = semantic_level(cosine, MULTILINGUAL_FLOOR, MULTILINGUAL_CEILING)
        return result

    def _multilingual_embeddings(self) -> np.ndarray:
        if self._multilingual is None:
            assert self.multilingual is not None
            self._multilingual = self._embed_with(self.multilingual, [s.text for s in self.spans])
        return self._multilingual

    def _embed_with(self, embed: Embed, texts: list[str]) -> np.ndarray:
        array = np.asarray(embed(texts), dtype=np.float32)
        if array.ndim != 2 or array.shape[0] != len(texts):
            raise InputError(f"embed returned shape {array.shape} for {len(texts)} texts")
        return array

    def _own_levels(self, query: str, query_embedding: np.ndarray | None) -> np.ndarray:
        """``embed``'s semantic level per span (every span), zeros without it."""
        if self._embeddings is None or not self.spans:
            return np.zeros(len(self.spans), dtype=np.float64)
        if query_embedding is None:
            if self.embed is None:
                return np.zeros(len(self.spans), dtype=np.float64)
            query_embedding = self._embed([query])[0]
        vector = np.asarray(query_embedding, dtype=np.float32).reshape(-1)
        if vector.shape[0] != self._embeddings.shape[1]:
            raise InputError(
                f"query embedding has {vector.shape[0]} dimensions, span embeddings {self._embeddings.shape[1]}"
            )
        cosine = (self._embeddings @ vector).astype(np.float64)
        return semantic_level(cosine, self.semantic_floor, self.semantic_ceiling)

    def scores(self, query: str, *, query_embedding: np.ndarray | None = None) -> np.ndarray:
        """Fused score per span in [0, 1]: ``max(lexical, semantic)``."""
        return fused_score(
            self.lexical_scores(query), self.semantic_levels(query, query_embedding=query_embedding)
        )

    def best(
        self, query: str, k: int = 5, *, query_embedding: np.ndarray | None = None, min_score: float = 1e-9
    ) -> list[SpanMatch]:
        """The ``k`` best spans with a score ≥ ``min_score``, best first (ties: earlier span first)."""
        if k < 1:
            raise InputError(f"k must be at least 1, got {k}")
        lexical = self.lexical_scores(query)
        semantic = self.semantic_scores(query, query_embedding=query_embedding)
        fused = np.maximum(lexical, semantic)
        order = sorted(range(len(self.spans)), key=lambda i: (-fused[i], i))
        return [
            SpanMatch(i, self.spans[i], float(fused[i]), float(lexical[i]), float(semantic[i]))
            for i in order[:k]
            if fused[i] >= min_score
        ]


def _checked(query: str) -> str:
    if not query or not query.strip():
        raise InputError("the query is empty")
    return query


def highlight(text: str, query: str) -> list[tuple[int, int]]:
    """Sorted, non-overlapping ``(start, end)`` character ranges of ``text`` that match ``query``.

    A text word matches a query word when equal after normalisation and OCR folding, or, for words of 4+
    letters, at ``text_similarity`` ≥ ``NEAR_IDENTICAL``; query words (4+ letters) or the whole query found
    inside run-together text (``"FINALLAP"``) are marked too. Ranges separated only by spaces or
    punctuation are joined, so a phrase is one range.
    """
    normalized, origin = _normalized_chars(text)
    folded = normalized.translate(_FOLD)
    words = tokens(query)
    if not words:
        return []
    content = [w for w in words if w not in STOPWORDS] or words
    ranges: list[tuple[int, int]] = []
    doc = [(m.group(), m.start(), m.end()) for m in _TOKEN.finditer(folded)]
    doc_words = [d[0] for d in doc]
    n = len(words)
    for i in range(len(doc) - n + 1):  # whole phrase, stop words included
        if doc_words[i : i + n] == words:
            ranges.append((origin[doc[i][1]], origin[doc[i + n - 1][2] - 1] + 1))
    for word, start, end in doc:
        if any(word == q or (len(q) >= 4 and len(word) >= 4 and _similar(word, q)) for q in content):
            ranges.append((origin[start], origin[end - 1] + 1))
    compact_chars = [(c, origin[i]) for i, c in enumerate(folded) if c != " "]
    compact = "".join(c for c, _ in compact_chars)
    for needle in {"".join(content), *(q for q in content if len(q) >= 4)}:
        if len(needle) < 4:
            continue
        at = compact.find(needle)
        while at >= 0:
            ranges.append((compact_chars[at][1], compact_chars[at + len(needle) - 1][1] + 1))
            at = compact.find(needle, at + 1)
    return _merge(ranges, text)


def _similar(a: str, b: str) -> bool:
    return 1.0 - levenshtein(a, b) / max(len(a), len(b)) >= NEAR_IDENTICAL


def _merge(ranges: list[tuple[int, int]], text: str) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if merged and (start <= merged[-1][1] or not any(c.isalnum() for c in text[merged[-1][1] : start])):
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged
