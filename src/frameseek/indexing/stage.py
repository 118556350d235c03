"""Threaded stages with bounded queues: ``decode ‖ prepare ‖ encode`` while indexing a video.

Each stage is a daemon thread that maps ``work`` over an input iterator and puts the results on a bounded
queue (memory stays constant, however long the video). An exception in a stage travels down the queue and
is raised where the next stage reads it, so errors surface in the caller's thread with their own message.
A shared ``stop`` event ends every stage early (the consumer failed or was interrupted).
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Generic, TypeVar

T = TypeVar("T")
U = TypeVar("U")

_END = object()
"""Put on a stage's queue after its last result."""


def put(items: queue.Queue[Any], item: Any, stop: threading.Event) -> None:
    """``items.put(item)`` that gives up once ``stop`` is set (the reader may be gone)."""
    while not stop.is_set():
        try:
            items.put(item, timeout=0.1)
            return
        except queue.Full:
            continue


def lower_thread_priority(steps: int) -> bool:
    """Raise the calling thread's nice value by ``steps`` (Linux schedules threads one by one; elsewhere,
    or where it is refused, nothing changes). Only for threads that end with their stage: a lowered
    priority cannot be raised again without privileges."""
    if sys.platform != "linux":  # elsewhere a native thread id is not a scheduling id
        return False
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + steps)
    except OSError:
        return False
    return True


def timed(items: Iterable[T], record: Callable[[float], None]) -> Iterator[T]:
    """``items``, calling ``record(seconds)`` with the time each ``next()`` took (the producer's cost)."""
    iterator = iter(items)
    try:
        while True:
            started = time.perf_counter()
            item = next(iterator, _END)
            record(time.perf_counter() - started)
            if item is _END:
                return
            yield item  # type: ignore[misc]
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()


class Stage(Generic[U]):
    """``work`` over ``items`` in a daemon thread; iterate the stage to read its results in order."""

    def __init__(
        self,
        items: Iterable[T],
        work: Callable[[T], U],
        *,
        stop: threading.Event,
        maxsize: int,
        name: str,
        nice: int = 0,
    ) -> None:
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=maxsize)
        self._stop = stop
        self._nice = nice
        self._thread = threading.Thread(target=self._run, args=(items, work), name=name, daemon=True)
        self._thread.start()

    def _run(self, items: Iterable[T], work: Callable[[T], U]) -> None:
        if self._nice > 0:
            lower_thread_priority(self._nice)
        iterator = iter(items)
        try:
            for item in iterator:
                if self._stop.is_set():
                    return
                put(self._queue, work(item), self._stop)
            put(self._queue, _END, self._stop)
        except BaseException as exc:  # handed to the reader, which raises it in its own thread
            put(self._queue, exc, self._stop)
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()

    def __iter__(self) -> Iterator[U]:
        while True:
            try:
                item = self._queue.get(timeout=0.1)
            except queue.Empty:
                if self._stop.is_set():
                    return
                continue
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def batches(self, size: int) -> Iterator[list[U]]:
        """The results in order, in lists of at most ``size``: each list waits for its first result only,
        then takes what is already queued. A consumer that keeps up starts on the first result and
        finishes right after the last, instead of waiting for full lists at both ends; one that falls
        behind gets full lists."""
        ended = False
        for first in self:
            batch = [first]
            while len(batch) < size:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _END:
                    ended = True
                    break
                if isinstance(item, BaseException):
                    raise item
                batch.append(item)
            yield batch
            if ended:
                return

    def close(self, timeout: float = 10.0) -> None:
        """Stop the thread (and, through ``stop``, every stage sharing it) and wait for it."""
        self._stop.set()
        while True:  # unblock a put() that is waiting for room
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._thread.join(timeout=timeout)


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Lists of ``size`` consecutive items (the last one shorter)."""
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
