"""The library's people: one JSON file (``FRAMESEEK_HOME/people/people.json``) and a face thumbnail per
person (``people/thumbs/<id>.jpg``), written atomically under an inter-process lock.

Incremental: a video's groups (``track.FacesValue``) join the person whose exemplar faces are nearest
(within ``grouping.GROUP_AT``), else become new people; a video already added is not added twice.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from filelock import FileLock

from frameseek import settings
from frameseek.errors import InputError
from frameseek.people.grouping import GROUP_AT, appearances
from frameseek.system.atomic import write_bytes_atomic, write_text_atomic

if TYPE_CHECKING:
    from frameseek.people.faces import FacesValue
    from frameseek.video.sources import VideoSource

STORE_VERSION = 1
MAX_EXEMPLARS = 12
"""Faces kept per person to compare new faces with (spread over the videos it was seen in)."""
PER_GROUP = 3
MAX_NAME = 80
_ID = re.compile(r"p[0-9]{1,9}")


def _words(text: str) -> str:
    """``text`` as lower-case words between single spaces, padded (for whole-word containment)."""
    return " " + " ".join(re.findall(r"\w+", text.lower())) + " "


def people_dir() -> Path:
    return settings.home() / "people"


@dataclass
class Person:
    """One person across the library: ``id`` (``p1``…), an optional ``name``, exemplar face embeddings
    with the video each came from (``sources``, content hashes: forgetting a video removes its faces), and
    per video (by content hash) its title, path, face count and appearances (start, end); ``thumb_source``
    is the video the face thumbnail was cut from."""

    id: str
    name: str | None
    exemplars: np.ndarray
    videos: dict[str, dict[str, Any]] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)
    thumb_source: str | None = None

    def distance(self, embeddings: np.ndarray) -> np.ndarray:
        """Each embedding's distance to this person's nearest exemplar (infinite with none left)."""
        if len(embeddings) == 0:
            return np.zeros(0)
        if len(self.exemplars) == 0:
            return np.full(len(embeddings), np.inf)
        d = np.linalg.norm(embeddings[:, None, :] - self.exemplars[None, :, :], axis=2)
        return np.asarray(d.min(axis=1))

    @property
    def label(self) -> str:
        return self.name or self.id

    def thumbnail(self) -> Path | None:
        path = people_dir() / "thumbs" / f"{self.id}.jpg"
        return path if path.is_file() else None

    def summary(self, sha: str | None = None) -> dict[str, Any]:
        """What a door lists: id, name, thumbnail, screen time (s), appearances (all videos, or ``sha``'s)."""
        videos = {k: v for k, v in self.videos.items() if sha is None or k == sha}
        thumb = self.thumbnail()
        return {
            "id": self.id,
            "name": self.name,
            "thumbnail": None if thumb is None else str(thumb),
            "screen_time": round(sum(b - a for v in videos.values() for a, b in v["appearances"]), 3),
            "appearances": sum(len(v["appearances"]) for v in videos.values()),
            "videos": [
                {"video": v["path"], "title": v["title"], "appearances": v["appearances"]}
                for v in videos.values()
            ],
        }

    def as_dict(self) -> dict[str, Any]:
        data = self.exemplars.astype("<f2").tobytes()
        return {
            "id": self.id,
            "name": self.name,
            "exemplars": base64.b64encode(data).decode("ascii"),
            "sources": self.sources,
            "thumb_source": self.thumb_source,
            "videos": self.videos,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Person:
        vectors = np.frombuffer(base64.b64decode(data["exemplars"]), dtype="<f2").astype(np.float32)
        vectors = vectors.reshape(-1, 128)
        sources = [str(s) for s in data.get("sources", [])]
        if len(sources) != len(vectors):  # unknown provenance: treat every exemplar as from every video
            sources = [""] * len(vectors)
        thumb = data.get("thumb_source")
        return cls(
            str(data["id"]), data.get("name"), vectors, dict(data["videos"]), sources, thumb and str(thumb)
        )

    def drop_video(self, sha: str) -> None:
        """Forget ``sha``: its appearances, the exemplar faces taken from it (and those of unknown origin)."""
        self.videos.pop(sha, None)
        keep = [i for i, s in enumerate(self.sources) if s and s != sha]
        self.exemplars = self.exemplars[keep]
        self.sources = [self.sources[i] for i in keep]


def check_name(name: str) -> str:
    """A person's name: one line of text, not empty, not a person id."""
    cleaned = " ".join(name.split())
    if not cleaned or len(cleaned) > MAX_NAME:
        raise InputError(f"a person's name must be 1 to {MAX_NAME} characters, got {name!r}")
    if _ID.fullmatch(cleaned.lower()):
        raise InputError(f"{cleaned!r} looks like a person id; choose a name such as 'Alice'")
    return cleaned


class PeopleStore:
    """The library's people in ``folder`` (default ``FRAMESEEK_HOME/people``)."""

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder or people_dir()
        self.path = self.folder / "people.json"

    def _lock(self) -> FileLock:
        self.folder.mkdir(parents=True, exist_ok=True)
        return FileLock(str(self.path) + ".lock")

    def load(self) -> tuple[list[Person], int]:
        """The people and the next free id number (a damaged file reads as empty and is rebuilt as videos
        are searched again)."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return [Person.from_dict(p) for p in data["people"]], int(data["next"])
        except (OSError, ValueError, KeyError, TypeError):
            return [], 1

    def people(self) -> list[Person]:
        return self.load()[0]

    def _save(self, people: list[Person], next_id: int) -> None:
        payload = {"version": STORE_VERSION, "next": next_id, "people": [p.as_dict() for p in people]}
        write_text_atomic(self.path, json.dumps(payload) + "\n")

    def person(self, ref: str) -> Person:
        """A person by id (``p3``) or name (case-insensitive); InputError naming what is known."""
        wanted = " ".join(ref.split()).lower()
        people = self.people()
        for p in people:
            if p.id == wanted or (p.name is not None and p.name.lower() == wanted):
                return p
        known = ", ".join(p.label for p in people[:10]) or "none yet (index a video with --faces)"
        raise InputError(f"no person is known as {ref!r}; known people: {known}")

    def named_in(self, text: str) -> list[Person]:
        """The named people whose name appears in ``text`` as whole words (case-insensitive)."""
        lowered = _words(text)
        return [p for p in self.people() if p.name and _words(p.name) in lowered]

    def add_video(self, src: VideoSource, value: FacesValue | None) -> None:
        """Add a video's people (joining known ones); nothing when it is already in or has no faces."""
        if value is None or not value.groups:
            return
        embeddings = value.embeddings()
        with self._lock():
            people, next_id = self.load()
            if any(src.sha256 in p.videos for p in people):
                return
            for g, group in enumerate(value.groups):
                vectors = embeddings[group]
                mean = vectors.mean(axis=0, keepdims=True)
                near = [(float(p.distance(mean)[0]), p) for p in people]
                chosen = (
                    min(near, key=lambda x: x[0])[1] if near and min(d for d, _ in near) < GROUP_AT else None
                )
                if chosen is None:
                    chosen = Person(f"p{next_id}", None, np.zeros((0, 128), np.float32))
                    next_id += 1
                    people.append(chosen)
                if not (self.folder / "thumbs" / f"{chosen.id}.jpg").is_file() and g < len(value.thumbs):
                    write_bytes_atomic(self.folder / "thumbs" / f"{chosen.id}.jpg", value.thumbs[g])
                    chosen.thumb_source = src.sha256
                picks = vectors[np.linspace(0, len(vectors) - 1, min(PER_GROUP, len(vectors))).astype(int)]
                chosen.exemplars = np.concatenate([chosen.exemplars, picks])[-MAX_EXEMPLARS:]
                chosen.sources = (chosen.sources + [src.sha256] * len(picks))[-MAX_EXEMPLARS:]
                entry = chosen.videos.setdefault(
                    src.sha256, {"title": src.title, "path": str(src.path), "faces": 0, "appearances": []}
                )
                times = [value.faces[i].time for i in group]
                runs = [list(r) for r in appearances(times, value.step, None)]
                entry["faces"] += len(group)
                entry["appearances"] = sorted(entry["appearances"] + runs)
            self._save(people, next_id)

    def rename(self, ref: str, name: str) -> Person:
        """Give a person a name (``ref``: id or current name); a name another person has is refused."""
        cleaned = check_name(name)
        with self._lock():
            people, next_id = self.load()
            target = self.person(ref)
            for p in people:
                if p.id != target.id and p.name is not None and p.name.lower() == cleaned.lower():
                    raise InputError(f"{p.id} is already called {p.name!r}")
            for p in people:
                if p.id == target.id:
                    p.name = cleaned
                    target = p
            self._save(people, next_id)
        return target

    def forget(self, sha: str | None = None) -> int:
        """Delete face data: of one video (by content hash: its appearances, every exemplar face and
        thumbnail taken from it, people seen only there), or everything (``sha`` None: the whole store).
        Returns the people removed."""
        with self._lock():
            people, next_id = self.load()
            if sha is None:
                removed = len(people)
                shutil.rmtree(self.folder / "thumbs", ignore_errors=True)
                self.path.unlink(missing_ok=True)
                return removed
            kept = []
            for p in people:
                p.drop_video(sha)
                if not p.videos or p.thumb_source in (sha, None):
                    (self.folder / "thumbs" / f"{p.id}.jpg").unlink(missing_ok=True)
                    p.thumb_source = None
                if p.videos:
                    kept.append(p)
            self._save(kept, next_id)
            return len(people) - len(kept)
