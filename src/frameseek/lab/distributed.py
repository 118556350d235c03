"""Data-parallel training across processes: the process group torchrun describes, rank helpers, a gather
that keeps gradients, and a launcher for N local processes that reuses torchrun's own agent.

Outside a launch (or with one process) every helper is a cheap no-op, so single-process code calls them
freely. Two process groups are used once joined: the default one (gloo on CPU, NCCL on CUDA) for the
training collectives (DDP's gradient averaging, :func:`gather_with_grad`), and a gloo group with a long
timeout for control traffic (barriers, broadcast decisions), where a rank may wait while rank 0 caches
features or evaluates for a long time.

One module because the helpers, the launcher and how a launched process leaves share one state: the
groups this process joined and torchrun's environment, read the same way on both sides of a launch.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import pickle
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import torch
import torch.distributed as dist

from frameseek.errors import FrameseekError, InputError, one_line

if TYPE_CHECKING:
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

T = TypeVar("T")

CONTROL_TIMEOUT = timedelta(hours=24)  # a rank may wait this long for rank 0 (feature caching, evaluation)

_control: Any = None  # the gloo group for barriers and object broadcasts
_owned = False  # init() created the default group, so cleanup() destroys it


class WorkerError(FrameseekError):
    """A worker process of a ``launch`` failed; the message is the first failure's own message."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


# ---- the environment and the group ------------------------------------------------------------------
def env_world() -> tuple[int, int, int]:
    """(rank, world size, local rank) from torchrun's environment; (0, 1, 0) outside a launch."""

    def read(name: str, default: int) -> int:
        raw = os.environ.get(name, "").strip()
        try:
            return int(raw) if raw else default
        except ValueError:
            raise InputError(f"environment variable {name} must be a whole number, got {raw!r}") from None

    return read("RANK", 0), read("WORLD_SIZE", 1), read("LOCAL_RANK", 0)


def launched() -> bool:
    """Whether this process is one of several started by a launcher (torchrun, ``launch``)."""
    return env_world()[1] > 1


def backend_for(device: str) -> str:
    """The collective backend for a device: NCCL for CUDA, gloo for everything else (CPU)."""
    return "nccl" if torch.device(device).type == "cuda" else "gloo"


def is_initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def init(device: str = "cpu") -> bool:
    """Join the process group torchrun describes (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT).

    A no-op with one process, and when a group already exists (then only the control group is added).
    Returns whether this process now takes part in a group of more than one.
    """
    global _control, _owned
    if not is_initialized():
        rank, world, local_rank = env_world()
        if world <= 1:
            return False
        if not dist.is_available():
            raise InputError("this torch build has no torch.distributed: cannot train with several processes")
        backend = backend_for(device)
        if backend == "nccl":
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend, rank=rank, world_size=world)
        _owned = True
    if dist.get_world_size() <= 1:
        return False
    if _control is None:
        _control = dist.new_group(backend="gloo", timeout=CONTROL_TIMEOUT)
    return True


def cleanup() -> None:
    """Leave the group (only one that ``init`` created; a caller's own group is left alone)."""
    global _control, _owned
    if _control is not None and is_initialized():
        dist.destroy_process_group(_control)
    _control = None
    if _owned and is_initialized():
        dist.destroy_process_group()
    _owned = False


@contextlib.contextmanager
def session(device: str = "cpu") -> Iterator[bool]:
    """``init`` for the duration of a block (yields whether several processes take part), then ``cleanup``
    if this block was the one that joined."""
    joined_here = not is_initialized()
    active = init(device)
    try:
        yield active
        if joined_here and active:
            barrier()  # every rank is done with its collectives before any leaves (a gloo peer aborts)
    finally:
        if joined_here:
            cleanup()


def rank() -> int:
    """This process's rank in the group (0 when not in one)."""
    return dist.get_rank() if is_initialized() else 0


def world_size() -> int:
    """How many processes take part (1 when not in a group)."""
    return dist.get_world_size() if is_initialized() else 1


def is_main() -> bool:
    """Whether this process writes files and prints: rank 0 of the group, or of the launch before the
    group is joined / after it is left; True for a plain single process."""
    return rank() == 0 if is_initialized() else env_world()[0] == 0


# ---- control traffic ----------------------------------------------------------------------------------
def barrier() -> None:
    """Wait until every process gets here (no-op alone)."""
    if world_size() > 1:
        dist.barrier(group=_control)


def broadcast_object(obj: T, src: int = 0) -> T:
    """``obj`` as rank ``src`` has it, on every process (picklable objects; no-op alone)."""
    if world_size() <= 1:
        return obj
    box: list[Any] = [obj]
    dist.broadcast_object_list(box, src=src, group=_control)
    return box[0]


def all_reduce_sum(value: float) -> float:
    """The sum of ``value`` over every process (float64; no-op alone)."""
    if world_size() <= 1:
        return value
    tensor = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(tensor, group=_control)
    return float(tensor.item())


@contextlib.contextmanager
def main_first() -> Iterator[None]:
    """Rank 0 runs the block first (e.g. computes and writes a cache), the others wait and then run it
    (and find the cache). If rank 0 fails inside, the launcher stops the waiting ranks."""
    if not is_main():
        barrier()
    yield
    if is_main():
        barrier()


# ---- sharding and gathering ----------------------------------------------------------------------------
def shard_sizes(n: int, world: int) -> list[int]:
    """Rows per rank when ``n`` rows are split into ``world`` contiguous slices (the first ``n % world``
    get one more)."""
    return [n // world + (1 if r < n % world else 0) for r in range(world)]


def shard(n: int, world: int | None = None, at: int | None = None) -> slice:
    """This rank's contiguous slice of ``n`` rows (all of them alone). Contiguous slices in rank order
    make a gathered batch the global batch in its original order."""
    world = world_size() if world is None else world
    at = rank() if at is None else at
    sizes = shard_sizes(n, world)
    start = sum(sizes[:at])
    return slice(start, start + sizes[at])


class _GatherRows(torch.autograd.Function):
    """all_gather along dim 0 (uneven sizes padded); backward sums the gradient of the gathered tensor
    over ranks (all_reduce) and hands each rank the rows it contributed."""

    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor, sizes: list[int], at: int, group: Any) -> torch.Tensor:
        ctx.sizes, ctx.at, ctx.group = sizes, at, group
        width = max(sizes)
        padded = tensor.contiguous()
        if len(tensor) < width:
            padded = tensor.new_zeros((width, *tensor.shape[1:]))
            padded[: len(tensor)] = tensor
        parts = [torch.empty_like(padded) for _ in sizes]
        dist.all_gather(parts, padded, group=group)
        return torch.cat([part[:n] for part, n in zip(parts, sizes, strict=True)])

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None, None]:
        total = grad.contiguous().clone()
        dist.all_reduce(total, op=dist.ReduceOp.SUM, group=ctx.group)
        start = sum(ctx.sizes[: ctx.at])
        return total[start : start + ctx.sizes[ctx.at]], None, None, None


def gather_sizes(n: int, device: torch.device | str = "cpu") -> list[int]:
    """Every rank's ``n`` (one small collective on the default group)."""
    if world_size() <= 1:
        return [n]
    mine = torch.tensor([n], dtype=torch.int64, device=device)
    parts = [torch.zeros_like(mine) for _ in range(world_size())]
    dist.all_gather(parts, mine)
    return [int(p.item()) for p in parts]


def gather_with_grad(tensor: torch.Tensor, sizes: Sequence[int] | None = None) -> torch.Tensor:
    """Every rank's ``tensor`` concatenated along dim 0 in rank order, differentiable.

    The gradient a rank's rows receive is the sum over ranks of the gradients of their losses with respect
    to those rows (each rank's loss sees them among its negatives), which together with DDP's averaging
    of parameter gradients reproduces one process on the whole batch (see ``models.losses``). ``sizes``:
    every rank's row count if known (e.g. from ``shard_sizes``), else exchanged first. Alone: ``tensor``.
    """
    if world_size() <= 1:
        return tensor
    counts = list(sizes) if sizes is not None else gather_sizes(len(tensor), tensor.device)
    if len(counts) != world_size() or counts[rank()] != len(tensor):
        raise ValueError(f"sizes {counts} do not fit rank {rank()} with {len(tensor)} rows")
    gathered: torch.Tensor = _GatherRows.apply(tensor, counts, rank(), None)
    return gathered


class RowGather:
    """The losses' ``gather`` for this process group: (all ranks' rows, offset of this rank's rows)."""

    def __init__(self, sizes: Sequence[int] | None = None):
        self.sizes = list(sizes) if sizes is not None else None
        self.world_size = world_size()
        self.rank = rank()

    def __call__(self, local: torch.Tensor) -> tuple[torch.Tensor, int]:
        sizes = self.sizes if self.sizes is not None else gather_sizes(len(local), local.device)
        return gather_with_grad(local, sizes), sum(sizes[: self.rank])


# ---- launching N local processes ---------------------------------------------------------------------
def default_threads(nproc: int) -> int:
    """torch threads per process when ``nproc`` share this machine's cores."""
    return max(1, (os.cpu_count() or 1) // nproc)


def launch(nproc: int, fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn(*args)`` in ``nproc`` local processes under torchrun's elastic agent (standalone
    rendezvous on a free port, no restarts) and return rank 0's result.

    ``fn`` and ``args`` must be picklable (a module-level function): the workers are spawned. Inside,
    torchrun's environment is set, so ``init()`` joins the group. A worker raising a FrameseekError exits
    with its exit code and no traceback; the launcher then stops the others and this raises a
    ``WorkerError`` with that message and exit code.
    """
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    if nproc < 1:
        raise InputError(f"the number of processes must be at least 1, got {nproc}")
    if launched():
        raise InputError("already one of several launched processes: cannot launch more from here")
    config = LaunchConfig(
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=nproc,
        run_id=uuid.uuid4().hex,
        rdzv_backend="c10d",
        rdzv_endpoint="localhost:0",
        max_restarts=0,
        start_method="spawn",
    )
    try:
        with _quiet_agent():
            results = elastic_launch(config, _worker)(fn, *args)
    except ChildFailedError as exc:
        raise worker_error(exc, nproc) from None
    except Exception as exc:  # the agent's SignalException: the launch was interrupted (Ctrl-C, kill)
        if type(exc).__name__ == "SignalException":
            raise KeyboardInterrupt from exc
        raise
    result: T = results[0]
    return result


def worker_error(failed: ChildFailedError, nproc: int) -> WorkerError:
    """The ``WorkerError`` for a launch's ``ChildFailedError``: the first worker that failed with a
    FrameseekError (its message and exit code, from the error file ``_worker`` wrote), else torch's first
    failure. A worker can write its error and still be stopped by the agent while it exits (its peer failed
    the same way first), so its own exit status may be a signal: the file's code is the one that counts."""
    ours = [
        (failure.timestamp, rank, failure)
        for rank, failure in failed.failures.items()
        if isinstance(failure.error_file_data, dict) and "exit_code" in failure.error_file_data
    ]
    if ours:
        _, rank, failure = min(ours, key=lambda item: (item[0], item[1]))
        code = int(failure.error_file_data["exit_code"])
    else:
        rank, failure = failed.get_first_failure()
        code = failure.exitcode
    return WorkerError(
        f"worker {rank} of {nproc} failed: {_failure_message(failure)}", exit_code=max(code, 1)
    )


@contextlib.contextmanager
def _quiet_agent() -> Iterator[None]:
    """The agent's own log lines (a worker's failure with the agent's traceback, the others' termination)
    stay hidden: the failure comes back as one WorkerError. ``FRAMESEEK_DEBUG`` shows them."""
    if os.environ.get("FRAMESEEK_DEBUG"):
        yield
        return
    loggers = [logging.getLogger(name) for name in ("torch.distributed.elastic", "torch.multiprocessing")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _failure_message(failure: Any) -> str:
    """One line from a worker's error file (``record``'s nested form or ours), else its exit or signal."""
    message = failure.message
    if isinstance(message, dict):
        if os.environ.get("FRAMESEEK_DEBUG") and message.get("extraInfo", {}).get("py_callstack"):
            print(message["extraInfo"]["py_callstack"], file=sys.stderr)
        message = message.get("message", "")
    text = one_line(message)
    if text and not text.startswith("To enable traceback"):
        return text
    if failure.signal_name() != "<N/A>":
        return f"killed by {failure.signal_name()}"
    return f"exit code {failure.exitcode}"


def _worker(fn: Callable[..., T], *args: Any) -> T:
    """A launched process: run ``fn``; a FrameseekError becomes its message in torchelastic's error file
    (which the launcher reads) and a plain exit with the error's code, never a traceback. Once its outcome
    is settled the process leaves without the interpreter's teardown (``_leave_at_exit``)."""
    try:
        result = fn(*args)
    except FrameseekError as exc:
        error_file = os.environ.get("TORCHELASTIC_ERROR_FILE")
        if error_file:
            payload = {"message": str(exc), "timestamp": int(time.time()), "exit_code": exc.exit_code}
            with open(error_file, "w", encoding="utf-8") as handle:
                json.dump(payload, handle)
        else:
            print(f"error: {exc}", file=sys.stderr)
        _leave_at_exit(exc.exit_code)
        sys.exit(exc.exit_code)
    pickle.dumps(result)  # the agent pickles it next: a failure there must still exit non-zero (below)
    _leave_at_exit(0)
    return result


@contextlib.contextmanager
def exit_without_teardown() -> Iterator[None]:
    """For a process torchrun's agent started (``launched()``, and the agent's run id is set): once the
    block has finished without an error, the process leaves at exit before the interpreter's teardown
    (``_leave_at_exit``), so that gloo's threads cannot turn a finished job into a SIGABRT. A block that
    raises keeps its own exit status; anywhere else this does nothing."""
    yield
    if launched() and os.environ.get("TORCHELASTIC_RUN_ID"):
        _leave_at_exit(0)


def _leave_at_exit(code: int) -> None:
    """At interpreter exit, flush and ``os._exit(code)`` before the interpreter's teardown.

    The work is done and handed over by then (torchelastic has put the result in its queue), but gloo's
    C++ threads can still hold tensors that reference Python objects; destroying them while the interpreter
    finalises aborts the process ("terminate called without an active exception", SIGABRT) even after
    ``destroy_process_group`` (pytorch/pytorch#179291). The agent would then report a finished worker as
    killed. Registered only once the outcome is known (a result that pickles, or a FrameseekError), so any
    other failure keeps its own exit status."""

    def leave() -> None:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)

    atexit.register(leave)
