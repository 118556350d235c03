"""How the page words and groups an answer: the verdict, confidence levels, one row per video, the speech
hint, the Link box's rule, errors in a person's words, and the progress line. Plain Python, no Streamlit.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from frameseek.api import (
    FOUND_AT,
    FrameseekError,
    InputError,
    SearchResponse,
    SearchResult,
    confidence_level,
    detect_language,
    format_timecode,
)

HIGH_AT = 0.8
"""A moment is *high* from this confidence, *medium* from ``FOUND_AT`` (0.5), else *low* — the same levels
as the command line (``frameseek.api.confidence_level``)."""

Level = Literal["high", "medium", "low"]
LEVEL_COLORS: dict[str, Literal["green", "orange", "gray"]] = {
    "high": "green",
    "medium": "orange",
    "low": "gray",
}
LEVEL_HELP = {
    "high": f"High: confidence ≥ {HIGH_AT:.0%} that this moment matches",
    "medium": f"Medium: confidence {FOUND_AT:.0%}–{HIGH_AT:.0%}",
    "low": f"Low: below {FOUND_AT:.0%} — the closest moment, probably not a match",
}


def level(hit: SearchResult) -> str:
    """``high`` / ``medium`` / ``low`` for a moment's confidence."""
    return confidence_level(hit.confidence)


def level_label(hit: SearchResult) -> str:
    """What a card says of its confidence: ``High · 86%``."""
    return f"{level(hit).capitalize()} · {hit.confidence:.0%}"


@dataclass(frozen=True)
class Verdict:
    """The one line above the results."""

    found: bool
    text: str


def verdict(response: SearchResponse, seconds: float | None = None) -> Verdict:
    """Found (how many moments match well, where) or nothing matches well (the closest moments are still
    shown, marked low); ``seconds``: how long the user waited, model loading included."""
    query = f"“{response.query}”" if response.query else "the image"
    good = [r for r in response.results if r.confidence >= FOUND_AT]
    videos = {r.video for r in response.results}
    took = f" · {seconds:.1f} s" if seconds is not None else ""
    if response.count is not None and response.found:
        one = response.count == 1
        return Verdict(True, f"Found: {response.count} moment{'' if one else 's'} match{'es' if one else ''} "
                             f"{query}{took}")  # fmt: skip
    if not response.results:
        return Verdict(False, f"Nothing to show for {query}: no frames were searched{took}")
    if not response.found or not good:
        best = max(r.confidence for r in response.results)
        return Verdict(
            False,
            f"Nothing matches {query} well — the closest moments are shown (best confidence {best:.0%}){took}",
        )
    where = f" in {len({r.video for r in good})} of {len(videos)} videos" if len(videos) > 1 else ""
    one = len(good) == 1
    return Verdict(True, f"Found {query}: {len(good)} moment{'' if one else 's'} match well{where}{took}")


def shortfall(response: SearchResponse, asked: int) -> str | None:
    """Why fewer moments than asked for came back (the video has fewer distinct moments), else None."""
    got = len(response.results)
    if response.count is not None or got >= asked or not response.results:
        return None
    return f"{got} of the {asked} moments asked for: there are no more distinct moments (at least the minimum gap apart)"


@dataclass(frozen=True)
class VideoRow:
    """One video of a folder or library search: its moments, most confident first."""

    video: str
    title: str
    hits: list[tuple[int, SearchResult]]

    @property
    def best(self) -> float:
        return max((h.confidence for _, h in self.hits), default=0.0)


def video_rows(response: SearchResponse) -> list[VideoRow]:
    """The results grouped by video (rank kept), the video with the most confident moment first."""
    rows: dict[str, VideoRow] = {}
    for rank, hit in enumerate(response.results, 1):
        row = rows.setdefault(hit.video, VideoRow(hit.video, hit.title, []))
        row.hits.append((rank, hit))
    return sorted(rows.values(), key=lambda r: -r.best)


def timeline_points(
    response: SearchResponse, video: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The clickable timeline of one video: every sampled frame (its similarity, relative to this video's
    range, only to show the shape) and the moments (bars from start to end, height = confidence, a fixed
    0–1 scale so a weak query looks weak)."""
    frames: list[dict[str, Any]] = []
    for line in response.timelines:
        if line.video != video or len(line.scores) == 0:
            continue
        low, high = float(min(line.scores)), float(max(line.scores))
        span = high - low or 1.0
        frames += [
            {"time": float(t), "shape": (float(s) - low) / span, "at": hms(float(t))}
            for t, s in zip(line.times, line.scores, strict=True)
        ]
    moments = [
        {
            "time": hit.time,
            "start": hit.start,
            "end": max(hit.end, hit.start + 0.25),
            "confidence": hit.confidence,
            "level": level(hit),
            "rank": f"#{rank}",
            "at": hms(hit.time),
        }
        for rank, hit in enumerate(response.results, 1)
        if hit.video == video
    ]
    if not frames:  # a library search keeps no timelines: the moments themselves are the click targets
        frames = [{"time": m["time"], "shape": 0.0, "at": m["at"]} for m in moments]
    return frames, moments


def hms(seconds: float) -> str:
    if not math.isfinite(seconds) or seconds < 0:
        seconds = 0.0
    return format_timecode(math.floor(seconds))[:8]


# ---------------------------------------------------------------------------------------- tracks

SPEECH_WORDS = re.compile(
    r"\b(says?|said|saying|speaks?|spoke|speaking|talks?|talking|mentions?|mentioned|words?|quotes?|"
    r"asks?|asked|shouts?|announces?|tells?|calls? out|narrat\w*|voice|sings?|lyrics?|dialogue)\b",
    re.IGNORECASE,
)


def looks_like_speech(query: str) -> bool:
    """A query that names words said: quoted text, or a verb of saying ("someone says thank you")."""
    text = query.strip()
    return bool(text) and (bool(re.search(r"[\"“”„«»]", text)) or bool(SPEECH_WORDS.search(text)))


def speech_hint(query: str, speech_on: bool, response: SearchResponse | None = None) -> str | None:
    """A nudge to turn Speech on: the query names words said, or a short query found nothing in the picture
    ("budget"). None when speech is on or nothing suggests it."""
    if speech_on or not query.strip():
        return None
    if looks_like_speech(query):
        return "This looks like words someone says: turn on **Speech** to search what is said."
    if response is not None and not response.found and len(query.split()) <= 3:
        return "Nothing in the picture matches. If these are words said in the video, turn on **Speech**."
    return None


# ---------------------------------------------------------------------------------------- links and errors

LINK = re.compile(r"^https?://[^\s/]+", re.IGNORECASE)


def check_link(text: str) -> str:
    """The Link box takes only ``http(s)://`` links: anything else (a path, ``file://``, a word) is refused
    here, so a page served beyond localhost can never open a file on the server through it."""
    link = text.strip()
    if not link:
        raise InputError("no video chosen; paste a YouTube or web link")
    if not LINK.match(link):
        shown = link if len(link) <= 60 else link[:57] + "…"
        raise InputError(
            f"“{shown}” is not a web link; the Link box takes links that start with https:// or http://"
        )
    return link


_REFUSED = re.compile(r"HTTPS?Connection\(host='([^']+)', port=(\d+)\)", re.IGNORECASE)
_PLAIN_CAUSES = (
    (re.compile(r"Errno 111|Connection refused", re.I), "the server refused the connection"),
    (
        re.compile(r"Name or service not known|getaddrinfo|nodename nor servname|Errno -[23]", re.I),
        "no such web address",
    ),
    (re.compile(r"timed? ?out", re.I), "the server did not answer in time"),
    (re.compile(r"HTTP Error 404|404: Not Found", re.I), "the page was not found (404)"),
    (re.compile(r"HTTP Error 403|403: Forbidden", re.I), "the server refused access (403)"),
    (re.compile(r"Unsupported URL", re.I), "no video was found at this link"),
)


def friendly_error(exc: BaseException, *, given: str = "", stored: str = "") -> str:
    """One line a person understands: the file named as they gave it (never where the server stored it),
    a link's failure in words ("the server refused the connection") instead of Python's reprs."""
    message = " ".join(str(exc).split()) if isinstance(exc, FrameseekError) else ""
    if not isinstance(exc, FrameseekError):
        name = type(exc).__name__
        detail = " ".join(str(exc).split())
        return f"something went wrong ({name}{': ' + detail[:160] if detail else ''}); see the server's log"
    if stored and given:
        message = message.replace(stored, given)
        message = message.replace(Path(stored).name, given)
    if message.startswith("could not download "):
        link = message.removeprefix("could not download ").split(": ", 1)[0]
        where = _REFUSED.search(message)
        for pattern, words in _PLAIN_CAUSES:
            if pattern.search(message):
                host = f" ({where.group(1)}:{where.group(2)})" if where else ""
                return f"could not download {link}: {words}{host}"
        return message if len(message) <= 240 else message[:239] + "…"
    return message


# ---------------------------------------------------------------------------------------- progress


def progress_line(
    label: str, done: float, total: float | None, elapsed: float, stage_elapsed: float, stage: str,
    videos: tuple[int, int] = (0, 0),
) -> tuple[float | None, str]:  # fmt: skip
    """(fraction or None, text) for the progress bar: the stage, its count (video time, audio time, MB),
    the share done, its ETA, how many videos, and the whole wait so far."""
    fraction = min(1.0, max(0.0, done / total)) if total and total > 0 else None
    parts = [label]
    if stage == "download":
        parts.append(f"{done / 1e6:.1f} MB" + (f" of {total / 1e6:.1f} MB" if total else ""))
    elif stage in ("index", "encode", "speech", "screen") and (done or total):
        medium = "audio" if stage == "speech" else "video"
        parts.append(f"{hms(done)}" + (f" of {hms(total)}" if total else "") + f" of {medium}")
    if videos[1] > 1:
        parts.append(f"video {min(videos[0] + 1, videos[1])} of {videos[1]}")
    if fraction is not None:
        parts.append(f"{fraction:.0%}")
        if 0 < fraction < 1 and stage_elapsed > 0.3:
            parts.append(f"ETA {short_duration(stage_elapsed * (1 - fraction) / fraction)}")
    parts.append(f"{elapsed:.1f} s so far")
    return fraction, " · ".join(parts)


def short_duration(seconds: float) -> str:
    s = max(0, round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


SOUND_NAMES = {"music": "Music", "singing": "Singing", "speech": "Speech heard"}
"""What a sound badge says for each class the sounds track hears (``SOUND_CLASSES``)."""


def sound_badge(hit: SearchResult) -> str | None:
    """A moment matched by what is heard (``match`` has ``sounds``, ``text`` like ``[music]``): its badge,
    ``♪ Music``; None for any other moment."""
    if "sounds" not in (part.strip() for part in hit.match.split("+")):
        return None
    heard = re.findall(r"\[([a-z ]+)\]", (hit.text or "").lower())
    names = [SOUND_NAMES.get(h.strip(), h.strip().capitalize()) for h in heard] or ["Sound"]
    return "♪ " + " + ".join(dict.fromkeys(names))


def shown_text(hit: SearchResult) -> str | None:
    """The words a card shows: what was said or written; a sound's ``[music]`` is its badge instead."""
    if hit.text and sound_badge(hit) is not None and re.fullmatch(r"(\s*\[[a-z ]+\]\s*)+", hit.text):
        return None
    return hit.text or None


def query_language(query: str | None) -> str:
    """The query's language (ISO 639-1); English when it cannot tell (short or mixed queries)."""
    return (detect_language(query) if query else None) or "en"


def language_tag(hit: SearchResult, query: str | None) -> str | None:
    """``ES`` when the words that matched are in another language than the query's (a span in Spanish
    found by an English sentence); None when they are in the query's language or unknown."""
    if not hit.language or not hit.text or hit.language.lower() == query_language(query):
        return None
    return hit.language.upper()


@dataclass(frozen=True)
class PersonCard:
    """One face of the people gallery."""

    id: str
    label: str
    """The person's name, else their id (``p3``)."""
    thumbnail: str | None
    screen_time: str
    """``1 min 5 s on screen · 3 appearances``."""
    seconds: float


def people_cards(rows: list[dict[str, Any]]) -> list[PersonCard]:
    """``list_people`` rows as gallery cards, most screen time first (rows for the same person, from
    several videos, are added up)."""
    merged: dict[str, dict[str, Any]] = {}
    for row in rows:
        seen = merged.setdefault(str(row["id"]), {**row, "screen_time": 0.0, "appearances": 0, "videos": []})
        seen["screen_time"] += float(row.get("screen_time") or 0.0)
        seen["appearances"] += int(row.get("appearances") or 0)
        seen["videos"] += list(row.get("videos") or [])
    cards = []
    for person_id, row in merged.items():
        count = int(row["appearances"])
        time_text = f"{short_duration(float(row['screen_time']))} on screen"
        cards.append(
            PersonCard(
                id=person_id,
                label=str(row.get("name") or person_id),
                thumbnail=row.get("thumbnail"),
                screen_time=f"{time_text} · {count} appearance{'s' if count != 1 else ''}",
                seconds=float(row["screen_time"]),
            )
        )
    return sorted(cards, key=lambda c: (-c.seconds, c.id))


def person_videos(rows: list[dict[str, Any]], person_id: str) -> list[str]:
    """The videos (paths) where ``person_id`` appears, in the gallery's rows."""
    found: list[str] = []
    for row in rows:
        if str(row["id"]) == person_id:
            found += [str(v["video"]) for v in row.get("videos") or [] if v.get("video")]
    return list(dict.fromkeys(found))
