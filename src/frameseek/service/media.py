"""Which sources a client may name: links (through the link guard) and local paths under ``--media``.

A path is resolved with every symlink followed before it is compared with the (resolved) media folders,
and so is every video a folder holds: a symlink inside a media folder that points outside it is refused.
A relative path is looked up in each media folder in turn. Outside every folder: 403, and whether such a
path exists is never said.
"""

from __future__ import annotations

import os
from pathlib import Path

from frameseek.api import SourceError, VideoSource, is_link, resolve
from frameseek.service.errors import Forbidden, NotFound
from frameseek.service.links import check_link


def _inside(path: Path, roots: tuple[Path, ...]) -> bool:
    return any(path == root or path.is_relative_to(root) for root in roots)


def local_path(source: str, roots: tuple[Path, ...]) -> Path:
    """The real path of a local ``source`` if it lies under one of ``roots``; Forbidden / NotFound else."""
    if not roots:
        raise Forbidden("local paths are not accepted: the server was started without --media folders")
    text = source.strip()
    if "\x00" in text:
        raise Forbidden("local paths must lie under the server's --media folders")
    given = Path(text).expanduser()
    candidates = [given] if given.is_absolute() else [root / given for root in roots]
    for candidate in candidates:
        real = Path(os.path.realpath(candidate))
        if not _inside(real, roots):
            continue
        if real.exists():
            return real
    if any(_inside(Path(os.path.realpath(c)), roots) for c in candidates):
        raise NotFound(f"no such file or folder under the media folders: {text}")
    raise Forbidden("local paths must lie under the server's --media folders")


def check_source(source: str, roots: tuple[Path, ...], *, allow_private_links: bool) -> str:
    """A source a client may use, as the server will use it (a checked link, or a real local path)."""
    if is_link(source):
        return check_link(source, allow_private=allow_private_links)
    return str(local_path(source, roots))


def local_videos(path: str, roots: tuple[Path, ...]) -> list[VideoSource]:
    """The videos of a checked local path, each of them under ``roots`` once its symlinks are followed."""
    found = resolve(path)
    for src in found:
        if not _inside(Path(os.path.realpath(src.path)), roots):
            raise Forbidden(f"{src.title} in {path} links to a file outside the server's --media folders")
    if not found:
        raise SourceError(f"no videos found in {path}")
    return found
