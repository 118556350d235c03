"""A search query — a sentence, an image, or both — as one value that validates itself once."""

from __future__ import annotations

import base64
import binascii
import io
import math
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from frameseek.errors import InputError
from frameseek.models.preprocess import ImageLike

EMPTY_QUERY = "the query is empty; type a sentence such as 'a cyclist wearing a helmet'"
NO_QUERY = "give a text query, an image query, or both"


def clean_text(text: str) -> str:
    """White space folded to single spaces, ends stripped."""
    return " ".join(text.split())


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
