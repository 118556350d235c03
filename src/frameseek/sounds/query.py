"""Which sound classes a query asks for, and how much of the query they answer.

A word list, not a model, on purpose: the detector has three classes, the words that name them are few
and stable ("music", "song", "singing", "talking" …), and a list is exact, instant and testable; the
sentence encoders at hand place "a song" near any sentence about a party or a stage, which would turn
every visual query about a concert into a sound query. English only (the detector's classes are not).

``coverage``: the share of the query's content words that a class (or a neutral word such as "someone",
"starts", "background") accounts for. "when the music starts" is all sound (1.0); "a man playing guitar
on the beach" is half (the beach is for the picture), so a music event alone scores half its
probability there, and noisy-OR fusion with the picture's vote does the rest.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from frameseek.sounds.events import SOUND_CLASSES


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


CLASS_WORDS: dict[str, frozenset[str]] = {
    "music": _words(
        "music musical musician musicians melody melodies tune tunes soundtrack instrumental instrument "
        "instruments piano guitar guitars violin cello drum drums drumming band orchestra concert song "
        "songs jingle beat beats dj accordion saxophone trumpet flute harp bass"
    ),
    "singing": _words(
        "sing sings sang sung singing singer singers song songs vocal vocals vocalist choir chorus chant "
        "chanting lyrics karaoke hum hums humming duet opera aria serenade"
    ),
    "speech": _words(
        "talk talks talking talked speak speaks speaking spoke speech speaker voice voices conversation "
        "chat chatting narration narrator narrating dialogue interview lecture"
    ),
}
"""The words that name each class ("song" names both music and singing: a song is usually both)."""

NEUTRAL = _words(
    "a an the this that these those of in on at to with and or is are was were be been there some any "
    "when where while whenever moment moments part time first last someone somebody person people man "
    "woman men women boy girl kid kids child children guy they he she we you it its his her their "
    "start starts started starting begin begins began beginning stop stops stopped stopping end ends "
    "ended ending fade fades finish finishes play plays playing played loud loudly quiet softly soft "
    "background live hear heard hearing sound sounds audio listen listening something song's"
)
"""Words that neither name a class nor ask anything of another track."""

NEGATIONS = _words("no not without silence silent quiet nobody nothing never")
"""A query about the absence of sound: events of a class cannot answer it, so none are matched."""

ENDING = _words("stop stops stopped stopping end ends ended ending fade fades finish finishes")
"""Words that put the moment at the end of an event ("when the music stops") instead of its start."""

_WORD_RE = re.compile(r"[a-z][a-z']*")


@dataclass(frozen=True)
class SoundRequest:
    """What a query asks of the sound track: ``classes`` by name with their coverage in (0, 1], and
    ``at_end`` (the moment is where the sound ends)."""

    classes: dict[str, float]
    at_end: bool = False


def sound_request(text: str | None) -> SoundRequest:
    """The sound classes ``text`` names and how much of it they cover (no classes: not a sound query).

    ``speech`` is matched only when the whole query is about hearing someone speak ("someone talking"):
    "talking about bread" asks what is said, which the speech track's words answer."""
    if not text:
        return SoundRequest({})
    words = _WORD_RE.findall(text.lower())
    if not words or NEGATIONS.intersection(words):
        return SoundRequest({})
    named = {kind: sum(w in CLASS_WORDS[kind] for w in words) for kind in SOUND_CLASSES}
    if not any(named.values()):
        return SoundRequest({})
    sound_words = sum(any(w in CLASS_WORDS[k] for k in SOUND_CLASSES) for w in words)
    other = sum(w not in NEUTRAL and not any(w in CLASS_WORDS[k] for k in SOUND_CLASSES) for w in words)
    coverage = sound_words / (sound_words + other)
    classes = {kind: round(coverage, 4) for kind, n in named.items() if n}
    if "speech" in classes and coverage < 1.0:
        del classes["speech"]
    return SoundRequest(classes, at_end=bool(ENDING.intersection(words)))
