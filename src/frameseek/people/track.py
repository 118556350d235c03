"""The ``faces`` track: faces on the frames a video's pass decodes, grouped into people, stored under the
video's content hash (``indexes/<sha[:2]>/<sha>/faces/<key>.json``) and added to the library's people.

Opt-in: ``wanted`` is False, so it is built only when ``TrackOptions(extra={"faces"})`` names it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, ClassVar

from frameseek.indexing.tracks import FrameTrack, Obtained, TrackContext, TrackOptions, TrackQuery, register
from frameseek.people.faces import FACES_VERSION, FacesValue, faces_from_frames
from frameseek.people.models import FACE_MODEL_ID
from frameseek.video.sampling import Sampling
from frameseek.video.sources import VideoSource

if TYPE_CHECKING:
    from frameseek.results import SearchResult
    from frameseek.storage.visual import VideoIndex
    from frameseek.video.decode import Frame

FACES_FPS = 1.0
FACES_MAX_SIDE = 640
"""Faces are read at 1 frame/s at up to 640 px (the picture's own decode): ~0.25 s a frame on one core."""


class FacesTrack(FrameTrack[FacesValue]):
    """Who is on screen: faces at 1 frame/s, grouped into people; a query naming a known person gives that
    person's appearances as candidates (fused with the other tracks on the confidence scale)."""

    name: ClassVar[str] = "faces"
    label: ClassVar[str] = "faces"

    def wanted(self, options: TrackOptions) -> bool:
        return False  # privacy: only when asked for by name (TrackOptions(extra={"faces"}))

    def sampling(self, options: TrackOptions) -> Sampling:
        return Sampling(fps=FACES_FPS, max_side=FACES_MAX_SIDE)

    def key(self, src: VideoSource, options: TrackOptions) -> str:
        parts = {"sampling": self.sampling(options).as_dict(), "model": FACE_MODEL_ID, "v": FACES_VERSION}
        return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def encode(self, value: FacesValue) -> str:
        return value.to_json()

    def decode(self, text: str) -> FacesValue:
        return FacesValue.from_json(text)

    def from_frames(
        self, frames: Iterable[Frame], src: VideoSource, options: TrackOptions, ctx: TrackContext
    ) -> FacesValue:
        progress = ctx.progress

        def reported() -> Iterable[Frame]:
            for frame in frames:
                yield frame
                if progress:
                    progress("faces", frame.time, ctx.duration)

        with ctx.metrics.stage("faces"):
            return faces_from_frames(reported(), 1.0 / self.sampling(options).fps)

    def get(self, src: VideoSource, options: TrackOptions, ctx: TrackContext) -> Obtained:
        from frameseek.people.store import PeopleStore

        got = super().get(src, options, ctx)
        PeopleStore().add_video(src, got.value)
        return got

    def score(self, index: VideoIndex, value: FacesValue, query: TrackQuery) -> list[SearchResult]:
        from frameseek.people.matching import person_candidates
        from frameseek.people.store import PeopleStore

        if query.text is None or not value.faces:
            return []
        found: list[SearchResult] = []
        for person in PeopleStore().named_in(query.text):
            found += person_candidates(value, person, index.video_path, index.title, person.name)
        return found


register(FacesTrack)
