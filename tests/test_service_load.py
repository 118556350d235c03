"""A bounded load test: 200 queries from 8 concurrent clients against an indexed video on a real server.

Prints p50/p95 latency, the rate, and the server's RSS before and after (``pytest -s`` shows them).
"""

from __future__ import annotations

import shutil
import statistics
import threading
import time
from pathlib import Path

import psutil
import pytest

from service_support import start_server
from videos import require_bikes

QUERIES = 200
CLIENTS = 8
WORDS = ("a bike", "a person riding", "a street", "a dog", "trees", "a car", "the sky", "people walking")


@pytest.mark.slow
def test_200_queries_from_8_clients(tmp_path: Path) -> None:
    media = tmp_path / "media"
    media.mkdir()
    shutil.copy(require_bikes(), media / "bikes.mp4")
    server = start_server(
        tmp_path / "home", media=[media], extra=["--rate-limit", "10000", "--rate-burst", "10000"]
    )
    try:
        process = psutil.Process(server.pid)
        with server.client() as client:
            for i in range(10):  # index once, then warm up (first-call costs are not the steady state)
                answer = client.post("/search", json={"source": "bikes.mp4", "query": f"warm up {i}"})
                assert answer.status_code == 200, answer.text
        rss_before = process.memory_info().rss
        latencies: list[float] = []
        failures: list[str] = []
        lock = threading.Lock()
        counter = iter(range(QUERIES))

        def worker() -> None:
            with server.client() as client:
                while True:
                    with lock:
                        n = next(counter, None)
                    if n is None:
                        return
                    body = {"source": "bikes.mp4", "query": f"{WORDS[n % len(WORDS)]} {n}", "top_k": 5}
                    started = time.perf_counter()
                    answer = client.post("/search", json=body)
                    elapsed = time.perf_counter() - started
                    with lock:
                        latencies.append(elapsed)
                        if answer.status_code != 200 or not answer.json().get("results"):
                            failures.append(f"{answer.status_code} {answer.text[:200]}")

        began = time.perf_counter()
        threads = [threading.Thread(target=worker) for _ in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - began
        rss_after = process.memory_info().rss
    finally:
        server.stop()

    cuts = statistics.quantiles(latencies, n=100)
    p50, p95 = statistics.median(latencies), cuts[94]
    growth = (rss_after - rss_before) / rss_before
    print(
        f"\nload: {len(latencies)} queries, {CLIENTS} clients, {wall:.1f} s ({len(latencies) / wall:.1f} q/s); "
        f"p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms; errors {len(failures)}; "
        f"server RSS {rss_before / 2**20:.0f} MB -> {rss_after / 2**20:.0f} MB ({growth:+.1%})"
    )
    assert len(latencies) == QUERIES and not failures, failures[:3]
    assert growth < 0.10, f"RSS grew {growth:.1%}"
    assert wall < 60
