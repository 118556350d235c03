"""The public API: everything the doors (command line, app, HTTP service, MCP server) call, and nothing below.

A door imports this module (and its own package); it never reaches into ``storage``, ``indexing``,
``video`` or ``models``. ``tests/test_architecture.py`` keeps that rule. ``Searcher`` is the one object
that indexes and searches; the functions beside it are what a door needs without a model (libraries,
transcripts, editors' exports, sources, devices, presets).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from frameseek.editing.clips import export_supercut
from frameseek.editing.edits import (
    MAX_CLIP_SECONDS,
    MIN_CLIP_SECONDS,
    EditFile,
    Moment,
    clip_bounds,
    clip_window,
    edit_file,
    edit_markers,
    edit_moments,
    hit_clip,
    supercut_file,
)
from frameseek.editing.export import export_clip, export_for_editing, export_frame, export_hits
from frameseek.editing.markers import MARKER_FORMATS, MARKER_LABELS, MARKER_SUFFIXES, markers_text
from frameseek.editing.timelines import read_editor_text
from frameseek.errors import (
    DecodeError,
    FrameseekError,
    IndexError_,
    InputError,
    ModelError,
    SourceError,
    one_line,
)
from frameseek.indexing.distributor import JobOutcome
from frameseek.indexing.text_tracks import TrackOptions
from frameseek.indexing.writer import discard_stale_scratch
from frameseek.metrics import PipelineMetrics, ResourceMonitor
from frameseek.models.download import download_preset, install_preset
from frameseek.models.preprocess import ImageLike
from frameseek.models.registry import AUTO_MODEL, DEFAULT_MODEL, PRESETS
from frameseek.moments.confidence import FOUND_AT, Calibration
from frameseek.moments.ranking import check_min_confidence, confidence_level
from frameseek.people.find import (
    find_person,
    forget_faces,
    list_people,
    name_person,
    named_people,
    person_thumbnail,
)
from frameseek.progress import Progress
from frameseek.query import MAX_STEPS, MomentQuery, Query, check_text, load_query_image
from frameseek.results import SearchResponse, SearchResult, Timeline
from frameseek.search import Searcher, frame_limit_notices
from frameseek.settings import Limits, downloads_dir, home, indexes_dir, limits
from frameseek.sounds.events import SOUND_CLASSES, SoundEvent
from frameseek.sounds.query import sound_request
from frameseek.storage.library import add_to_library, check_library_name, file_stamp, library_entries
from frameseek.storage.maintenance import prune, remove_video, scan, watch
from frameseek.storage.store import stored_text_tracks
from frameseek.system.access import (
    MIN_TOKEN_CHARS,
    OutsideRoots,
    bearer_of,
    check_token,
    host_header_is_loopback,
    inside_roots,
    is_loopback_host,
    media_roots,
    path_in_roots,
    read_token,
    token_matches,
)
from frameseek.system.atomic import atomic_dir, atomic_path, write_text_atomic
from frameseek.system.devices import check_device_spec, resolve_device
from frameseek.system.startup import heavy_imports
from frameseek.text.formats import to_json, to_srt, to_vtt
from frameseek.text.matching import highlight
from frameseek.text.multilingual import detect_language
from frameseek.timecode import format_timecode
from frameseek.transcripts import VideoText, read_text
from frameseek.version import __version__
from frameseek.video.decode import probe
from frameseek.video.links import ConnectionGuard, LinkRefused, address_refusal, check_link
from frameseek.video.sampling import MAX_VIDEO_SECONDS, Sampling
from frameseek.video.sources import VideoSource, check_url, from_upload, is_link, resolve

if TYPE_CHECKING:
    from frameseek.indexing.ray_distributor import RayDistributor
    from frameseek.models.dual_encoder import DualEncoder


def create_model(
    name_or_path: str = DEFAULT_MODEL, *, precision: Any = None, engine: Any = None, device: str | None = None
) -> DualEncoder:
    """A preset by name, ``auto`` or a checkpoint folder, ready to encode (imports torch when called)."""
    from frameseek.models.factory import create_model as create

    return create(name_or_path, precision=precision, engine=engine, device=device)


def create_ray_distributor(
    address: str | None = None, *, model: str | None = None, device: str | None = None
) -> RayDistributor:
    """A distributor that indexes on a Ray cluster (``address``: host:port, ray://host:port or auto; None: a
    local one on every core). Ray is imported here, not with this module: InputError when it is missing."""
    from frameseek.indexing.ray_distributor import RayDistributor as Distributor

    return Distributor(address, model=model, device=device)


def describe_presets() -> list[dict[str, Any]]:
    """One row per preset: name, description, embed_dim, parameter counts, weights and heads."""
    from frameseek.models.describe import describe_presets as describe

    return describe()


def format_presets(rows: list[dict[str, Any]]) -> str:
    """A readable plain-text table of ``describe_presets()`` rows."""
    from frameseek.models.describe import format_presets as format_rows

    return format_rows(rows)


__all__ = [
    "AUTO_MODEL",
    "DEFAULT_MODEL",
    "FOUND_AT",
    "MARKER_FORMATS",
    "MARKER_LABELS",
    "MARKER_SUFFIXES",
    "MAX_CLIP_SECONDS",
    "MAX_STEPS",
    "MAX_VIDEO_SECONDS",
    "MIN_CLIP_SECONDS",
    "MIN_TOKEN_CHARS",
    "PRESETS",
    "SOUND_CLASSES",
    "Calibration",
    "ConnectionGuard",
    "DecodeError",
    "EditFile",
    "FrameseekError",
    "ImageLike",
    "IndexError_",
    "InputError",
    "JobOutcome",
    "Limits",
    "LinkRefused",
    "ModelError",
    "Moment",
    "MomentQuery",
    "OutsideRoots",
    "PipelineMetrics",
    "Progress",
    "Query",
    "ResourceMonitor",
    "Sampling",
    "SearchResponse",
    "SearchResult",
    "Searcher",
    "SoundEvent",
    "SourceError",
    "Timeline",
    "TrackOptions",
    "VideoSource",
    "VideoText",
    "__version__",
    "add_to_library",
    "address_refusal",
    "atomic_dir",
    "atomic_path",
    "bearer_of",
    "check_device_spec",
    "check_library_name",
    "check_link",
    "check_min_confidence",
    "check_text",
    "check_token",
    "check_url",
    "clip_bounds",
    "clip_window",
    "confidence_level",
    "create_model",
    "create_ray_distributor",
    "describe_presets",
    "detect_language",
    "discard_stale_scratch",
    "download_preset",
    "downloads_dir",
    "edit_file",
    "edit_markers",
    "edit_moments",
    "export_clip",
    "export_for_editing",
    "export_frame",
    "export_hits",
    "export_supercut",
    "file_stamp",
    "find_person",
    "forget_faces",
    "format_presets",
    "format_timecode",
    "frame_limit_notices",
    "from_upload",
    "heavy_imports",
    "highlight",
    "hit_clip",
    "home",
    "host_header_is_loopback",
    "indexes_dir",
    "inside_roots",
    "install_preset",
    "is_link",
    "is_loopback_host",
    "library_entries",
    "limits",
    "list_people",
    "load_query_image",
    "markers_text",
    "media_roots",
    "name_person",
    "named_people",
    "one_line",
    "path_in_roots",
    "person_thumbnail",
    "probe",
    "prune",
    "read_editor_text",
    "read_text",
    "read_token",
    "remove_video",
    "resolve",
    "resolve_device",
    "scan",
    "sound_request",
    "stored_text_tracks",
    "supercut_file",
    "to_json",
    "to_srt",
    "to_vtt",
    "token_matches",
    "watch",
    "write_text_atomic",
]
