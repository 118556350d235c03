"""Indexing on a Ray cluster: a pool of actors that each load the model once, one video per job.

```
driver (Searcher.add)                                   Ray actors (IndexWorker, one per CPU slot)
  RunnerSpec ──▶ one per actor, when it starts ──────▶   spec.build() once: the model, the runner
  jobs ──▶ at most max_in_flight submitted ──────────▶   IndexRunner.get(job)
  ray.wait ◀── WorkResult (index folder, text, metrics) ◀── atomic folder + lock under FRAMESEEK_HOME
  load the index from disk ──▶ JobOutcome ──▶ add_to_library (on the driver)
```

- **Unit of work**: one whole video. Long videos are not split into chunks (a chunked index would have to
  equal a single pass frame for frame; the grid and scene samplers carry state across the video).
- **Where indexes go**: the workers get the driver's FRAMESEEK_HOME (``home``) and every ``FRAMESEEK_*``
  setting in their environment and write through the same ``IndexRunner.get`` (atomic folder, file lock:
  two workers on one video build it once). The driver then loads each index from disk, so on a
  multi-machine cluster ``home`` and the videos must be on a path every node shares.
- **Failures**: a ``FrameseekError`` (a bad video) is not retried and comes back as
  ``JobOutcome(error=one line)`` with ``keep_going`` (raised without it). A worker that dies (crash, OOM
  kill, lost node) is replaced and its job retried up to ``retries`` times. Any other exception on a worker
  is a bug: not retried; reported as an error line with ``keep_going``, raised without it.
- **Back-pressure**: at most ``max_in_flight`` jobs are submitted at once (default: one per worker, so a
  worker never holds a queue behind a job that might crash it); the rest wait on the driver.
  A worker found dead when a job reaches it counts as that job's crash; with ``max_in_flight`` above the
  number of workers, every job queued on a worker that dies counts one.
- **Progress**: ``progress("index", videos_done, videos_total)`` on the driver.
- **Metrics**: the workers' stage times and counters are summed; ``ray_start`` is joining the cluster and
  the workers loading the model, ``index`` the driver's wall time from the first job to the last.

Ray is optional (``pip install 'frameseek[ray]'``): it is imported when a ``RayDistributor`` is made,
never when frameseek is. One module because the worker class travels to the nodes by reference, so the
driver's loop and the actor it starts are read together.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import logging
import os
import pickle
import socket
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from frameseek import settings
from frameseek.errors import FrameseekError, IndexError_, InputError, ModelError, SourceError, one_line
from frameseek.indexing.distributor import IndexJob, JobOutcome
from frameseek.indexing.runner import IndexRunner
from frameseek.indexing.spec import RunnerSpec, portable_model
from frameseek.indexing.text_tracks import TextTracks
from frameseek.metrics import PipelineMetrics
from frameseek.models.registry import AUTO_MODEL, PRESETS
from frameseek.progress import Progress
from frameseek.storage.store import try_load
from frameseek.system.devices import check_device_spec

START_TIMEOUT_S = 600.0
"""How long the driver waits for new workers to load their model (a cluster without free CPUs waits)."""

INSTALL_HINT = "indexing on Ray needs the ray extra: install frameseek[ray] (pip install 'frameseek[ray]')"


class WorkerCrashError(FrameseekError):
    """A Ray worker died (crash, out-of-memory kill, lost node) on the same video more often than allowed."""


def import_ray() -> Any:
    """The ``ray`` module, or a one-line InputError saying how to install it."""
    try:
        return importlib.import_module("ray")
    except ImportError:
        raise InputError(INSTALL_HINT) from None


def _portable(exc: FrameseekError) -> FrameseekError:
    """``exc`` if it survives pickling (it crosses to the driver), else a FrameseekError with its line."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        plain = FrameseekError(str(exc))
        plain.exit_code = exc.exit_code
        return plain
    return exc


@dataclass
class WorkResult:
    """What a worker sends back for one job; the visual index stays on disk (the driver loads it)."""

    folder: str | None = None
    text: TextTracks = field(default_factory=TextTracks)
    error: FrameseekError | None = None
    metrics: PipelineMetrics = field(default_factory=PipelineMetrics)
    node: str = ""


class IndexWorker:
    """The body of one Ray actor: builds its runner from the spec (the model loaded once), then indexes
    one video per ``index`` call."""

    def __init__(self, spec: RunnerSpec) -> None:
        self.node = socket.gethostname()
        self.runner = spec.build()  # a GPU worker sees only its own GPU: cuda:0; NVDEC on a CUDA model
        self.model = self.runner.model  # loaded now: describe() reports it before any job

    def describe(self) -> dict[str, str]:
        """What the driver checks once: the model's fingerprint and where indexes are written."""
        return {
            "fingerprint": self.model.fingerprint,
            "home": str(settings.home()),
            "node": self.node,
            "pid": str(os.getpid()),
        }

    def index(self, job: IndexJob) -> WorkResult:
        metrics = PipelineMetrics()
        try:
            if not job.source.path.is_file():
                raise SourceError(
                    f"{job.source.path} is not readable on Ray node {self.node}: every node needs the videos "
                    "at the same path (a shared folder)"
                )
            index = self.runner.get(job.source, job.sampling, metrics, tracks=job.tracks)
            text = self.runner.text_tracks(job.source, index.duration, job.tracks, metrics)
        except FrameseekError as exc:
            return WorkResult(error=_portable(exc), metrics=metrics, node=self.node)
        return WorkResult(folder=str(index.folder), text=text, metrics=metrics, node=self.node)


def merge_metrics(into: PipelineMetrics, part: PipelineMetrics) -> None:
    """Add one worker's job metrics to the driver's (stage times are summed over workers; the driver
    times the ``index`` stage itself: the wall time of the whole run)."""
    for name, seconds in part.stages.items():
        if name != "index":
            into.add_time(name, seconds)
    for name in (
        "frames_decoded",
        "frames_encoded",
        "video_seconds",
        "audio_seconds",
        "asr_seconds",
        "ocr_frames",
        "ocr_frames_read",
        "ocr_seconds",
    ):
        setattr(into, name, getattr(into, name) + getattr(part, name))
    into.index_reused = into.index_reused or part.index_reused


@dataclass
class _Slot:
    actor: Any
    busy: int = 0


class RayDistributor:
    """Runs index jobs on a Ray cluster (implements ``Distributor``).

    ``address``: None starts a local cluster (``num_cpus`` cores, default all); ``"auto"`` joins the cluster
    ``RAY_ADDRESS`` (or a local ``ray start``) names; else a ``host:port`` or ``ray://host:port`` address.
    A process already connected to Ray uses that connection. Workers build their runner from the
    ``RunnerSpec`` that ``run`` receives; ``model`` (a preset name or checkpoint folder), when given, is
    what they load instead of the spec's (the driver's model must have the same fingerprint). ``home``:
    where workers write indexes (default: this process's FRAMESEEK_HOME; a shared path on a multi-machine
    cluster). ``workers``: how many actors (default: the cluster's free CPUs / ``cpus_per_worker`` when
    the pool starts, at least one, never more than there are videos).
    """

    def __init__(
        self,
        address: str | None = None,
        *,
        model: str | None = None,
        home: Path | None = None,
        num_cpus: int | None = None,
        workers: int | None = None,
        cpus_per_worker: float = 1,
        max_in_flight: int | None = None,
        retries: int = 1,
        device: str | None = None,
        gpus_per_worker: float = 1,
    ) -> None:
        self.ray = import_ray()
        if address is not None and not address.strip():
            raise InputError("give a Ray address (host:port, ray://host:port or auto)")
        if num_cpus is not None and (address is not None or num_cpus < 1):
            raise InputError("num_cpus is a whole number >= 1 and only applies to a local Ray cluster")
        if workers is not None and workers < 1:
            raise InputError(f"workers must be >= 1, got {workers}")
        if cpus_per_worker <= 0:
            raise InputError(f"cpus_per_worker must be > 0, got {cpus_per_worker}")
        if max_in_flight is not None and max_in_flight < 1:
            raise InputError(f"max_in_flight must be >= 1, got {max_in_flight}")
        if retries < 0:
            raise InputError(f"retries must be >= 0, got {retries}")
        self.address = address.strip() if address is not None else None
        self.model = portable_model(model) if model is not None else None
        self.home = (home if home is not None else settings.home()).expanduser().resolve()
        self.num_cpus = num_cpus
        self.workers = workers
        self.cpus_per_worker = cpus_per_worker
        self.max_in_flight = max_in_flight
        self.retries = retries
        check_device_spec(device)
        # workers run where --device says; a CUDA worker asks Ray for gpus_per_worker GPUs, and Ray makes
        # them its cuda:0 (CUDA_VISIBLE_DEVICES), so cuda:N names no particular GPU on a cluster
        wanted = (device or "").strip().lower()
        self.device = "cuda" if wanted.startswith("cuda") else (wanted or None)
        if gpus_per_worker <= 0:
            raise InputError(f"gpus_per_worker must be > 0, got {gpus_per_worker}")
        self.gpus_per_worker = gpus_per_worker if self.device == "cuda" else 0
        self._owns_cluster = False
        self._slots: list[_Slot] = []
        self._spec: RunnerSpec | None = None  # what the pool's workers were built from
        self._fingerprint: str | None = None  # the driver's model's

    # ---- the cluster and the pool ---------------------------------------------------------------
    def connect(self) -> None:
        """Join (or start) the cluster, once; a process already connected keeps its connection."""
        ray = self.ray
        if ray.is_initialized():
            return
        quiet: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING}
        try:
            if self.address is None:
                ray.init(address="local", num_cpus=self.num_cpus, include_dashboard=False, **quiet)
                self._owns_cluster = True
            elif self.address.startswith("ray://"):
                ray.init(address=self.address)
            else:
                ray.init(address=self.address, **quiet)
        except (ConnectionError, TimeoutError, ValueError, RuntimeError) as exc:
            where = "a local Ray cluster" if self.address is None else f"the Ray cluster at {self.address}"
            hint = ""
            if "authtoken" in _chain_text(exc).lower() and not os.environ.get("RAY_AUTH_MODE"):
                hint = " (the cluster asks for its token: set RAY_AUTH_MODE=token, or use --ray-address auto)"
            raise InputError(f"cannot start or reach {where}: {one_line(exc, 300)}{hint}") from None

    def start(self, spec: RunnerSpec, jobs: int | None = None, *, local: IndexRunner | None = None) -> int:
        """Connect and make sure the pool has its workers, each with its runner built from ``spec`` (the
        model loaded); returns the pool's size. Workers run on this distributor's device and must load a
        model with the fingerprint of ``local``'s (else of the spec's model here); ``auto`` is the preset
        the driver chose (a node may cache other weights).
        """
        self.connect()
        ray = self.ray
        driver = local if local is not None else spec.build()
        fingerprint = driver.encoder.fingerprint
        model = self.model or spec.model
        if model == AUTO_MODEL and driver.model.name in PRESETS:
            model = driver.model.name
        worker_spec = spec.runner_key.but(model=model, device=self.device)
        if worker_spec != self._spec:
            self._kill_all()
            self._spec = worker_spec
        self._fingerprint = fingerprint
        free = int(ray.available_resources().get("CPU", 0) // self.cpus_per_worker)  # others' use counts
        want = self.workers or max(1, len(self._slots) + free)
        if self.max_in_flight is not None:
            want = min(want, self.max_in_flight)
        if jobs is not None:
            want = min(want, max(1, jobs))
        new = [self._spawn() for _ in range(want - len(self._slots))]
        if new:
            self._check(new, fingerprint)
            self._slots += [_Slot(actor) for actor in new]
        return len(self._slots)

    def _spawn(self) -> Any:
        assert self._spec is not None
        env = {k: v for k, v in os.environ.items() if k.startswith("FRAMESEEK_")}
        env["FRAMESEEK_HOME"] = str(self.home)
        actor_class = self.ray.remote(IndexWorker)
        return actor_class.options(
            num_cpus=self.cpus_per_worker,
            num_gpus=self.gpus_per_worker,
            max_restarts=0,  # a dead worker is replaced here, and its job retried, by run()
            runtime_env={"env_vars": env},
            scheduling_strategy="SPREAD",
        ).remote(self._spec)

    @property
    def _worker_model(self) -> str:
        return self._spec.model if self._spec is not None else str(self.model)

    def _check(self, actors: list[Any], fingerprint: str) -> None:
        """Wait for new workers to load the model; one line if they cannot, or load another model."""
        ray = self.ray
        try:
            infos = ray.get([a.describe.remote() for a in actors], timeout=START_TIMEOUT_S)
        except ray.exceptions.GetTimeoutError:
            self._kill(actors)
            raise InputError(
                f"Ray workers did not start within {START_TIMEOUT_S:.0f} s (does the cluster have free CPUs?)"
            ) from None
        except ray.exceptions.RayError as exc:
            self._kill(actors)
            raise ModelError(
                f"a Ray worker could not load model {self._worker_model!r}: {_cause_line(exc)}"
            ) from None
        for info in infos:
            if info["fingerprint"] != fingerprint:
                self._kill(actors)
                raise ModelError(
                    f"the Ray worker on {info['node']} loaded model {self._worker_model!r} with fingerprint "
                    f"{info['fingerprint']}, not this process's {fingerprint}: give the same checkpoint "
                    "folder on a path every node shares"
                )

    def _kill(self, actors: Sequence[Any]) -> None:
        for actor in actors:
            with contextlib.suppress(Exception):  # already dead, or the cluster is gone: nothing to stop
                self.ray.kill(actor)

    def _kill_all(self) -> None:
        self._kill([slot.actor for slot in self._slots])
        self._slots.clear()

    def close(self) -> None:
        """Stop the workers; shut the cluster down if this distributor started it."""
        if self.ray.is_initialized():
            self._kill_all()
            if self._owns_cluster:
                self.ray.shutdown()
        self._slots.clear()
        self._owns_cluster = False

    def __enter__(self) -> RayDistributor:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # ---- running jobs -----------------------------------------------------------------------------
    def run(
        self,
        spec: RunnerSpec,
        jobs: Sequence[IndexJob],
        metrics: PipelineMetrics,
        progress: Progress | None = None,
        *,
        keep_going: bool = False,
        local: IndexRunner | None = None,
    ) -> Iterator[JobOutcome]:
        """One ``JobOutcome`` per job, in the order they finish (``local``: see ``Distributor``)."""
        if not jobs:
            return
        ray = self.ray
        with metrics.stage("ray_start"):  # joining the cluster, workers loading the model: not indexing
            self.start(spec, len(jobs), local=local)
        started = time.perf_counter()
        limit = self.max_in_flight or len(self._slots)
        queue: deque[tuple[int, int]] = deque((i, 0) for i in range(len(jobs)))  # (job, crashes so far)
        pending: dict[Any, tuple[int, int, _Slot, Any]] = {}  # ref → (job, crashes, slot, its actor)
        done = 0
        if progress:
            progress("index", 0.0, float(len(jobs)))
        try:
            while queue or pending:
                while queue and len(pending) < limit:
                    i, crashes = queue.popleft()
                    slot = min(self._slots, key=lambda s: s.busy)
                    slot.busy += 1
                    pending[slot.actor.index.remote(jobs[i])] = (i, crashes, slot, slot.actor)
                ready, _ = ray.wait(list(pending), num_returns=1)
                i, crashes, slot, actor = pending.pop(ready[0])
                slot.busy -= 1
                outcome = self._outcome(ready[0], jobs[i], crashes, slot, actor, metrics, keep_going)
                if outcome is None:  # the worker died: retry the job on its replacement
                    queue.appendleft((i, crashes + 1))
                    continue
                done += 1
                if progress:
                    progress("index", float(done), float(len(jobs)))
                yield outcome
        finally:
            for ref in pending:  # best effort: a running job finishes (its index is still atomic)
                with contextlib.suppress(Exception):
                    ray.cancel(ref)
            metrics.add_time("index", time.perf_counter() - started)

    def _outcome(
        self,
        ref: Any,
        job: IndexJob,
        crashes: int,
        slot: _Slot,
        actor: Any,
        metrics: PipelineMetrics,
        keep_going: bool,
    ) -> JobOutcome | None:
        """The job's outcome, or None when its worker died and the job should run again."""
        ray = self.ray
        died = (
            ray.exceptions.RayActorError,
            ray.exceptions.WorkerCrashedError,
            ray.exceptions.OutOfMemoryError,
            ray.exceptions.ObjectLostError,
            ray.exceptions.NodeDiedError,
        )
        try:
            result: WorkResult = ray.get(ref)
        except died as exc:
            self._replace(slot, actor)
            if crashes < self.retries:
                return None
            return _failed(
                job,
                WorkerCrashError(
                    f"{job.source.title}: the Ray worker indexing it died ({crashes + 1} "
                    f"{'try' if crashes == 0 else 'tries'}; last: {_cause_line(exc)})"
                ),
                keep_going,
            )
        except ray.exceptions.RayTaskError as exc:  # a bug in the worker's code, not a bad video
            cause = getattr(exc, "cause", None) or exc
            if not keep_going:
                raise
            return JobOutcome(
                job, error=f"unexpected {type(cause).__name__} on a Ray worker: {one_line(cause, 300)}"
            )
        merge_metrics(metrics, result.metrics)
        if result.error is not None:
            return _failed(job, result.error, keep_going)
        assert result.folder is not None
        index = try_load(Path(result.folder))
        if index is None:
            return _failed(
                job,
                IndexError_(
                    f"{job.source.title}: the index the Ray worker on {result.node} wrote to {result.folder} "
                    "is not here; on a multi-machine cluster give --home a folder every node shares"
                ),
                keep_going,
            )
        if index.model_fingerprint != self._fingerprint:
            return _failed(
                job, IndexError_(f"{job.source.title}: the worker's index is for another model"), keep_going
            )
        if index.video_path != str(job.source.path):  # stored under another name (a copy, a move)
            src = job.source
            index = dataclasses.replace(index, video_path=str(src.path), title=src.title, origin=src.origin)
        return JobOutcome(job, index=index, text=result.text)

    def _replace(self, slot: _Slot, dead: Any) -> None:
        """A fresh worker in a dead one's place (it loads the model while its first job waits); once, even
        when several jobs were queued on the dead one."""
        if slot.actor is dead:
            self._kill([dead])
            slot.actor = self._spawn()


def _failed(job: IndexJob, error: FrameseekError, keep_going: bool) -> JobOutcome:
    if not keep_going:
        raise error
    return JobOutcome(job, error=str(error))


def _chain_text(exc: BaseException) -> str:
    """The messages of ``exc`` and the exceptions it was raised from."""
    texts: list[str] = []
    current: BaseException | None = exc
    while current is not None and len(texts) < 8:
        texts.append(str(current))
        current = current.__cause__ or current.__context__
    return " ".join(texts)


def _cause_line(exc: BaseException) -> str:
    """The one line that says why a Ray call failed (the original exception's, when Ray kept it)."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException) and cause is not exc:
        return _cause_line(cause)
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return one_line(lines[-1] if lines else type(exc).__name__, 300)
