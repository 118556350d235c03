"""One decode for every frame track: ``FrameTee`` hands the frames of one decoding pass (the picture's, in
``IndexRunner.build``, or one shared pass in ``TextTrackBuilder.tracks``) to every frame track that still
has to be built, each on its own grid and at its own size, through bounded queues; ``shared_decode`` is that
pass when the picture is stored already. Adding a frame track therefore never decodes the video again.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from frameseek.errors import FrameseekError
from frameseek.indexing.tracks import FrameTrack, TrackContext, TrackOptions
from frameseek.video.sampling import Sampling
from frameseek.video.sources import VideoSource

if TYPE_CHECKING:
    from frameseek.video.decode import Frame


def covers(base: Sampling, wanted: Sampling) -> bool:
    """Whether frames sampled with ``base`` contain exactly the grid frames ``wanted`` keeps: both on a
    grid from the video's start over the whole video, ``base``'s rate a whole multiple of ``wanted``'s
    (each of ``wanted``'s grid points is one of ``base``'s, so the frame kept for it is the same), and
    ``base``'s frames at least as large (a consumer's frames are scaled down, never up)."""
    if base.scene or wanted.scene or base.max_frames is not None or wanted.max_frames is not None:
        return False
    if (
        (base.start or 0.0) != 0.0
        or (wanted.start or 0.0) != 0.0
        or base.end is not None
        or wanted.end is not None
    ):
        return False
    ratio = base.fps / wanted.fps
    return ratio >= 1.0 - 1e-9 and abs(ratio - round(ratio)) < 1e-6 and base.max_side >= wanted.max_side


def shared_sampling(visual: Sampling | None, wanted: Iterable[Sampling]) -> Sampling | None:
    """One grid sampling whose frames cover ``visual`` and as many of ``wanted`` as possible: the
    visual's (or the fastest wanted rate), at the largest side any of them needs; None if none."""
    wanted = list(wanted)
    if visual is None:
        grids = [w for w in wanted if covers(w.but(max_side=10**6), w)]
        if not grids:
            return None
        visual = max(grids, key=lambda w: w.fps)
    side = max([visual.max_side, *(w.max_side for w in wanted if covers(visual.but(max_side=10**6), w))])
    return visual.but(max_side=side)


def fit_frame(frame: Frame, max_side: int) -> Frame:
    """``frame`` scaled down (area averaging) to fit ``max_side``, as ``video.decode`` fits a decode;
    unchanged when it fits already."""
    height, width = frame.image.shape[:2]
    if max(width, height) <= max_side:
        return frame
    import cv2

    from frameseek.video.decode import Frame as DecodedFrame

    scale = max_side / max(width, height)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return DecodedFrame(frame.time, cv2.resize(frame.image, size, interpolation=cv2.INTER_AREA))


class _Stopped(Exception):
    """Raised inside a consumer's frames when the shared decode ended before the video did."""


_DONE = object()


class _Consumer:
    """One frame track reading the shared decode in its own thread, through a bounded queue."""

    def __init__(
        self,
        track: FrameTrack[Any],
        src: VideoSource,
        options: TrackOptions,
        ctx: TrackContext,
        stop: threading.Event,
        maxsize: int,
        nice: int,
    ) -> None:
        from frameseek.video.decode import GridSampler

        self.track = track
        self.sampling = track.sampling(options)
        self.grid = GridSampler(self.sampling.fps)
        self.queue: queue.Queue[Any] = queue.Queue(maxsize=maxsize)
        self.stop = stop
        self.finished = threading.Event()
        self.error: BaseException | None = None
        self._nice = nice
        self.thread = threading.Thread(
            target=self._run, args=(src, options, ctx), name=f"frameseek-{track.name}", daemon=True
        )
        self.thread.start()

    def _frames(self) -> Iterator[Frame]:
        while True:
            try:
                item = self.queue.get(timeout=0.1)
            except queue.Empty:
                if self.stop.is_set():
                    raise _Stopped from None
                continue
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def _run(self, src: VideoSource, options: TrackOptions, ctx: TrackContext) -> None:
        from frameseek.indexing.stage import lower_thread_priority

        if self._nice > 0:
            lower_thread_priority(self._nice)
        try:
            self.track.get_from(self._frames(), src, options, ctx)
        except BaseException as exc:  # nothing stored: the track's own get builds it (or says why not)
            self.error = exc
        finally:
            self.finished.set()

    def offer(self, frame: Frame) -> None:
        if self.finished.is_set() or not self.grid.accept(frame.time):
            return
        self.put(fit_frame(frame, self.sampling.max_side))

    def put(self, item: Any) -> None:
        while not (self.finished.is_set() or self.stop.is_set()):
            try:
                self.queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue


class FrameTee:
    """One decode feeding several frame tracks: ``feed(frames)`` passes every decoded frame on (to the
    visual pass, or to nothing) and offers it to each consumer whose grid keeps it, scaled to the
    consumer's size, through a bounded queue (a slow consumer slows the decode; memory stays flat).

    Each consumer builds and stores its value in its own thread once the frames end; when they end early
    (the frame limit, an error, an interruption) nothing is stored, and the track's own ``get`` decodes
    later. ``close`` waits for the consumers."""

    def __init__(
        self,
        tracks: Iterable[FrameTrack[Any]],
        src: VideoSource,
        options: TrackOptions,
        ctx: TrackContext,
        *,
        maxsize: int = 8,
        nice: int = 0,
    ) -> None:
        self.stop = threading.Event()
        self.consumers = [_Consumer(t, src, options, ctx, self.stop, maxsize, nice) for t in tracks]

    @property
    def names(self) -> list[str]:
        return [c.track.name for c in self.consumers]

    def feed(
        self, frames: Iterable[Frame], cap: int | None = None, max_side: int | None = None
    ) -> Iterator[Frame]:
        """``frames``, each offered to the consumers first, then passed on scaled to ``max_side``.
        ``cap``: the reader's frame cap: reaching it means the video was cut short (nothing is stored)."""
        seen = 0
        complete = False
        try:
            for frame in frames:
                seen += 1
                for consumer in self.consumers:
                    consumer.offer(frame)
                yield frame if max_side is None else fit_frame(frame, max_side)
            complete = cap is None or seen < cap
        finally:
            end: Any = _DONE if complete else _Stopped()
            for consumer in self.consumers:
                consumer.put(end)

    def close(self, timeout: float | None = None) -> None:
        """Wait for every consumer to store its value (or give up)."""
        for consumer in self.consumers:
            consumer.put(_Stopped())  # a no-op for one that has its end already queued or has finished
            consumer.thread.join(timeout)

    def abort(self) -> None:
        self.stop.set()
        for consumer in self.consumers:
            consumer.thread.join(10.0)


def unbuilt(tracks: Iterable[Any], src: VideoSource, options: TrackOptions) -> list[FrameTrack[Any]]:
    """The frame tracks among ``tracks`` whose value for ``src`` is not stored yet."""
    found = []
    for track in tracks:
        if isinstance(track, FrameTrack):
            try:
                if track.stored_value(src, options) is None:
                    found.append(track)
            except FrameseekError:  # its key cannot be made (a missing engine): its get says so
                continue
    return found


def shared_decode(
    tracks: list[FrameTrack[Any]],
    src: VideoSource,
    options: TrackOptions,
    ctx: TrackContext,
    *,
    frame_limit: int,
    max_pixels: int,
) -> list[str]:
    """Build ``tracks`` (frame tracks not stored yet) from one decode, those whose grid one shared
    sampling covers; returns their names. A failure leaves them unbuilt: each track's own ``get`` then
    tries and reports it."""
    from frameseek.indexing.reader import FrameReader

    if len(tracks) < 2:  # one track decodes for itself: nothing to share
        return []
    samplings = [t.sampling(options) for t in tracks]
    base = shared_sampling(None, samplings)
    if base is None:
        return []
    covered = [t for t, s in zip(tracks, samplings, strict=True) if covers(base, s)]
    if len(covered) < 2:
        return []
    reader = FrameReader(base, frame_limit=frame_limit, max_pixels=max_pixels)
    tee = FrameTee(covered, src, options, ctx)
    try:
        for _ in tee.feed(reader(src.path), cap=reader.frame_cap):
            pass
    except FrameseekError:
        tee.abort()
        return []
    except BaseException:
        tee.abort()
        raise
    tee.close()
    return tee.names
