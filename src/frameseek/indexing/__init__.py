"""Indexing as stages: reader → preparer → encoder → writer, wired and timed by a runner (built from a
picklable ``RunnerSpec`` where it runs), placed by a distributor; tracks beyond the picture behind one
protocol and a registry (``tracks``). Each stage is a small public class that a test, a benchmark or a
distributor can use alone.

The exports load lazily: importing ``frameseek.indexing.text_tracks`` (the CLI's option checks) does not
import torch through the encoder.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from frameseek.indexing.distributor import Distributor, IndexJob, InProcessDistributor, JobOutcome
    from frameseek.indexing.encoder import DEFAULT_BATCH_SIZE, FrameEncoder, default_encode_threads
    from frameseek.indexing.preparer import FramePreparer, PreparedFrame, write_thumbnail
    from frameseek.indexing.reader import FrameReader
    from frameseek.indexing.runner import IndexRunner
    from frameseek.indexing.spec import RunnerSpec
    from frameseek.indexing.tracks import FrameTrack, StoredTrack, Track, register
    from frameseek.indexing.writer import IndexWriter

_HOMES = {
    "Distributor": "distributor",
    "IndexJob": "distributor",
    "InProcessDistributor": "distributor",
    "JobOutcome": "distributor",
    "DEFAULT_BATCH_SIZE": "encoder",
    "FrameEncoder": "encoder",
    "default_encode_threads": "encoder",
    "FramePreparer": "preparer",
    "PreparedFrame": "preparer",
    "write_thumbnail": "preparer",
    "FrameReader": "reader",
    "IndexRunner": "runner",
    "RunnerSpec": "spec",
    "FrameTrack": "tracks",
    "StoredTrack": "tracks",
    "Track": "tracks",
    "register": "tracks",
    "IndexWriter": "writer",
}

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "Distributor",
    "FrameEncoder",
    "FramePreparer",
    "FrameReader",
    "FrameTrack",
    "InProcessDistributor",
    "IndexJob",
    "IndexRunner",
    "IndexWriter",
    "JobOutcome",
    "PreparedFrame",
    "RunnerSpec",
    "StoredTrack",
    "Track",
    "default_encode_threads",
    "register",
    "write_thumbnail",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'frameseek.indexing' has no attribute {name!r}")
    return getattr(importlib.import_module(f"frameseek.indexing.{home}"), name)
