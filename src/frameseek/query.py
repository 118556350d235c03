"""A search query — a sentence, an image, or both — as one value that validates itself once."""

from __future__ import annotations

import base64
import binascii
import io
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from frameseek.errors import InputError
from frameseek.models.preprocess import ImageLike

EMPTY_QUERY = "the query is empty; type a sentence such as 'a cyclist wearing a helmet'"
NO_QUERY = "give a text query, an image query, or both"


_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_text(text: str) -> str:
    """White space folded to single spaces, ends stripped; a lone surrogate (an undecodable byte of a
    command-line argument, ``$'\xff'``) becomes U+FFFD, as no tokenizer takes one."""
    return " ".join(_SURROGATE.sub("\ufffd", text).split())


def check_text(text: str | None) -> None:
    """Fail on a text that is given but empty or white space only (before any model is loaded)."""
    if text is not None and not clean_text(text):
        raise InputError(EMPTY_QUERY)


@dataclass(frozen=True, eq=False)
class Query:
    """What to look for: ``text`` (cleaned, length-limited), ``image``, and the text's share of both.

    Build it with ``Query.of``; ``notices`` says what was changed (a truncated sentence).
    """

    text: str | None = None
    image: ImageLike | None = None
    text_weight: float = 0.5
    notices: tuple[str, ...] = field(default=())

    @classmethod
    def of(
        cls,
        text: str | None = None,
        image: ImageLike | None = None,
        *,
        text_weight: float = 0.5,
        max_chars: int = 500,
        image_only_if_blank: bool = False,
    ) -> Query:
        """A validated query. ``image_only_if_blank``: a blank text beside an image means "image only"."""
        if text is not None and not clean_text(text) and image is not None and image_only_if_blank:
            text = None
        if text is None and image is None:
            raise InputError(NO_QUERY)
        if not (math.isfinite(text_weight) and 0.0 <= text_weight <= 1.0):
            raise InputError(f"--text-weight must be between 0 and 1, got {text_weight}")
        notices: list[str] = []
        if text is not None:
            cleaned = clean_text(text)
            if not cleaned:
                raise InputError(EMPTY_QUERY)
            if len(cleaned) > max_chars:
                cleaned = cleaned[:max_chars]
                notices.append(f"query truncated to its first {max_chars} characters")
            text = cleaned
        return cls(text=text, image=image, text_weight=text_weight, notices=tuple(notices))

    @property
    def label(self) -> str:
        """How results name the query: its text, or ``(image query)``."""
        return self.text if self.text is not None else "(image query)"


def load_query_image(
    image: bytes | str | Path, max_pixels: int | None = None, *, name: str | None = None
) -> Image.Image:
    """A query image as RGB: the one loader every door uses.

    ``image``: a file path, the raw bytes of an upload, or base64 text (``str``; standard or URL-safe
    alphabet, or a ``data:`` URL as a browser makes it). Transparent pixels (clip art, icons) are put on
    white, not on whatever colour they happen to hold. An image of more than ``max_pixels`` pixels is
    refused before it is decoded. Anything unreadable is one ``InputError`` that names the image as the
    user gave it (``name``, else the path, else "the query image").
    """
    label = name or (str(image) if isinstance(image, Path) else "the query image")
    if isinstance(image, str):
        image = _base64_bytes(image)
    try:
        with Image.open(image if isinstance(image, Path) else io.BytesIO(image)) as opened:
            if max_pixels is not None and opened.width * opened.height > max_pixels:
                raise InputError(
                    f"{label} is too large ({opened.width}×{opened.height}; the limit is {max_pixels} pixels)"
                )
            if opened.mode in ("RGBA", "LA", "PA") or (opened.mode == "P" and "transparency" in opened.info):
                rgba = opened.convert("RGBA")
                canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                return Image.alpha_composite(canvas, rgba).convert("RGB")
            return opened.convert("RGB")
    except FileNotFoundError:
        raise InputError(f"{label}: no such file") from None
    except (OSError, ValueError, Image.DecompressionBombError, SyntaxError):
        raise InputError(f"cannot read {label}: not a readable image (JPEG, PNG, WebP, ...)") from None


def _base64_bytes(text: str) -> bytes:
    """The bytes of base64 text (standard or URL-safe alphabet, padding optional, ``data:`` URLs too)."""
    text = "".join(text.split())
    if text.startswith("data:") and "," in text:
        text = text.split(",", 1)[1]
    try:
        return base64.b64decode(text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise InputError("the query image is not valid base64") from None


MAX_STEPS = 5
"""Steps of one sequence at most (A, then B, then C, ...): each is a query of its own."""

MAX_SECONDS = 86_400.0
"""The largest ``within`` / ``min_duration`` accepted (a day): beyond it a number is a typo."""


def _seconds(name: str, value: float | None) -> float | None:
    """``value`` as a positive, finite number of seconds, or one InputError naming the option."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(f"{name} must be a number of seconds, got {value!r}")
    if not (math.isfinite(value) and 0.0 < value <= MAX_SECONDS):
        raise InputError(
            f"{name} must be a number of seconds above 0 and at most {MAX_SECONDS:g}, got {value}"
        )
    return float(value)


def _step_text(text: object, name: str, max_chars: int) -> str:
    """One step's text, cleaned and length-limited; an empty or non-text step is one InputError."""
    if not isinstance(text, str):
        raise InputError(f"{name} must be a sentence, got {text!r}")
    cleaned = clean_text(text)
    if not cleaned:
        raise InputError(f"{name} is empty; type a sentence such as 'a man opens a door'")
    return cleaned[:max_chars]


@dataclass(frozen=True)
class MomentQuery:
    """A query about order, duration, count or co-occurrence, as one value that validates itself once.

    - ``steps``: ``("A",)`` or ``("A", "B", ...)`` — A, then B, ... (``--then``, at most ``MAX_STEPS``);
      ``within``: at most this many seconds between one step's end and the next step's start;
    - ``while_``: A while B (``--while``): where a moment of A and a moment of B overlap in time;
    - ``min_duration``: only results that last at least this many seconds (a step's segment, a sequence's
      whole span, a ``--while`` overlap: always the result as shown);
    - ``count``: every distinct matching moment, and how many; ``first`` / ``last``: the earliest / latest.

    Refused, each with one line: no step or an empty one; more than ``MAX_STEPS`` steps; ``within`` without
    a second step; ``--while`` together with ``--then`` (an overlap of a sequence is not defined here);
    ``first`` with ``last``; ``count`` with ``first`` or ``last`` (one moment is not a count); a
    ``within`` / ``min_duration`` that is not a positive finite number of seconds (at most a day).
    ``count`` with ``--then`` counts the distinct sequences. Build it with ``MomentQuery.of``.
    """

    steps: tuple[str, ...]
    within: float | None = None
    min_duration: float | None = None
    count: bool = False
    first: bool = False
    last: bool = False
    while_: str | None = None
    notices: tuple[str, ...] = field(default=())

    @classmethod
    def of(
        cls,
        text: str | Sequence[str],
        *,
        then: Sequence[str] = (),
        within: float | None = None,
        min_duration: float | None = None,
        count: bool = False,
        first: bool = False,
        last: bool = False,
        while_: str | None = None,
        max_chars: int = 500,
    ) -> MomentQuery:
        """A validated moment query: ``text`` is step A (or all steps), ``then`` the steps after it."""
        if isinstance(then, str):
            then = (then,)
        given = [text] if isinstance(text, str) else list(text)
        given += list(then)
        if not given:
            raise InputError(NO_QUERY)
        if len(given) > MAX_STEPS:
            raise InputError(
                f"a sequence has at most {MAX_STEPS} steps (the query and --then), got {len(given)}"
            )
        names = ["the query"] + [f"--then step {i}" for i in range(1, len(given))]
        steps = tuple(_step_text(t, n, max_chars) for t, n in zip(given, names, strict=True))
        notices = tuple(
            f"{n} truncated to its first {max_chars} characters"
            for t, n in zip(given, names, strict=True)
            if len(clean_text(t)) > max_chars
        )
        within_s = _seconds("--within", within)
        if within_s is not None and len(steps) < 2:
            raise InputError("--within needs a next step: add --then 'what happens next'")
        during = None
        if while_ is not None:
            during = _step_text(while_, "--while", max_chars)
            if len(steps) > 1:
                raise InputError("--while goes with one query, not with --then")
        if first and last:
            raise InputError("--first and --last ask for different moments: give one of them")
        if count and (first or last):
            raise InputError("--count lists every matching moment; leave out --first / --last")
        return cls(
            steps=steps,
            within=within_s,
            min_duration=_seconds("--min-duration", min_duration),
            count=bool(count),
            first=bool(first),
            last=bool(last),
            while_=during,
            notices=notices,
        )

    @classmethod
    def plain(cls, query: Query) -> MomentQuery:
        """The moment query that is just ``query``'s text (no order, duration, count or overlap)."""
        if query.text is None:
            raise InputError("an order, duration or count query needs text; an image query has none")
        return cls(steps=(query.text,), notices=query.notices)

    @property
    def is_plain(self) -> bool:
        """True when it asks nothing beyond its one sentence (an ordinary search answers it)."""
        return (
            len(self.steps) == 1
            and self.while_ is None
            and self.min_duration is None
            and not (self.count or self.first or self.last)
        )

    @property
    def texts(self) -> tuple[str, ...]:
        """Every sentence to embed: the steps, then the ``--while`` one."""
        return self.steps + ((self.while_,) if self.while_ is not None else ())

    @property
    def label(self) -> str:
        """How results name it: "A, then B (within 10 s)", "A while B", "A (at least 3 s)"."""
        text = ", then ".join(self.steps)
        if self.within is not None:
            text += f" (within {self.within:g} s)"
        if self.while_ is not None:
            text += f" while {self.while_}"
        if self.min_duration is not None:
            text += f" (at least {self.min_duration:g} s)"
        return text

    def as_dict(self) -> dict[str, object]:
        """The fields as JSON carries them (``while`` without the underscore)."""
        return {
            "steps": list(self.steps),
            "within": self.within,
            "min_duration": self.min_duration,
            "count": self.count,
            "first": self.first,
            "last": self.last,
            "while": self.while_,
        }
