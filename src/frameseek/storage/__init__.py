"""A video's index as tracks (visual, speech, screen text, any registered track), stored under its content hash,
and libraries of indexed videos."""

from frameseek.storage.library import (
    LibraryMatrix,
    add_to_library,
    build_ann,
    check_library_name,
    exact_top_k,
    library_entries,
    library_version,
    load_library,
)
from frameseek.storage.store import (
    get_or_build,
    index_folder,
    load_text_track,
    lock_for,
    save_index,
    save_text_track,
    text_track_path,
    track_path,
    try_load,
    video_folder,
)
from frameseek.storage.vectors import VectorStore
from frameseek.storage.visual import INDEX_FORMAT, VideoIndex

__all__ = [
    "INDEX_FORMAT",
    "LibraryMatrix",
    "VectorStore",
    "VideoIndex",
    "add_to_library",
    "build_ann",
    "check_library_name",
    "exact_top_k",
    "get_or_build",
    "index_folder",
    "library_entries",
    "library_version",
    "load_library",
    "load_text_track",
    "lock_for",
    "save_index",
    "save_text_track",
    "text_track_path",
    "track_path",
    "try_load",
    "video_folder",
]
