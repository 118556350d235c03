"""A person's appearances in a video's faces track: runs of faces likely to be them, with confidence."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from frameseek.moments.confidence import FOUND_AT
from frameseek.people.calibration import same_person
from frameseek.people.grouping import appearances
from frameseek.results import SearchResult
from frameseek.timecode import format_timecode

if TYPE_CHECKING:
    from frameseek.people.faces import FacesValue
    from frameseek.people.store import Person

WEAK_FLOOR = 0.05
"""Appearances less likely than this to be the person are not listed (the closest one is, when none is)."""


def _runs(value: FacesValue, p: np.ndarray, keep: np.ndarray) -> list[tuple[float, float, int]]:
    """Appearances of the faces in ``keep`` as (start, end, index of the most likely face in it)."""
    chosen = np.flatnonzero(keep)
    times = [value.faces[int(i)].time for i in chosen]
    found = []
    for start, end in appearances(
        times, value.step, value.last + value.step if value.last is not None else None
    ):
        inside = [int(i) for i in chosen if start - 1e-6 <= value.faces[int(i)].time <= end + 1e-6]
        found.append((start, end, max(inside, key=lambda i: p[i])))
    return found


def match_faces(value: FacesValue, embeddings: np.ndarray) -> list[tuple[float, float, float, float, int]]:
    """Where faces like ``embeddings`` (one person's) are in the video: (start, end, confidence, distance,
    face index) per appearance, most confident first; the single closest face when none is likely."""
    if not value.faces:
        return []
    all_faces = value.embeddings()
    distance = np.linalg.norm(all_faces[:, None, :] - embeddings[None, :, :], axis=2).min(axis=1)
    p = same_person(distance)
    keep = p >= WEAK_FLOOR
    if not keep.any():
        keep = distance == distance.min()
    found = [(a, b, float(p[i]), float(distance[i]), i) for a, b, i in _runs(value, p, keep)]
    return sorted(found, key=lambda r: -r[2])


def result_of(
    value: FacesValue,
    video: str,
    title: str,
    hit: tuple[float, float, float, float, int],
    label: str | None,
    thumbnail: str | None,
) -> SearchResult:
    start, end, confidence, distance, i = hit
    t = value.faces[i].time
    return SearchResult(
        video=video,
        title=title,
        time=round(t, 6),
        timecode=format_timecode(t),
        score=round(1.0 - distance, 6),  # 1 - the face distance (same person: ≳ 0.5)
        start=round(start, 6),
        end=round(max(end, start), 6),
        thumbnail=thumbnail,
        match="faces",
        text=label,
        confidence=round(confidence, 6),
    )


def person_candidates(
    value: FacesValue, person: Person, video: str, title: str, label: str | None
) -> list[SearchResult]:
    """A known person's likely appearances in a video (confidence ≥ ``FOUND_AT`` only: candidates that
    the other tracks' moments are fused with)."""
    thumb = person.thumbnail()
    return [
        result_of(value, video, title, hit, label, None if thumb is None else str(thumb))
        for hit in match_faces(value, person.exemplars)
        if hit[2] >= FOUND_AT
    ]
