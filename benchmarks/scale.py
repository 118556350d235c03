"""Benchmark: a 10M-frame library in a ``VectorStore`` (PCA + IVF-PQ codes, exact float16 re-rank on disk).

Embeddings are synthetic, clustered and video-like (the structure of ``query_latency.py``, at the lite
model's 1,536 dimensions): videos of 300 frames, each about one of 10,000 clusters, cut into scenes
(a new one on average every 20 frames); content lives in a 64-dimensional latent space (cluster →
video → scene → frame, each a Gaussian step) mapped linearly to ``--dim``, plus isotropic noise and a
direction shared by every frame. Queries are a random frame's scene latent moved by unit-variance
noise, with as much isotropic noise as content. Frames are generated deterministically in chunks of
60,000 (200 videos) and never all held in memory: the build streams them once, and the exact top 10 of
``--truth-queries`` queries (float32, every frame) is computed in the same pass.

Measured: build time (train on a sample + add video by video, committing every ``--commit-every``
frames), disk size, the process's peak RSS (psutil, sampled every 0.1 s, and the kernel's ru_maxrss),
and per-query latency p50 / p95 over ``--queries`` single queries (k = 10) with recall@10 against the
exact top 10 — warm (after the build; the float16 file is larger than the page cache can keep), cold
(every store file dropped from the page cache before each query) and a sweep of nprobe × candidates.

    python benchmarks/scale.py [--frames 10000000] [--dim 1536] [--json] [--quick]
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import psutil

import common
from frameseek.storage.vectors import VectorStore, default_nlist, train_size

NAME = "scale"
FRAMES_PER_VIDEO = 300
CLUSTERS = 10_000
LATENT = 64
CHUNK = 60_000  # frames generated at once (200 videos)
RSS_TARGET_GB = 8.0
P50_TARGET_MS = 50.0
RECALL_TARGET = 0.95


# ------------------------------------------------------------------------------------------- data
def _normalise(x: np.ndarray) -> np.ndarray:
    x /= np.linalg.norm(x, axis=-1, keepdims=True)
    return x


class Synthetic:
    """Clustered, video-like unit embeddings generated chunk by chunk (see the module docstring)."""

    def __init__(self, frames: int, dim: int, seed: int = 0):
        rng = np.random.default_rng([seed, 0])
        self.frames, self.dim, self.seed = frames, dim, seed
        self.common = _normalise(rng.standard_normal(dim, dtype=np.float32))
        self.mixing = rng.standard_normal((LATENT, dim), dtype=np.float32) / np.float32(np.sqrt(LATENT))
        self.clusters = rng.standard_normal((CLUSTERS, LATENT), dtype=np.float32)

    @property
    def chunks(self) -> int:
        return -(-self.frames // CHUNK)

    def latents(self, c: int) -> tuple[np.ndarray, np.ndarray]:
        """Chunk ``c``'s frame latents and each frame's scene latent (cheap: no ``dim``-wide work)."""
        n = min(CHUNK, self.frames - c * CHUNK)
        rng = np.random.default_rng([self.seed, 1, c])
        videos = -(-n // FRAMES_PER_VIDEO)
        video_of = np.arange(n) // FRAMES_PER_VIDEO
        video = self.clusters[rng.integers(CLUSTERS, size=videos)]
        video = video + 0.7 * rng.standard_normal((videos, LATENT), dtype=np.float32)
        starts = (rng.random(n) < 1 / 20) | (np.arange(n) % FRAMES_PER_VIDEO == 0)
        scene_of = np.cumsum(starts) - 1
        scenes = video[video_of[starts]] + 0.5 * rng.standard_normal((int(starts.sum()), LATENT), np.float32)
        scene = scenes[scene_of]
        return scene + 0.1 * rng.standard_normal((n, LATENT), dtype=np.float32), scene

    def chunk(self, c: int) -> np.ndarray:
        """Chunk ``c``'s unit embeddings (n, dim) float32: rows [c·CHUNK, c·CHUNK + n)."""
        frames, _ = self.latents(c)
        return self._embed(frames, 0.15, np.random.default_rng([self.seed, 2, c]))

    def _embed(self, latent: np.ndarray, isotropic: float, rng: np.random.Generator) -> np.ndarray:
        x = _normalise(latent @ self.mixing)
        noise = rng.random(x.shape, dtype=np.float32)  # uniform: ~10x cheaper than Gaussian, as isotropic
        noise -= 0.5
        x += isotropic * _normalise(noise)
        _normalise(x)
        x += 0.5 * self.common
        return _normalise(x)

    def queries(self, count: int) -> tuple[np.ndarray, np.ndarray]:
        """``count`` queries about random frames' scenes, and those frames' rows."""
        rows = np.sort(np.random.default_rng([self.seed, 3]).choice(self.frames, count, replace=False))
        scenes = np.empty((count, LATENT), dtype=np.float32)
        for c in np.unique(rows // CHUNK):
            pick = rows // CHUNK == c
            scenes[pick] = self.latents(int(c))[1][rows[pick] - c * CHUNK]
        rng = np.random.default_rng([self.seed, 4])
        latent = scenes + rng.standard_normal(scenes.shape, dtype=np.float32)
        return self._embed(latent, 1.0, rng), rows

    def sample(self, size: int, max_chunks: int = 16) -> np.ndarray:
        """``size`` frames drawn from up to ``max_chunks`` chunks spread over the library."""
        picked = np.unique(np.linspace(0, self.chunks - 1, min(max_chunks, self.chunks)).round().astype(int))
        per = -(-size // len(picked))
        rng = np.random.default_rng([self.seed, 5])
        parts = []
        for c in picked:
            x = self.chunk(int(c))
            parts.append(x[np.sort(rng.choice(len(x), min(per, len(x)), replace=False))])
        return np.concatenate(parts)[:size]


class TopK:
    """The exact top-k rows of a few queries, merged chunk by chunk."""

    def __init__(self, queries: np.ndarray, k: int = 10):
        self.q, self.k = queries, k
        self.scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
        self.rows = np.full((len(queries), k), -1, dtype=np.int64)

    def update(self, x: np.ndarray, first_row: int) -> None:
        s = self.q @ x.T  # (queries, n)
        k = min(self.k, s.shape[1])
        part = np.argpartition(-s, k - 1, axis=1)[:, :k]
        scores = np.concatenate([self.scores, np.take_along_axis(s, part, axis=1)], axis=1)
        rows = np.concatenate([self.rows, part + first_row], axis=1)
        order = np.argsort(-scores, axis=1, kind="stable")[:, : self.k]
        self.scores = np.take_along_axis(scores, order, axis=1)
        self.rows = np.take_along_axis(rows, order, axis=1)


# ------------------------------------------------------------------------------------- measuring
class RssSampler:
    """The process's resident set (anonymous + file-backed pages) sampled every ``period`` seconds."""

    def __init__(self, period: float = 0.1):
        self.proc = psutil.Process()
        self.period = period
        self.peak = 0
        self.phase_peak: dict[str, int] = {}
        self.phase = "start"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.period)

    def sample(self) -> int:
        rss = int(self.proc.memory_info().rss)
        self.peak = max(self.peak, rss)
        self.phase_peak[self.phase] = max(self.phase_peak.get(self.phase, 0), rss)
        return rss

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    @contextmanager
    def during(self, phase: str) -> Iterator[None]:
        self.sample()
        self.phase = phase
        try:
            yield
        finally:
            self.sample()


def drop_cache(folder: Path) -> None:
    """Evict the store's files from the page cache (only these files: harmless to other processes)."""
    for path in folder.iterdir():
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def timed(
    store: VectorStore, queries: np.ndarray, k: int, cold: Path | None = None
) -> tuple[list[float], np.ndarray]:
    """Latency (ms) of each single query and its rows; ``cold``: drop the store's cache before each."""
    ms: list[float] = []
    rows = np.full((len(queries), k), -1, dtype=np.int64)
    for i, q in enumerate(queries):
        if cold is not None:
            drop_cache(cold)
        started = time.perf_counter()
        _, found = store.search(q[None, :], k)
        ms.append(1000 * (time.perf_counter() - started))
        rows[i] = found[0]
    return ms, rows


def recall_at(found: np.ndarray, truth: np.ndarray, k: int = 10) -> float:
    return float(
        np.mean([len(set(f[:k]) & set(t[:k]) - {-1}) / k for f, t in zip(found, truth, strict=True)])
    )


def _summary(ms: list[float]) -> dict[str, float]:
    return {"p50_ms": common.percentile(ms, 50), "p95_ms": common.percentile(ms, 95), "n": len(ms)}


# ------------------------------------------------------------------------------------------- run
def build(args: Any, lib: Synthetic, folder: Path, rss: RssSampler, result: dict[str, Any]) -> None:
    """Train, add every frame video by video (committing every ``--commit-every`` frames), and save the
    queries' exact top 10 (``truth.npz``) and the build's numbers (``build.json``) beside the store."""
    frames = lib.frames
    shutil.rmtree(folder, ignore_errors=True)
    folder.parent.mkdir(parents=True, exist_ok=True)
    needed = frames * (lib.dim * 2 + 80) * 1.05
    free = shutil.disk_usage(folder.parent).free
    if free < needed + 2e9:
        raise SystemExit(f"{folder.parent}: {free / 1e9:.1f} GB free, the store needs {needed / 1e9:.1f} GB")
    nlist = args.nlist or default_nlist(frames, train_size(default_nlist(frames, frames)))
    queries, query_rows = lib.queries(max(args.queries, args.truth_queries))
    truth = TopK(queries[: args.truth_queries])

    with rss.during("train"):
        common.log(f"training sample: {train_size(nlist):,} frames")
        started = time.perf_counter()
        sample = lib.sample(train_size(nlist))
        sample_s = time.perf_counter() - started
        started = time.perf_counter()
        store = VectorStore.create(folder, sample, nlist=nlist)
        train_s = time.perf_counter() - started
        del sample
    common.log(f"trained {store.spec} in {train_s:.0f} s (sample generated in {sample_s:.0f} s)")

    add_s = save_s = gen_s = truth_s = 0.0
    commits = 0
    last_log = time.perf_counter()
    with rss.during("build"):
        build_started = time.perf_counter()
        for c in range(lib.chunks):
            started = time.perf_counter()
            x = lib.chunk(c)
            gen_s += time.perf_counter() - started
            started = time.perf_counter()
            truth.update(x, c * CHUNK)
            truth_s += time.perf_counter() - started
            started = time.perf_counter()
            for v in range(0, len(x), FRAMES_PER_VIDEO):  # video by video, as a library grows
                store.add(f"video-{(c * CHUNK + v) // FRAMES_PER_VIDEO}", x[v : v + FRAMES_PER_VIDEO])
            add_s += time.perf_counter() - started
            del x
            end = (c + 1) * CHUNK
            if end % args.commit_every < CHUNK or c == lib.chunks - 1:
                started = time.perf_counter()
                store.save()
                save_s += time.perf_counter() - started
                commits += 1
            if time.perf_counter() - last_log > 60 or c == lib.chunks - 1:
                last_log = time.perf_counter()
                done = min(end, frames)
                spent = last_log - build_started
                common.log(
                    f"{done:,} / {frames:,} frames in {spent:.0f} s (add {add_s:.0f}, save {save_s:.0f}, "
                    f"generate {gen_s:.0f}, exact top 10 {truth_s:.0f}); "
                    f"~{spent / done * (frames - done) / 60:.0f} min left; RSS {rss.sample() / 1e9:.2f} GB"
                )
        build_wall_s = time.perf_counter() - build_started
    saved = {
        "build": {
            "train_s": train_s,
            "add_s": add_s,
            "commit_s": save_s,
            "commits": commits,
            "build_s": train_s + add_s + save_s,
            "generate_s": gen_s + sample_s,
            "exact_truth_s": truth_s,
            "wall_s": build_wall_s + train_s + sample_s,
            "segments": len(store.segments),
            "spec": store.spec,
            "load_average_at_start": result["load_average_at_start"],
        },
        "rss_phases_gb": {k: v / 1e9 for k, v in rss.phase_peak.items()},
    }
    store.close()
    np.savez(
        folder / "truth.npz", queries=queries, query_rows=query_rows, rows=truth.rows, scores=truth.scores
    )
    (folder / "build.json").write_text(json.dumps(saved, indent=1) + "\n", encoding="utf-8")


def measure(args: Any, folder: Path, rss: RssSampler, result: dict[str, Any]) -> None:
    """Query latency and recall@10 of the store in ``folder`` against its ``truth.npz``."""
    saved = json.loads((folder / "build.json").read_text(encoding="utf-8"))
    result["build"] = saved["build"]
    result["build_rss_phases_gb"] = saved["rss_phases_gb"]
    with np.load(folder / "truth.npz") as z:
        queries, query_rows, truth, top1 = z["queries"], z["query_rows"], z["rows"], z["scores"][:, 0]
    queries, query_rows = queries[: args.queries], query_rows[: args.queries]
    with rss.during("open"):
        store = VectorStore.open(folder)
        result["rss_after_open_gb"] = rss.sample() / 1e9
    names = [s.name for s in store.segments]
    result["disk"] = {
        "total_bytes": sum((folder / n).stat().st_size for n in [*names, "trained.faiss", "manifest.json"])
        + (folder / "vectors.f16").stat().st_size,
        "vectors_f16_bytes": (folder / "vectors.f16").stat().st_size,
        "codes_bytes": sum((folder / n).stat().st_size for n in names),
        "trained_bytes": (folder / "trained.faiss").stat().st_size,
        "manifest_bytes": (folder / "manifest.json").stat().st_size,
    }
    result["disk"]["bytes_per_frame"] = result["disk"]["total_bytes"] / result["frames"]
    result["nlist"] = store.nlist
    common.log(f"on disk: {result['disk']['total_bytes'] / 1e9:.2f} GB; measuring queries")

    k, nt = 10, len(truth)
    with rss.during("search"):
        nprobe, candidates = store.nprobe, store.k_candidates  # the store's defaults
        timed(store, queries[:20], k)  # warm-up: the lists' first pages, Python paths
        ms, rows = timed(store, queries, k)
        result["default"] = {
            "nprobe": nprobe,
            "candidates": store.candidates(k),
            "warm": _summary(ms),
            "recall_at_10": recall_at(rows[:nt], truth),
            "found_own_frame": float(np.mean([r in f for r, f in zip(query_rows, rows, strict=True)])),
        }
        lib_ms, _ = timed(store, queries, 100)  # what a library search asks for (a pool of 100)
        result["default"]["k100_warm"] = _summary(lib_ms)
        common.log(
            f"default (nprobe {nprobe}, {store.candidates(k)} candidates): p50 "
            f"{result['default']['warm']['p50_ms']:.1f} ms warm, R@10 {result['default']['recall_at_10']:.3f}"
        )
        sweep = []
        for probe in args.nprobes:
            for cand in args.candidates:
                store.nprobe, store.k_candidates = probe, cand
                ms, rows = timed(store, queries, k)
                sweep.append(
                    {
                        "nprobe": store.nprobe,
                        "candidates": store.candidates(k),
                        **_summary(ms),
                        "recall_at_10": recall_at(rows[:nt], truth),
                    }
                )
                common.log(f"nprobe {probe} candidates {cand}: {sweep[-1]}")
        result["sweep"] = sweep
        store.nprobe, store.k_candidates = nprobe, candidates
        # last: it empties the page cache of the store's files
        cold_ms, _ = timed(store, queries[: args.cold_queries], k, cold=folder)
        result["default"]["cold"] = _summary(cold_ms)
        common.log(f"default, cold: p50 {result['default']['cold']['p50_ms']:.1f} ms")
    store.close()
    result["truth_queries"] = nt
    result["queries"] = len(queries)
    result["median_top1_score"] = float(np.median(top1))


def run(args: Any) -> dict[str, Any]:
    frames, dim = args.frames, args.dim
    folder = Path(args.workdir or common.cache_dir() / "scale") / f"store-{frames}-{dim}"
    result: dict[str, Any] = {
        "benchmark": NAME,
        "command": common.command_line(),
        "frames": frames,
        "dim": dim,
        "store": str(folder),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "reused_store": bool(args.reuse),
    }
    with RssSampler() as rss:
        result["rss_start_gb"] = rss.sample() / 1e9  # Python + numpy + faiss (+ torch via common)
        if not args.reuse:
            build(args, Synthetic(frames, dim), folder, rss, result)
        elif not (folder / "build.json").is_file():
            raise SystemExit(f"--reuse: no built store at {folder} (run once with --keep)")
        measure(args, folder, rss, result)
    phases = {k: v / 1e9 for k, v in rss.phase_peak.items()}
    build_peak = max(result["build_rss_phases_gb"].values())
    result["rss"] = {
        # with --reuse the build ran in an earlier process: its peak comes from build.json
        "peak_gb": max(build_peak, rss.peak / 1e9),
        "peak_sampled_gb": rss.peak / 1e9,
        "peak_ru_maxrss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9,
        "phases_gb": {**result["build_rss_phases_gb"], **phases},
    }
    result["machine"] = common.machine_info()
    if not args.keep:
        shutil.rmtree(folder, ignore_errors=True)
    return result


def render(result: dict[str, Any]) -> str:
    b, d, r, default = result["build"], result["disk"], result["rss"], result["default"]
    frames = result["frames"]
    ok = (
        default["warm"]["p50_ms"] < P50_TARGET_MS
        and default["recall_at_10"] >= RECALL_TARGET
        and r["peak_gb"] <= RSS_TARGET_GB
    )
    rows = [
        ["frames × dim", f"{frames:,} × {result['dim']}"],
        ["index", f"`{b['spec']}`, nprobe {default['nprobe']}, {default['candidates']} candidates re-ranked"],
        [
            "build (train + add + commits)",
            f"{b['build_s'] / 60:.1f} min (train {b['train_s']:.0f} s, add "
            f"{b['add_s']:.0f} s, {b['commits']} commits {b['commit_s']:.0f} s)",
        ],
        [
            "disk",
            f"{d['total_bytes'] / 1e9:.2f} GB ({d['bytes_per_frame']:.0f} B/frame: float16 "
            f"{d['vectors_f16_bytes'] / 1e9:.2f} GB + codes {d['codes_bytes'] / 1e9:.2f} GB)",
        ],
        [
            "peak RSS",
            f"{r['peak_gb']:.2f} GB (per phase: "
            + ", ".join(f"{k} {v:.2f}" for k, v in r["phases_gb"].items())
            + f"; after open {result['rss_after_open_gb']:.2f})",
        ],
        ["query p50 / p95, warm", f"{default['warm']['p50_ms']:.1f} / {default['warm']['p95_ms']:.1f} ms"],
        [
            "query p50 / p95, cold",
            f"{default['cold']['p50_ms']:.1f} / {default['cold']['p95_ms']:.1f} ms "
            f"({default['cold']['n']} queries, store files dropped from the page cache before each)",
        ],
        [
            "k = 100 (a library search's pool) p50 / p95",
            f"{default['k100_warm']['p50_ms']:.1f} / {default['k100_warm']['p95_ms']:.1f} ms",
        ],
        [f"recall@10 vs exact ({result['truth_queries']} queries)", f"{default['recall_at_10']:.3f}"],
    ]
    table = common.markdown_table(["", ""], rows)
    sweep = common.markdown_table(
        ["nprobe", "candidates", "p50 ms", "p95 ms", "recall@10"],
        [
            [s["nprobe"], s["candidates"], s["p50_ms"], s["p95_ms"], s["recall_at_10"]]
            for s in result["sweep"]
        ],
        digits=3,
    )
    notes = [
        f"Targets (p50 < {P50_TARGET_MS:.0f} ms, recall@10 ≥ {RECALL_TARGET}, peak RSS ≤ {RSS_TARGET_GB:.0f} GB): "
        f"{'met' if ok else 'NOT met'} at {frames:,} frames.",
        f"{result['queries']} single queries (k = 10); recall against the exact float32 top 10 of the first "
        f"{result['truth_queries']}, computed over every frame while building. Median top-1 score "
        f"{result['median_top1_score']:.2f}.",
        f"Build: {b['commits']} commits (one per ~1M frames; a library commits per video), "
        f"{b['segments']} segment(s) at the end; generating the synthetic frames ({b['generate_s']:.0f} s) and the "
        f"exact top 10 ({b['exact_truth_s']:.0f} s) are not counted; load average at the build's start "
        f"{b['load_average_at_start']}, at the queries' start {result['load_average_at_start']}.",
        "Warm: whatever of the store the page cache holds after the build and earlier queries (the float16 "
        "file is larger than this machine's free memory); cold: `posix_fadvise(DONTNEED)` on every store "
        "file before each query (the guest's cache only: the host's disk cache may still serve reads).",
    ]
    if result.get("reused_store"):
        notes.append("Queries measured with `--reuse` on the store built (and kept) by an earlier run.")
    return table + "\n\n" + "\n".join(f"- {n}" for n in notes) + "\n\n" + sweep


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = common.base_parser(__doc__ or "")
    parser.add_argument("--frames", type=int, default=None, help="library size (default 10M; quick 200k)")
    parser.add_argument(
        "--dim",
        type=int,
        default=1536,
        help="embedding size (the measured run: 1536, the previous lite; lite now embeds 512)",
    )
    parser.add_argument("--nlist", type=int, default=None, help="IVF lists (default: the store's rule)")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--truth-queries", type=int, default=100)
    parser.add_argument("--cold-queries", type=int, default=100)
    parser.add_argument("--commit-every", type=int, default=1_000_000)
    parser.add_argument("--nprobes", default="64,128,256,384,512")
    parser.add_argument("--candidates", default="100,200,300,400")
    parser.add_argument("--workdir", default=None, help="where the store is built (default: the bench cache)")
    parser.add_argument("--keep", action="store_true", help="keep the store on disk afterwards")
    parser.add_argument("--reuse", action="store_true", help="measure queries on a store kept by --keep")
    parser.add_argument("--save", default=None, help="also write the JSON result to this file")
    args = parser.parse_args(argv)
    args.frames = args.frames or (200_000 if args.quick else 10_000_000)
    args.nprobes = [int(x) for x in args.nprobes.split(",")]
    args.candidates = [int(x) for x in args.candidates.split(",")]
    result = run(args)
    if args.save:
        Path(args.save).write_text(json.dumps(result, indent=1, default=common._json_default) + "\n")
    common.emit(result, args.json, render)
    return result


if __name__ == "__main__":
    main()
