"""The service's people endpoints: face search and the people lists, only for videos under --media."""

from __future__ import annotations

from typing import Any

from frameseek.api import InputError, find_person, forget_faces, list_people
from frameseek.service.backend import Backend
from frameseek.service.config import ServiceSettings
from frameseek.service.media import check_source, is_link, local_videos
from frameseek.service.schemas import SearchRequest


class People:
    """Face search, people lists and forgetting, each on local videos under the server's media roots;
    face reading runs as exclusive work (like indexing), so one request at a time decodes."""

    def __init__(self, backend: Backend, settings: ServiceSettings) -> None:
        self.backend = backend
        self.settings = settings

    def _local(self, source: str) -> str:
        checked = check_source(source, self.settings.media, allow_private_links=False)
        if is_link(checked):
            raise InputError("faces are read only from videos under the server's --media folders, not links")
        local_videos(checked, self.settings.media)  # every video (after symlinks) under the roots
        return checked

    def find(self, request: SearchRequest) -> dict[str, Any]:
        assert request.source is not None
        source = self._local(request.source)

        def search() -> dict[str, Any]:
            response = find_person(
                source,
                face=request.face,
                person=request.person,
                top_k=request.top_k,
                min_confidence=request.min_confidence,
            )
            return response.as_dict()

        return self.backend.files.add_ids(self.backend.jobs.exclusive(search))

    def listed(self, source: str | None) -> list[dict[str, Any]]:
        if source is None:
            return list_people(None)
        checked = self._local(source)
        return self.backend.jobs.exclusive(lambda: list_people(checked))

    def forget(self, source: str | None) -> int:
        return forget_faces(None if source is None else self._local(source))
