"""Index jobs: an id, a state, progress, cancel; run one at a time on a worker thread (queries are never
starved by indexing), each state written atomically to ``FRAMESEEK_HOME/service/jobs/<id>.json``.

After a restart, a job that was queued or running when the server stopped is queued again (its finished
videos are reused from their stored indexes, so it resumes where it was, video by video); one that was
already started ``MAX_ATTEMPTS`` times is marked failed instead. The same worker also runs searches that
have to build an index first (``exclusive``), so that at most one heavy build runs at any time.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError

from frameseek.api import FrameseekError, one_line, write_text_atomic
from frameseek.service.errors import ERROR_CHARS, Conflict, NotFound
from frameseek.service.schemas import IndexRequest, Job

log = logging.getLogger("frameseek.service")

MAX_ATTEMPTS = 3
"""Runs a job gets (the first plus resumes after crashes) before a restart marks it failed."""
KEEP_FINISHED = 1000
"""Finished jobs kept on disk (oldest removed at start)."""
PROGRESS_WRITE_S = 1.0
"""Progress is written at most this often (state changes always)."""

_ID = re.compile(r"[0-9a-f]{32}")
T = TypeVar("T")


class JobCancelled(Exception):
    """Raised from a progress callback to stop a job that was cancelled (or a server that stops)."""


class Control:
    """What a running job reports to (progress, videos done) and asks whether it should stop."""

    def __init__(self, manager: JobManager, job_id: str) -> None:
        self.manager = manager
        self.job_id = job_id
        self.cancel = threading.Event()
        self._written = 0.0

    def check(self) -> None:
        if self.cancel.is_set() or self.manager.stopping.is_set():
            raise JobCancelled("cancelled")

    def progress(self, stage: str, done: float, total: float | None) -> None:
        """The ``frameseek.progress.Progress`` callback of the job's work."""
        self.check()
        now = time.monotonic()
        with self.manager.lock:
            job = self.manager.jobs[self.job_id]
            p = job.progress
            p.stage, p.done, p.total = stage, float(done), None if total is None else float(total)
            part = min(1.0, done / total) if stage in ("index", "screen", "speech") and total else 0.0
            p.fraction = round(min(1.0, (p.videos_done + part) / max(1, p.videos_total or 1)), 4)
            job.updated = time.time()
            if now - self._written >= PROGRESS_WRITE_S:
                self._written = now
                self.manager.save(job)

    def videos(self, done: int, total: int) -> None:
        self.check()
        with self.manager.lock:
            job = self.manager.jobs[self.job_id]
            job.progress.videos_done, job.progress.videos_total = done, total
            job.progress.fraction = round(done / max(1, total), 4)
            job.updated = time.time()
            self.manager.save(job)


Runner = Callable[[IndexRequest, Control], dict[str, Any]]


class JobManager:
    """Jobs in memory and on disk, and the one worker thread that runs them."""

    def __init__(self, folder: Path, run: Runner) -> None:
        self.folder = folder
        self.run = run
        self.lock = threading.RLock()
        self.jobs: dict[str, Job] = {}
        self.controls: dict[str, Control] = {}
        self.stopping = threading.Event()
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="frameseek-index")

    # ---- storage -------------------------------------------------------------------------------
    def save(self, job: Job) -> None:
        write_text_atomic(self.folder / f"{job.id}.json", job.model_dump_json(indent=1) + "\n")

    def recover(self) -> list[str]:
        """Load stored jobs; queue again those a stop interrupted (or fail them); returns the requeued ids."""
        self.folder.mkdir(parents=True, exist_ok=True)
        loaded: list[Job] = []
        for path in self.folder.glob("*.json"):
            if not _ID.fullmatch(path.stem):
                continue
            try:
                loaded.append(Job.model_validate_json(path.read_text(encoding="utf-8")))
            except (OSError, ValueError, ValidationError) as err:
                log.warning("ignoring unreadable job file %s: %s", path.name, one_line(err, ERROR_CHARS))
        loaded.sort(key=lambda j: j.created)
        finished = [j for j in loaded if j.state in ("done", "failed", "cancelled")]
        for old in finished[: max(0, len(finished) - KEEP_FINISHED)]:
            (self.folder / f"{old.id}.json").unlink(missing_ok=True)
            loaded.remove(old)
        requeued = []
        for job in loaded:
            self.jobs[job.id] = job
            if job.state in ("queued", "running"):
                if job.attempts >= MAX_ATTEMPTS:
                    self._finish(job, "failed", error=f"the server stopped {job.attempts} times while it ran")
                    continue
                job.state, job.updated = "queued", time.time()
                self.save(job)
                self._enqueue(job.id)
                requeued.append(job.id)
        return requeued

    # ---- the API -------------------------------------------------------------------------------
    def submit(self, request: IndexRequest) -> Job:
        now = time.time()
        job = Job(id=uuid.uuid4().hex, state="queued", created=now, updated=now, request=request)
        with self.lock:
            self.jobs[job.id] = job
            self.save(job)
        self._enqueue(job.id)
        return job.model_copy(deep=True)

    def get(self, job_id: str) -> Job:
        with self.lock:
            job = self.jobs.get(job_id) if _ID.fullmatch(job_id) else None
            if job is None:
                raise NotFound(f"no such job: {job_id[:64]}")
            return job.model_copy(deep=True)

    def list(self, limit: int = 100) -> list[Job]:
        with self.lock:
            jobs = sorted(self.jobs.values(), key=lambda j: j.created, reverse=True)[:limit]
            return [j.model_copy(deep=True) for j in jobs]

    def cancel(self, job_id: str) -> Job:
        job = self.get(job_id)
        with self.lock:
            job = self.jobs[job.id]
            if job.state in ("done", "failed", "cancelled"):
                raise Conflict(f"job {job.id} is already {job.state}")
            job.cancel_requested = True
            control = self.controls.get(job.id)
            if control is not None:
                control.cancel.set()  # the running job stops at its next progress report
                self.save(job)
            if job.state == "queued":
                self._finish(job, "cancelled")
            return job.model_copy(deep=True)

    def exclusive(self, work: Callable[[], T]) -> T:
        """Run ``work`` on the index worker (after the jobs queued before it) and return its result."""
        future: Future[T] = self.executor.submit(work)
        return future.result()

    def shutdown(self) -> None:
        """Stop: the running job ends at its next progress report and stays queued for the next start."""
        self.stopping.set()
        self.executor.shutdown(wait=False, cancel_futures=True)

    # ---- the worker ----------------------------------------------------------------------------
    def _enqueue(self, job_id: str) -> None:
        with contextlib.suppress(RuntimeError):  # the executor is shut down: the job waits for a restart
            self.executor.submit(self._execute, job_id)

    def _finish(self, job: Job, state: Any, *, result: Any = None, error: str | None = None) -> None:
        job.state, job.result, job.error = state, result, error
        job.finished = job.updated = time.time()
        if state == "done":
            job.progress.fraction = 1.0
        self.save(job)

    def _execute(self, job_id: str) -> None:
        with self.lock:
            job = self.jobs[job_id]
            if job.state != "queued" or self.stopping.is_set():
                return
            control = Control(self, job_id)
            self.controls[job_id] = control
            job.state, job.attempts = "running", job.attempts + 1
            job.started = job.updated = time.time()
            self.save(job)
            request = job.request.model_copy(deep=True)
        try:
            result = self.run(request, control)
        except BaseException as exc:
            self._failed(job_id, control, exc)
            if not isinstance(exc, Exception):
                raise
        else:
            with self.lock:
                self._finish(self.jobs[job_id], "done", result=result)
        finally:
            with self.lock:
                self.controls.pop(job_id, None)

    def _failed(self, job_id: str, control: Control, exc: BaseException) -> None:
        with self.lock:
            job = self.jobs[job_id]
            if control.cancel.is_set():
                self._finish(job, "cancelled")
            elif self.stopping.is_set():
                job.state, job.updated = "queued", time.time()  # resumed at the next start
                self.save(job)
            elif isinstance(exc, FrameseekError):
                self._finish(job, "failed", error=one_line(exc, ERROR_CHARS))
            else:
                log.error("index job %s failed", job_id, exc_info=exc)
                self._finish(job, "failed", error=f"internal error ({type(exc).__name__})")
