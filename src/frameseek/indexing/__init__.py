"""Indexing as stages: reader → preparer → encoder → writer, wired and timed by a runner, placed by a
distributor. Each stage is a small public class that a test, a benchmark or a distributor can use alone."""

from frameseek.indexing.distributor import Distributor, IndexJob, InProcessDistributor, JobOutcome
from frameseek.indexing.encoder import DEFAULT_BATCH_SIZE, FrameEncoder, default_encode_threads
from frameseek.indexing.preparer import FramePreparer, PreparedFrame, write_thumbnail
from frameseek.indexing.reader import FrameReader
from frameseek.indexing.runner import IndexRunner
from frameseek.indexing.writer import IndexWriter

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "Distributor",
    "FrameEncoder",
    "FramePreparer",
    "FrameReader",
    "InProcessDistributor",
    "IndexJob",
    "IndexRunner",
    "IndexWriter",
    "JobOutcome",
    "PreparedFrame",
    "default_encode_threads",
    "write_thumbnail",
]
