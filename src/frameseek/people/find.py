"""Where is this person, and who is in this video: what the doors call (through ``frameseek.api``)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from frameseek import settings
from frameseek.errors import InputError
from frameseek.metrics import PipelineMetrics, ResourceMonitor
from frameseek.moments.confidence import FOUND_AT
from frameseek.people.matching import match_faces, result_of
from frameseek.people.store import PeopleStore
from frameseek.progress import Progress
from frameseek.results import SearchResponse, SearchResult

if TYPE_CHECKING:
    from frameseek.models.preprocess import ImageLike
    from frameseek.people.faces import FacesValue
    from frameseek.video.sources import VideoSource


def faces_of(
    src: VideoSource, metrics: PipelineMetrics | None = None, progress: Progress | None = None
) -> FacesValue | None:
    """A video's faces track: stored, else read now (and its people added to the library's)."""
    from frameseek.indexing.tracks import TrackContext, TrackOptions, TrackSettings, registered
    from frameseek.people.track import FacesTrack

    limits = settings.limits()
    factory = registered().get("faces", FacesTrack)
    track = factory(TrackSettings(limits.max_frames, limits.max_pixels))
    ctx = TrackContext(None, metrics or PipelineMetrics(), progress)
    value: FacesValue | None = track.get(src, TrackOptions(extra=frozenset({"faces"})), ctx).value
    return value


def _sources(source: str | Path | VideoSource, progress: Progress | None) -> list[VideoSource]:
    from frameseek.video.sources import VideoSource, resolve

    if isinstance(source, VideoSource):
        return [source]
    return resolve(source)  # a link downloads quietly; progress is for the faces pass


def find_person(
    source: str | Path | VideoSource,
    *,
    face: ImageLike | bytes | str | Path | None = None,
    person: str | None = None,
    top_k: int = 5,
    min_confidence: float = 0.0,
    progress: Progress | None = None,
) -> SearchResponse:
    """Every appearance in ``source`` (a file, folder or link) of the person on the photo ``face`` (a path,
    bytes, base64 text or a PIL image) or known as ``person`` (an id or a name), most confident first.

    ``confidence`` is the calibrated probability that the face seen is that person
    (``people.calibration``); ``found`` is true when an appearance reaches ``FOUND_AT``; each result's
    segment covers the whole appearance."""
    from PIL import Image

    from frameseek.people.faces import photo_face
    from frameseek.query import load_query_image
    from frameseek.video.sources import VideoSource

    if (face is None) == (person is None):
        raise InputError("give a face photo (--face photo.jpg) or a person (an id such as p3, or a name)")
    if top_k < 1:
        raise InputError(f"top_k must be at least 1, got {top_k}")
    if not 0.0 <= min_confidence <= 1.0:
        raise InputError(f"min_confidence must be in [0, 1], got {min_confidence}")
    notices: list[str] = []
    if face is not None:
        limits = settings.limits()
        label = str(face) if isinstance(face, Path) else "the face photo"
        if isinstance(face, Image.Image):
            image = face.convert("RGB")
        elif isinstance(
            face, Path | bytes | str
        ):  # str: base64 (never a path: a service must not read files)
            image = load_query_image(face, limits.max_pixels, name=label)
        else:
            raise InputError("a face photo is a file, its bytes, base64 text or a PIL image")
        wanted, notes = photo_face(image, label)
        notices += notes
        embeddings = wanted.embedding[None, :]
        label_text: str | None = None
        thumb: str | None = None
    else:
        known = PeopleStore().person(str(person))
        embeddings = known.exemplars
        label_text = known.label
        path = known.thumbnail()
        thumb = None if path is None else str(path)
    metrics = PipelineMetrics()
    results: list[SearchResult] = []
    with ResourceMonitor().watch(metrics):
        sources = _sources(source, progress)
        for src in sources:
            value = faces_of(src, metrics, progress)
            if value is None:
                continue
            if not value.faces:
                notices.append(f"no faces were found in {src.title}")
            for hit in match_faces(value, embeddings):
                results.append(result_of(value, str(src.path), src.title, hit, label_text, thumb))
    results.sort(key=lambda r: -r.confidence)
    found = any(r.confidence >= FOUND_AT for r in results)
    shown = [r for r in results if r.confidence >= min_confidence][:top_k]
    return SearchResponse(
        source=str(source.origin if isinstance(source, VideoSource) else source),
        model="faces",
        query=label_text or "a face photo",
        results=shown,
        metrics=metrics.as_dict(),
        notices=notices,
        found=found,
    )


def list_people(
    source: str | Path | VideoSource | None = None, progress: Progress | None = None
) -> list[dict[str, Any]]:
    """Each person in ``source`` (its faces read now if they are not stored yet), or in the whole library
    (None), with id, name, face thumbnail, screen time (s) and appearances; most screen time first."""
    store = PeopleStore()
    if source is None:
        rows = [p.summary() for p in store.people()]
    else:
        rows = []
        for src in _sources(source, progress):
            faces_of(src, None, progress)
            rows += [p.summary(src.sha256) for p in store.people() if src.sha256 in p.videos]
    return sorted(rows, key=lambda r: (-r["screen_time"], r["id"]))


def name_person(ref: str, name: str) -> dict[str, Any]:
    """Name a person (``ref``: an id such as ``p3`` or a current name); returns the person's summary."""
    return PeopleStore().rename(ref, name).summary()


def named_people(text: str) -> list[str]:
    """The names of known people that ``text`` mentions (a query that should use the faces track)."""
    return [p.label for p in PeopleStore().named_in(text)]


def forget_faces(source: str | Path | VideoSource | None = None) -> int:
    """Delete face data: a video's (its stored faces track and its entries in the people store), or all of
    it (None: every stored faces track and the people store). Returns the number of people removed."""
    from frameseek.storage.store import video_folder

    store = PeopleStore()
    if source is None:
        root = settings.indexes_dir()
        if root.is_dir():
            for folder in root.glob("*/*/faces"):
                shutil.rmtree(folder, ignore_errors=True)
        return store.forget(None)
    removed = 0
    for src in _sources(source, None):
        shutil.rmtree(video_folder(src.sha256) / "faces", ignore_errors=True)
        removed += store.forget(src.sha256)
    return removed


def person_thumbnail(ref: str) -> Path:
    """The face thumbnail (JPEG) of a person (id or name)."""
    person = PeopleStore().person(ref)
    path = person.thumbnail()
    if path is None:
        raise InputError(f"{person.label} has no thumbnail")
    return path
