"""Threaded indexing stages: order, batching, errors crossing threads, early stop, thread counts."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from frameseek.indexing.stage import Stage, batched, timed


def test_two_stages_keep_order_and_batch() -> None:
    stop = threading.Event()
    first = Stage(range(100), lambda x: x * 2, stop=stop, maxsize=3, name="t-first")
    second = Stage(first, lambda x: x + 1, stop=stop, maxsize=3, name="t-second")
    batches = list(batched(second, 16))
    assert [len(b) for b in batches] == [16] * 6 + [4]
    assert [x for b in batches for x in b] == [2 * x + 1 for x in range(100)]


def test_batches_take_what_is_ready_and_never_wait_for_a_full_list() -> None:
    """A consumer slower than the stage gets full lists; one that keeps up gets each result as it comes
    (no waiting for a full list at the start or the end); order, the last results and errors survive."""
    stop = threading.Event()
    ready = Stage(range(40), lambda x: x, stop=stop, maxsize=64, name="t-ready")
    time.sleep(0.2)  # everything is queued before the consumer starts: full lists
    lists = list(ready.batches(16))
    assert [len(b) for b in lists] == [16, 16, 8] and [x for b in lists for x in b] == list(range(40))

    def slow(x: int) -> int:
        time.sleep(0.02)
        return x

    trickle = Stage(range(6), slow, stop=threading.Event(), maxsize=64, name="t-trickle")
    started = time.perf_counter()
    first = next(iter(trickle.batches(8)))
    assert first == [0] and time.perf_counter() - started < 0.1  # the first result, not a full list
    rest = [x for b in trickle.batches(8) for x in b]
    assert rest == [1, 2, 3, 4, 5]

    def broken() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("damaged packet")

    failing = Stage(broken(), lambda x: x, stop=threading.Event(), maxsize=8, name="t-broken")
    time.sleep(0.1)
    with pytest.raises(ValueError, match="damaged packet"):
        list(failing.batches(8))


def test_an_error_in_the_first_stage_is_raised_in_the_reader() -> None:
    def frames() -> Iterator[int]:
        yield 1
        raise ValueError("damaged packet at 3.2 s")

    stop = threading.Event()
    first = Stage(frames(), lambda x: x, stop=stop, maxsize=2, name="t-first")
    second = Stage(first, lambda x: x, stop=stop, maxsize=2, name="t-second")
    with pytest.raises(ValueError, match=r"damaged packet at 3\.2 s"):
        list(second)
    second.close()
    first.close()


def test_closing_early_stops_every_stage_and_closes_the_source() -> None:
    closed = threading.Event()

    def endless() -> Iterator[int]:
        try:
            n = 0
            while True:
                yield n
                n += 1
        finally:
            closed.set()

    stop = threading.Event()
    first = Stage(endless(), lambda x: x, stop=stop, maxsize=2, name="t-endless")
    second = Stage(first, lambda x: x, stop=stop, maxsize=2, name="t-after")
    assert next(iter(second)) == 0
    second.close()
    first.close()
    assert closed.wait(5)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(t.name.startswith("t-") for t in threading.enumerate()):
        time.sleep(0.01)
    assert not [t.name for t in threading.enumerate() if t.name in ("t-endless", "t-after")]


def test_timed_records_every_next_and_closes() -> None:
    seconds: list[float] = []
    assert list(timed(iter([1, 2, 3]), seconds.append)) == [1, 2, 3]
    assert len(seconds) == 4 and all(s >= 0 for s in seconds)  # three items and the end


def test_default_encode_threads_give_heavy_image_encoders_every_core() -> None:
    from types import SimpleNamespace

    import torch

    from frameseek.indexing import default_encode_threads
    from frameseek.models.backbones import ImageBackbone

    class Backbone(ImageBackbone):
        def __init__(self, inputs: int, outputs: int) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(inputs, outputs)

    def model(backbone: ImageBackbone) -> Any:
        return SimpleNamespace(load_image_backbone=lambda: backbone)

    heavy, light = Backbone(4000, 2600), Backbone(1000, 1000)  # 10.4M and 1M parameters
    assert heavy.heavy and not light.heavy
    assert default_encode_threads(model(heavy), cores=2, decode_threads=1) == 2
    assert default_encode_threads(model(light), cores=2, decode_threads=1) == 1
    assert default_encode_threads(model(light), cores=1, decode_threads=1) == 1
    assert default_encode_threads(model(light), cores=8, decode_threads=2) == 6


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread nice values are Linux's")
def test_a_stage_can_run_at_a_lower_priority_than_its_caller() -> None:
    """The prepare and encode stages yield the CPU to the decoder: their threads' nice value is raised,
    the caller's is not."""
    import os

    mine = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    def priority(_: int) -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    stop = threading.Event()
    assert list(Stage([1, 2], priority, stop=stop, maxsize=2, name="low", nice=3)) == [min(mine + 3, 19)] * 2
    assert list(Stage([1], priority, stop=stop, maxsize=2, name="same")) == [mine]
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == mine
