"""Faces on a picture, found by dlib's HOG detector, aligned on 5 landmarks, embedded as 128 numbers; and
``FacesValue``, a video's faces and people as the faces track stores them.

Two faces of one person lie close (L2 distance; ``calibration`` turns it into a probability). Measured on
MSR-VTT footage: same person 0.27 mean (99th percentile 0.53), different people 0.75 mean (1st
percentile 0.54). A face must be at least ``MIN_FACE`` pixels wide to be found: the HOG window is 80 px,
and frames are upsampled once, so ~40 px faces are found; smaller ones are not reliable.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from frameseek.errors import InputError
from frameseek.people.models import FACE_MODEL_ID, face_models

if TYPE_CHECKING:
    from frameseek.video.decode import Frame

MIN_FACE = 36
"""Faces narrower than this (pixels of the picture searched) are dropped: their embeddings drift."""
UPSAMPLE = 1
"""Pictures are searched at twice their size (the HOG window is 80 px): faces down to ~40 px are found
(measured on MSR-VTT 640×360 frames: 0.2-0.3 s a frame with embedding, one core)."""
PHOTO_MAX_SIDE = 1024
"""A query photo larger than this is scaled down before its face is searched (detection cost)."""
THUMB_SIDE = 96
DRAWN_SHARE = 0.5
"""A query face whose 4×4 pixel blocks are flat (grey-level spread < 1) for more than this share is drawn,
not photographed: measured 0.73-0.90 on a drawn face (PNG and JPEG), at most 0.03 on real faces (photos
and frames of the MSR-VTT clips). HOG finds drawn smileys (score ≈ 0.5), and their embeddings mean nothing."""


@dataclass(frozen=True)
class Face:
    """One face on one frame: when (seconds), where (left, top, right, bottom in the frame's pixels), how
    sure the detector is, and its 128-d embedding (float32, unit-free L2 space)."""

    time: float
    box: tuple[int, int, int, int]
    score: float
    embedding: np.ndarray

    @property
    def width(self) -> int:
        return self.box[2] - self.box[0]

    def as_dict(self) -> dict[str, Any]:
        data = self.embedding.astype("<f2").tobytes()
        return {
            "time": round(self.time, 6),
            "box": list(self.box),
            "score": round(self.score, 4),
            "embedding": base64.b64encode(data).decode("ascii"),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Face:
        vector = np.frombuffer(base64.b64decode(data["embedding"]), dtype="<f2").astype(np.float32)
        if vector.shape != (128,):
            raise ValueError("a face embedding has 128 numbers")
        left, top, right, bottom = (int(v) for v in data["box"])
        return cls(float(data["time"]), (left, top, right, bottom), float(data["score"]), vector)


def _contiguous(image: np.ndarray) -> np.ndarray:
    if image.ndim != 3 or image.shape[2] != 3:
        raise InputError("a picture for face search must be RGB (height × width × 3)")
    return np.ascontiguousarray(image, dtype=np.uint8)


def detect(image: np.ndarray, time: float = 0.0, *, min_face: int = MIN_FACE) -> tuple[list[Face], int]:
    """Every face on an RGB picture at least ``min_face`` px wide, embedded; and how many smaller faces
    were found and dropped."""
    import dlib  # type: ignore[import-untyped]

    models = face_models()
    image = _contiguous(image)
    boxes, scores, _ = models.detector.run(image, UPSAMPLE, 0.0)
    kept = [(b, s) for b, s in zip(boxes, scores, strict=True) if b.width() >= min_face]
    small = len(boxes) - len(kept)
    if not kept:
        return [], small
    shapes = dlib.full_object_detections()
    for box, _ in kept:
        shapes.append(models.landmarks(image, box))
    vectors = models.embedder.compute_face_descriptor(image, shapes, 0, 0.25)
    h, w = image.shape[:2]
    faces = []
    for (box, score), vector in zip(kept, vectors, strict=True):
        clipped = (max(0, box.left()), max(0, box.top()), min(w, box.right()), min(h, box.bottom()))
        faces.append(Face(float(time), clipped, float(score), np.asarray(vector, dtype=np.float32)))
    return faces, small


def faces_in_frames(frames: Iterable[Frame]) -> Iterator[tuple[Frame, list[Face]]]:
    """Each frame with the faces on it."""
    for frame in frames:
        found, _ = detect(frame.image, frame.time)
        yield frame, found


def thumbnail(image: np.ndarray, face: Face, side: int = THUMB_SIDE) -> bytes:
    """A square JPEG of ``face`` with a margin around it (for lists and galleries)."""
    left, top, right, bottom = face.box
    margin = (right - left) * 0.35
    h, w = image.shape[:2]
    box = (
        max(0, int(left - margin)),
        max(0, int(top - margin)),
        min(w, int(right + margin)),
        min(h, int(bottom + margin)),
    )
    crop = Image.fromarray(np.ascontiguousarray(image)).crop(box).resize((side, side))
    out = io.BytesIO()
    crop.save(out, format="JPEG", quality=85)
    return out.getvalue()


def photo_face(image: Image.Image, label: str) -> tuple[Face, list[str]]:
    """The face to look for on a query photo (the largest one, with a notice when there are several).

    A photo with no face, or whose faces are all too small, is one ``InputError`` naming it."""
    picture = image.convert("RGB")
    scale = 1.0
    if max(picture.size) > PHOTO_MAX_SIDE:
        scale = PHOTO_MAX_SIDE / max(picture.size)
        picture = picture.resize(
            (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
        )
    if min(picture.size) < 16:
        raise InputError(f"no face found in {label}: the image is only {image.width}×{image.height} pixels")
    found, small = detect(np.asarray(picture))
    if not found:
        if small:
            raise InputError(
                f"the face in {label} is too small to recognise (at least {MIN_FACE} pixels wide needed)"
            )
        raise InputError(
            f"no face found in {label} (a real, front-facing face at least {MIN_FACE} pixels wide is needed)"
        )
    best = max(found, key=lambda f: f.width)
    if flat_share(np.asarray(picture), best) > DRAWN_SHARE:
        raise InputError(f"the face in {label} looks drawn, not photographed: give a photo of a real person")
    notices = []
    if len(found) > 1:
        notices.append(f"{len(found)} faces in {label}: looking for the largest")
    return best, notices


def flat_share(image: np.ndarray, face: Face) -> float:
    """The share of 4×4 blocks inside ``face``'s box whose grey levels are flat (standard deviation < 1)."""
    left, top, right, bottom = face.box
    grey = np.asarray(image[top:bottom, left:right], dtype=np.float64).mean(axis=2)
    h, w = (grey.shape[0] // 4) * 4, (grey.shape[1] // 4) * 4
    if h == 0 or w == 0:
        return 0.0
    blocks = grey[:h, :w].reshape(h // 4, 4, w // 4, 4).std(axis=(1, 3))
    return float((blocks < 1.0).mean())


FACES_VERSION = 1
"""Salts the faces track's key: bump when what ``from_frames`` stores changes meaning."""


@dataclass
class FacesValue:
    """A video's faces (in time order), its people as groups of face indices, one face thumbnail (JPEG)
    per group, the sampling step (seconds) and the last sampled time."""

    faces: list[Face]
    groups: list[list[int]]
    thumbs: list[bytes] = field(default_factory=list)
    step: float = 1.0
    last: float | None = None

    def to_json(self) -> str:
        return json.dumps(
            {
                "version": FACES_VERSION,
                "model": FACE_MODEL_ID,
                "step": self.step,
                "last": self.last,
                "faces": [f.as_dict() for f in self.faces],
                "groups": self.groups,
                "thumbs": [base64.b64encode(t).decode("ascii") for t in self.thumbs],
            }
        )

    @classmethod
    def from_json(cls, text: str) -> FacesValue:
        data = json.loads(text)
        if data.get("version") != FACES_VERSION:
            raise ValueError("a faces track of another version")
        faces = [Face.from_dict(f) for f in data["faces"]]
        groups = [[int(i) for i in g] for g in data["groups"]]
        if any(not 0 <= i < len(faces) for g in groups for i in g):
            raise ValueError("a faces track's group names a face it does not have")
        thumbs = [base64.b64decode(t) for t in data["thumbs"]]
        last = data.get("last")
        return cls(faces, groups, thumbs, float(data["step"]), None if last is None else float(last))

    def embeddings(self) -> np.ndarray:
        if not self.faces:
            return np.zeros((0, 128), np.float32)
        return np.stack([f.embedding for f in self.faces])


def faces_from_frames(frames: Iterable[Frame], step: float) -> FacesValue:
    """Detect, embed and group the faces on ``frames``; keep the largest face of each group as its
    thumbnail."""
    from frameseek.people.grouping import group_faces

    faces: list[Face] = []
    crops: list[bytes] = []
    last: float | None = None
    for frame, found in faces_in_frames(frames):
        last = frame.time
        for face in found:
            faces.append(face)
            crops.append(thumbnail(frame.image, face))
    groups = group_faces(np.stack([f.embedding for f in faces])) if faces else []
    thumbs = [crops[max(g, key=lambda i: (faces[i].width, faces[i].score))] for g in groups]
    return FacesValue(faces, groups, thumbs, step, last)
