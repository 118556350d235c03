"""Stage 1, the frame reader: a video file + a sampling → its sampled frames with exact PTS times."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from frameseek.video.decode import Frame, sample_frames
from frameseek.video.sampling import Sampling


class FrameReader:
    """Reads the frames a ``Sampling`` keeps; calling it opens the file at once (bad input fails first)."""

    def __init__(self, sampling: Sampling, *, frame_limit: int, max_pixels: int, threads: int = 1) -> None:
        self.sampling = sampling
        self.frame_limit = frame_limit
        self.max_pixels = max_pixels
        self.threads = threads

    @property
    def frame_cap(self) -> int:
        """How many frames one video may give at most."""
        return self.sampling.frame_cap(self.frame_limit)

    def __call__(self, path: Path) -> Iterator[Frame]:
        # skip_unneeded: bit-identical samples, only less decoding (also with --exact-frames)
        return sample_frames(
            path,
            self.sampling,
            frame_limit=self.frame_limit,
            max_pixels=self.max_pixels,
            threads=self.threads,
            skip_unneeded=True,
        )
