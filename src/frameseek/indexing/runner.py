"""The runner: wires reader ‖ preparer ‖ encoder → writer for one video and times every stage.

```
decode thread (FrameReader)  →  prepare thread (FramePreparer)  →  caller's thread (FrameEncoder)  →  IndexWriter
        └──────────── bounded queues (batch / 2 × batch items): memory stays flat ──────────┘
```
The stage timings are the pipeline metrics (``decode``, ``prepare``, ``encode``, ``write``). A runner is
built from a ``RunnerSpec`` (``indexing/spec.py``), here or on a distributor's worker.
"""

from __future__ import annotations

import dataclasses
import functools
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
from av.codec.hwaccel import HWAccel

from frameseek.errors import InputError
from frameseek.indexing.encoder import FrameEncoder
from frameseek.indexing.preparer import FramePreparer, PreparedFrame
from frameseek.indexing.reader import FrameReader
from frameseek.indexing.stage import Stage, timed
from frameseek.indexing.tee import FrameTee, covers
from frameseek.indexing.text_tracks import TextTrackBuilder, TextTracks, TrackOptions
from frameseek.indexing.tracks import TrackContext
from frameseek.indexing.writer import IndexWriter
from frameseek.metrics import PipelineMetrics
from frameseek.progress import Progress
from frameseek.settings import Limits
from frameseek.storage.store import get_or_build, index_folder, migrate_legacy, try_load
from frameseek.storage.visual import VideoIndex
from frameseek.video.decode import Frame, probe
from frameseek.video.preview import PREVIEW_MIN_SECONDS, PREVIEW_SPACING, iter_preview_frames
from frameseek.video.sampling import Sampling
from frameseek.video.sources import VideoSource

if TYPE_CHECKING:
    from frameseek.models.dual_encoder import DualEncoder


BACKGROUND_NICE = 5
"""How much lower the prepare and encode threads run than the decoder (Linux nice steps)."""


class IndexRunner:
    """Builds (or reuses) the visual track of one video for one model and sampling (made by
    ``RunnerSpec.build``, the one place runners are wired; a benchmark may wire one by hand)."""

    def __init__(
        self,
        encoder: FrameEncoder,
        limits: Limits,
        *,
        decode_threads: int = 1,
        hwaccel: HWAccel | Literal["auto"] | None = "auto",
    ) -> None:
        self.encoder = encoder
        self.limits = limits
        self.decode_threads = decode_threads
        # GPU decoding for the picture track; "auto": NVDEC when the model is on a CUDA device
        self.hwaccel = hwaccel
        self.writer = IndexWriter()
        self.text = TextTrackBuilder(frame_limit=limits.max_frames, max_pixels=limits.max_pixels)

    def text_tracks(
        self,
        src: VideoSource,
        duration: float | None,
        options: TrackOptions,
        metrics: PipelineMetrics,
        progress: Progress | None = None,
    ) -> TextTracks:
        """The speech and screen-text tracks ``options`` asks for (stored, or built now)."""
        if not options.any_text:
            return TextTracks()
        return self.text.tracks(src, duration, options, metrics, progress)

    @property
    def model(self) -> DualEncoder:
        return self.encoder.model

    def reader(self, sampling: Sampling) -> FrameReader:
        return FrameReader(
            sampling,
            frame_limit=self.limits.max_frames,
            max_pixels=self.limits.max_pixels,
            threads=self.decode_threads,
            hwaccel=self._hwaccel(),
        )

    def _hwaccel(self) -> HWAccel | None:
        if self.hwaccel != "auto":
            return self.hwaccel
        from frameseek.system.devices import resolve_device

        return resolve_device(str(self.model.device)).decoder_hwaccel()

    # ---- the stored track --------------------------------------------------------------------
    def folder(self, src: VideoSource, sampling: Sampling) -> Path:
        return index_folder(src.sha256, self.encoder.fingerprint, sampling)

    def stored(self, src: VideoSource, sampling: Sampling) -> VideoIndex | None:
        """The stored index, unless a smaller frame limit cut it short and this one would sample more."""
        index = try_load(self.folder(src, sampling))
        if (
            index is not None
            and index.stopped_at is not None
            and len(index) < sampling.frame_cap(self.limits.max_frames)  # what a reader would sample
        ):
            return None
        return index

    def get(
        self,
        src: VideoSource,
        sampling: Sampling,
        metrics: PipelineMetrics,
        progress: Progress | None = None,
        tracks: TrackOptions | None = None,
    ) -> VideoIndex:
        """The stored visual track, else one built under an inter-process lock (a racing process waits).

        ``tracks``: the job's other tracks; while the picture is decoded, the frame tracks among them that
        are not stored yet read the same frames (``FrameTee``), so ``text_tracks`` then finds them stored."""
        folder = self.folder(src, sampling)
        migrated = False

        def build() -> VideoIndex:
            nonlocal migrated
            if migrate_legacy(src.sha256, self.encoder.fingerprint, sampling):
                moved = self.stored(src, sampling)
                if moved is not None:
                    migrated = True
                    return moved
            self.encoder.prepare()  # image backbone + engine: start-up, not indexing time
            with metrics.stage("index"):
                return self.build(src, sampling, folder, metrics, progress, tracks)

        existing, built = get_or_build(folder, lambda: self.stored(src, sampling), build)
        if built and not migrated:
            return existing
        metrics.index_reused = True
        if existing.video_path != str(src.path):  # the same content under another name (a copy, a move)
            existing = dataclasses.replace(
                existing, video_path=str(src.path), title=src.title, origin=src.origin
            )
        return existing

    # ---- a first look ------------------------------------------------------------------------
    def preview(self, src: VideoSource, sampling: Sampling) -> VideoIndex | None:
        """An in-memory index of a long video's key frames (``video.preview``), when its visual track is
        not stored yet; None for short or already indexed videos. Nothing is written."""
        if self.stored(src, sampling) is not None:
            return None
        info = probe(src.path)
        if info.duration is None or info.duration < PREVIEW_MIN_SECONDS:
            return None
        frames = iter_preview_frames(
            str(src.path), max_side=sampling.max_side, max_pixels=self.limits.max_pixels
        )
        times, embeddings = self._encode_preview(frames)
        if not times:
            return None
        return VideoIndex(
            folder=self.folder(src, sampling),  # where the full index will be; no thumbnails there yet
            video_path=str(src.path),
            video_sha256=src.sha256,
            title=src.title,
            origin=src.origin,
            model_name=self.model.name,
            model_fingerprint=self.model.fingerprint,
            sampling=sampling.but(fps=1.0 / PREVIEW_SPACING, start=None, end=None, max_frames=None),
            duration=info.duration,
            times=np.asarray(times, dtype=np.float64),
            embeddings=embeddings,
        )

    def _encode_preview(self, frames: Iterator[Frame]) -> tuple[list[float], np.ndarray]:
        """Decode (and preprocess) the looks in one thread while this one encodes those already decoded:
        the preview costs about the larger of the two instead of their sum."""
        import torch

        stop = threading.Event()
        stage = Stage(
            frames,
            lambda f: (f.time, self.model.preprocess([f.image])[0]),
            stop=stop,
            maxsize=64,
            name="preview",
        )
        times: list[float] = []
        embeddings: list[np.ndarray] = []
        try:
            with self.encoder.threads_set():
                for batch in stage.batches(self.encoder.batch_size):
                    times += [t for t, _ in batch]
                    pixels = torch.stack([p for _, p in batch])
                    embeddings.append(self.model.encode_pixels(pixels).numpy())
        finally:
            stage.close()
        if not times:
            return [], np.zeros((0, self.model.embed_dim), dtype=np.float32)
        order = np.argsort(np.asarray(times), kind="stable")
        return [times[i] for i in order], np.concatenate(embeddings).astype(np.float32)[order]

    # ---- building ----------------------------------------------------------------------------
    def build(
        self,
        src: VideoSource,
        sampling: Sampling,
        folder: Path,
        metrics: PipelineMetrics,
        progress: Progress | None = None,
        tracks: TrackOptions | None = None,
    ) -> VideoIndex:
        """Decode, prepare, encode and write one video's visual track (call under ``lock_for(folder)``);
        the frame tracks of ``tracks`` not stored yet are built from the same decode when its grid covers
        theirs (decoded at the largest side any of them needs, scaled down for each)."""
        info = probe(src.path)
        self.encoder.prepare()  # image backbone + engine ready before the first batch (a no-op if done)
        metrics.image_inference = self.model.image_inference
        duration = info.duration
        tee, decode = self.tee(src, sampling, tracks, TrackContext(duration, metrics, progress))
        reader = self.reader(decode)
        with IndexWriter.scratch(folder) as thumbs:
            times, embeddings = self.encode_frames(
                reader, src.path, thumbs, duration, metrics, progress, tee=tee, max_side=sampling.max_side
            )
            if not times:
                raise InputError(f"no frames were sampled from {src.title} (check --start/--end)")
            # the stretch of video the sampled frames cover (less than the window when --max-frames cuts it)
            first = sampling.start or 0.0
            last = sampling.end if sampling.end is not None else (duration or times[-1])
            reach = times[-1] + sampling.nominal_step
            metrics.video_seconds += max(0.0, min(last, duration or last, reach) - first)
            stopped = len(times) >= reader.frame_cap and reach < min(last, duration or last) - 1e-6
            index = VideoIndex(
                folder=folder,
                video_path=str(src.path),
                video_sha256=src.sha256,
                title=src.title,
                origin=src.origin,
                model_name=self.model.name,
                model_fingerprint=self.model.fingerprint,
                sampling=sampling,
                duration=duration,
                times=np.asarray(times, dtype=np.float64),
                embeddings=np.concatenate(embeddings).astype(np.float32),
                stopped_at=times[-1] if stopped else None,  # the frame limit ended sampling first
                extra={"width": info.width, "height": info.height, "fps": info.fps, "codec": info.codec},
            )
            with metrics.stage("write"):
                return self.writer(index, thumbs)

    def tee(
        self, src: VideoSource, sampling: Sampling, tracks: TrackOptions | None, ctx: TrackContext
    ) -> tuple[FrameTee | None, Sampling]:
        """The frame tracks of ``tracks`` that can read the visual decode and are not stored yet, as a
        ``FrameTee`` (None if there are none), and the sampling to decode at."""
        if tracks is None:
            return None, sampling
        unbuilt = [
            t
            for t in self.text.frame_tracks(src, tracks)
            if covers(sampling.but(max_side=10**6), t.sampling(tracks))
        ]
        if not unbuilt:
            return None, sampling
        side = max([sampling.max_side, *(t.sampling(tracks).max_side for t in unbuilt)])
        return FrameTee(unbuilt, src, tracks, ctx, nice=BACKGROUND_NICE), sampling.but(max_side=side)

    def encode_frames(
        self,
        reader: FrameReader,
        path: Path,
        thumbs: Path,
        duration: float | None,
        metrics: PipelineMetrics,
        progress: Progress | None = None,
        *,
        tee: FrameTee | None = None,
        max_side: int | None = None,
    ) -> tuple[list[float], list[np.ndarray]]:
        """Three threads: decode ‖ prepare (thumbnail + preprocess) ‖ encode batches; prepare and encode at
        a lower priority (``BACKGROUND_NICE``), this thread collecting the results. ``tee``: frame tracks
        fed from the same decode (in their own threads); the picture's frames then fit ``max_side``."""
        try:
            frames: Iterator[Frame] = reader(path)  # opens the file now: bad input fails before any thread
        except BaseException:
            if tee is not None:
                tee.abort()
            raise
        if tee is not None:
            frames = tee.feed(frames, cap=reader.frame_cap, max_side=max_side)
        preparer = FramePreparer(self.model.preprocess, thumbs)

        def decoded(frame: Frame) -> Frame:
            metrics.frames_decoded += 1
            return frame

        def prepare(frame: Frame) -> PreparedFrame:
            started = time.perf_counter()
            prepared = preparer(frame)
            metrics.add_time("prepare", time.perf_counter() - started)
            return prepared

        times: list[float] = []
        embeddings: list[np.ndarray] = []
        stop = threading.Event()
        size = self.encoder.batch_size
        with self.encoder.threads_set():
            decoding = Stage(
                timed(frames, functools.partial(metrics.add_time, "decode")),
                decoded,
                stop=stop,
                maxsize=size,
                name="frameseek-decode",
            )
            # the decoder bounds the pipeline: preparing and encoding yield the CPU to it when it is busy
            preparing = Stage(
                decoding, prepare, stop=stop, maxsize=2 * size, name="frameseek-prepare", nice=BACKGROUND_NICE
            )

            def encode(batch: list[PreparedFrame]) -> tuple[list[float], np.ndarray]:
                with metrics.stage("encode"):
                    vectors = self.encoder(batch)
                metrics.frames_encoded += len(batch)
                return [frame.time for frame in batch], vectors

            # up to size frames a batch: what is ready, none waited for
            encoding = Stage(
                preparing.batches(size),
                encode,
                stop=stop,
                maxsize=2,
                name="frameseek-encode",
                nice=BACKGROUND_NICE,
            )
            try:
                for batch_times, vectors in encoding:
                    embeddings.append(vectors)
                    times.extend(batch_times)
                    if progress:
                        progress("index", batch_times[-1], duration)
            except BaseException:
                if tee is not None:
                    tee.abort()
                raise
            finally:
                encoding.close()
                preparing.close()
                decoding.close()
            if tee is not None:
                with metrics.stage("tracks-after-picture"):  # what the frame tracks still had to do
                    tee.close()
        return times, embeddings
