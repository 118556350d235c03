"""Is a query English? A cheap check (script, function words, letters), no model, ~10 µs a query.

A model whose text side is English-only (``lite``) answers English queries with its own text tower and
every other query through its multilingual tower (``frameseek.models.multilingual``). The decision has
to be cheap (it runs on every query) and must not send English to the weaker path, so it leans English:

1. A letter outside Latin script (Cyrillic, Greek, Arabic, Hebrew, CJK, Thai, …) → not English.
2. Otherwise the words vote: English function words for English; function words of the other Latin-script
   languages (German, French, Spanish, Italian, Portuguese, Dutch, Czech, Polish, Swedish, Danish,
   Norwegian, Turkish, Romanian, …) and letters English does not use (ä, é, ñ, č, ß, …) against it.
   Words that are function words in English too ("a", "in", "is", "to") count for neither.
3. No vote either way (one or two content words: "dog", "Hund"): English when more than half of the
   words are words of English (``english_words``: the English text tower's own vocabulary, when the
   caller has it; "skateboarders" counts through "skateboard"), else not. Without a vocabulary the tie
   stays English.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection


def _words(*groups: str) -> frozenset[str]:
    return frozenset(word for group in groups for word in group.split())


ENGLISH = _words(
    "the a an and or of to in on at by for with from into onto over under up down out off is are was",
    "were be been being has have had do does did not no this that these those there here it its he she",
    "they them his her their we you i my your our who what which where when while as than then very some",
    "any each two three four one another other near next behind front through across along around",
)

FOREIGN = (
    _words(
        # German
        "der die das den dem des ein eine einer einem einen und ist sind mit auf im ins vom zum zur von für",
        "nicht sich auch vor über unter neben zwischen beim eines hinter zwei drei vier sie er es wird",
        # French
        "le la les un une des du et est sont avec dans sur au aux pour par sous devant derrière deux trois",
        "il elle ils elles qui que sa son ses leur près en",
        # Spanish, Portuguese, Italian, Catalan
        "el los las una unos unas y es con en del al por para sobre bajo entre dos tres hay está están lo",
        "o os um uma uns umas e é com em na nos nas do da dos das ao pelo pela dois duas",
        "gli uno è sono nel nella sul sulla della dello degli delle per tra fra due tre",
        # Dutch, Scandinavian
        "de het een zijn met op bij van voor naar twee drie niet",
        "ett och är med på av för till från två inte ikke og er af til fra",
        # Czech, Slovak, Polish
        "je jsou se na ve ze při před za pod nad dva dvě tři jest są się we przy przed dwa dwie trzy oraz",
        # Turkish, Romanian, Indonesian / Malay
        "bir ve ile bu iki üç için çok și cu pe în este sunt doi două trei",
        "dan yang di ke dari dengan untuk sebuah seorang dua tiga",
    )
    - ENGLISH
)

_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
_ENGLISH_LETTERS = frozenset("abcdefghijklmnopqrstuvwxyz")


def _script_is_latin(char: str) -> bool:
    return unicodedata.name(char, "").startswith("LATIN")


def is_english(text: str, english_words: Collection[str] | None = None) -> bool:
    """Whether ``text`` should take an English-only text tower (see the module docstring)."""
    words = [w.lower() for w in _WORD.findall(text)]
    if not words:
        return True  # digits, punctuation, nothing: no language to route by
    letters = [c for w in words for c in w]
    if any(not _script_is_latin(c) for c in letters):
        return False
    english = sum(w in ENGLISH for w in words)
    foreign = sum(w in FOREIGN for w in words)
    foreign += sum(any(c not in _ENGLISH_LETTERS for c in w) for w in words)  # é, ñ, ß, č …
    if english != foreign:
        return english > foreign
    if english_words is None:
        return True
    known = sum(_known(w, english_words) for w in words)
    return 2 * known > len(words)


def _known(word: str, vocabulary: Collection[str]) -> bool:
    """``word`` or its stem without an English ending ("skateboarders" → "skateboard") is in ``vocabulary``."""
    if word in vocabulary:
        return True
    for ending in ("ers", "er", "ing", "ed", "es", "s", "ly"):
        if word.endswith(ending) and len(word) - len(ending) >= 3 and word[: -len(ending)] in vocabulary:
            return True
    return False
