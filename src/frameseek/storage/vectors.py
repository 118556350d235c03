"""A compressed, disk-backed vector store for very large libraries (millions of frames).

One file because training, appending, committing, searching and re-ranking all read and write the same
folder under one manifest; splitting them would spread that one format over several modules.

A ``VectorStore`` answers inner-product top-k queries over every frame of a library without holding the
vectors in memory: FAISS IVF-PQ codes (64 bytes a vector) find candidates, and an exact re-rank on the
original vectors, kept on disk as float16 and read only for those candidates, orders them. One folder::

    manifest.json     what is committed: rows, segments, each video's rows (written last, atomically)
    trained.faiss     the trained, empty index: PCA to 256-d (randomly rotated), IVF lists, PQ codebooks
    seg-<g>-<i>.faiss IVF-PQ codes of a run of rows, ids = global row numbers; memory-mapped for search
    vectors.f16       every vector added, as float16 rows in order (append-only); a video's rows stay
                      contiguous, so row ``r`` is at byte ``r * dim * 2``

The index is trained once on a sample (``VectorStore.create``); videos are then added one by one
(``add``), each taking the next rows, and removed by their row range (``remove``). ``save`` commits:
new and changed segments are written under new names, then the manifest is replaced (the commit point),
then files no manifest names are deleted, so a crash at any point leaves the previous store readable.
Rows appended to ``vectors.f16`` after the committed ones are ignored, and cut off by the next writer.

Segments merge like a binary counter (the newest two while the older is not larger), so a library of
``n`` frames added 300 at a time has about log2(n / 300) segments and each code is rewritten about as
many times, instead of rewriting the whole index for every video. A search transforms the query once,
picks ``nprobe`` lists once and scans those lists in every segment (they share the trained quantizer).

Writes are not thread-safe; callers serialise them (a library holds its file lock). Searches only read.
"""

from __future__ import annotations

import contextlib
import json
import math
import mmap
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from frameseek.errors import IndexError_
from frameseek.system.atomic import atomic_dir, atomic_path, write_text_atomic

STORE_FORMAT = 1
DEFAULT_PCA_DIM = 256
"""Vectors wider than this are projected (PCA + random rotation) before the IVF-PQ; the re-rank uses
the full vectors, so the projection only decides which candidates are considered."""
DEFAULT_PQ_M = 64  # 64 sub-quantisers of 8 bits: 64 bytes of code a vector
NPROBE_FRACTION = 3 / 32
"""Lists a search scans, as a share of all lists (at least 32). Measured at 10M frames (1536-d, 4096
lists, 200 queries; benchmarks/scale.py, docs/SCALE.md): recall@10 0.83 at nprobe 64, 0.95 at 256,
0.987 at 384 (with 300 candidates) — vague queries (text lands near, not on, the frames it describes)
have their true neighbours spread over many lists, so the share scanned is what buys recall."""
DEFAULT_CANDIDATES = 300
"""At least this many PQ candidates are re-ranked exactly (and at least 2·k): at 10M frames 100 → 200 →
300 candidates gave recall@10 0.919 → 0.951 → 0.961 at nprobe 256, for < 1 ms more."""
RERANK_MAX = 4096
"""At most this many candidates are re-ranked, so a search never reads more than ~12 MB (1536-d)."""
MAX_SEGMENTS = 32
TRAIN_NITER = 10  # k-means iterations for the IVF lists (FAISS's default 25 costs 2.5x, no gain here)

_MANIFEST = "manifest.json"
_TRAINED = "trained.faiss"
_VECTORS = "vectors.f16"


def default_nlist(expected: int, sample: int) -> int:
    """IVF lists for a store expected to hold ``expected`` vectors, trained on ``sample`` of them: the
    power of two nearest √expected, with at least 39 training points a list (FAISS's minimum)."""
    nlist = 2 ** round(math.log2(max(1.0, math.sqrt(max(1, expected)))))
    return max(1, min(nlist, sample // 39))


def default_nprobe(nlist: int) -> int:
    """``NPROBE_FRACTION`` of the lists, at least 32 (all of them when there are fewer)."""
    return max(1, min(nlist, max(32, round(nlist * NPROBE_FRACTION))))


def train_size(nlist: int) -> int:
    """How many sample vectors to train ``nlist`` lists on (40 a list, at least 10k, at most 256k)."""
    return min(262_144, max(10_000, 40 * nlist))


def factory_spec(dim: int, nlist: int, pca_dim: int | None = None, pq_m: int | None = None) -> str:
    """The FAISS factory string: ``PCAR256,IVF{nlist},PQ64`` for wide vectors, ``IVF{nlist},PQ{m}`` else.

    PQ sub-quantisers get 4 dimensions each (64 of them at most); they must divide the dimension."""
    reduced = min(dim, pca_dim or DEFAULT_PCA_DIM)
    m = pq_m or max(1, min(DEFAULT_PQ_M, reduced // 4))
    if reduced % m:
        raise ValueError(f"PQ{m} needs a dimension divisible by {m}, got {reduced}")
    prefix = f"PCAR{reduced}," if reduced < dim else ""
    return f"{prefix}IVF{nlist},PQ{m}"


@contextlib.contextmanager
def _one_thread_for(queries: int) -> Iterator[None]:
    """FAISS on this thread only for a few queries: its OpenMP threads parallelise over queries, so for
    one they only add a wake-up (on a busy machine a whole scheduler time slice, ~10 ms)."""
    import faiss

    if queries >= 8:
        yield
        return
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


@dataclass
class _Segment:
    """The codes of rows [lo, hi) that are still in the store."""

    name: str  # file in the store's folder; "" until written
    lo: int
    hi: int
    index: Any  # a faiss IndexIVFPQ, memory-mapped (read-only) or in memory
    in_memory: bool
    dirty: bool = False

    @property
    def count(self) -> int:
        return int(self.index.ntotal)


class VectorStore:
    """IVF-PQ candidates + exact float16 re-rank over a folder; see the module docstring."""

    def __init__(self, folder: Path, manifest: dict[str, Any], trained: Any, mmap_segments: bool = True):
        import faiss

        self.folder = Path(folder)
        self.dim = int(manifest["dim"])
        self.spec = str(manifest["spec"])
        self.rows = int(manifest["rows"])  # rows written, including those of removed videos
        self.generation = int(manifest["generation"])
        self.videos: dict[str, tuple[int, int]] = {
            str(k): (int(v[0]), int(v[1])) for k, v in dict(manifest["videos"]).items()
        }
        self.k_candidates = DEFAULT_CANDIDATES
        self._trained = trained
        self._transform: Any = None
        ivf = trained
        if isinstance(trained, faiss.IndexPreTransform):
            chain: Any = trained.chain
            if chain.size() != 1:
                raise IndexError_(f"vector store at {folder}: expected one transform, got {self.spec}")
            self._transform = faiss.downcast_VectorTransform(chain.at(0))
            ivf = faiss.downcast_index(trained.index)
        self._ivf = ivf  # trained, empty: the quantizer and the template of every segment
        self._nprobe = default_nprobe(int(ivf.nlist))  # not stored: a tuning, settable per process
        self._committed_rows = self.rows
        self._tail_checked = False
        self._changed = False
        self.segments: list[_Segment] = []
        for seg in manifest["segments"]:
            path = self.folder / str(seg["name"])
            try:
                index: Any = faiss.read_index(str(path), faiss.IO_FLAG_MMAP if mmap_segments else 0)
            except RuntimeError as exc:
                raise IndexError_(
                    f"vector store at {folder}: unreadable segment {path.name}: {exc}"
                ) from None
            index.nprobe = self._nprobe
            self.segments.append(
                _Segment(path.name, int(seg["lo"]), int(seg["hi"]), index, not mmap_segments)
            )
        self._fd: int | None = None
        self._originals = self._map_originals()

    # ---- creating and opening ------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        folder: Path,
        sample: np.ndarray,
        *,
        expected: int | None = None,
        nlist: int | None = None,
        pca_dim: int | None = None,
        pq_m: int | None = None,
    ) -> VectorStore:
        """Train a new, empty store on ``sample`` (n, d) and publish its folder (which must not exist).

        ``expected``: how many vectors the store is meant to hold (sets ``nlist``, default: the sample's
        size); a store keeps working beyond it, with longer lists (slower searches, same recall)."""
        import faiss

        folder = Path(folder)
        if (folder / _MANIFEST).exists():
            raise IndexError_(f"a vector store already exists at {folder}")
        sample = np.ascontiguousarray(sample, dtype=np.float32)
        if sample.ndim != 2 or len(sample) == 0:
            raise ValueError(f"the training sample must be a non-empty (n, d) array, got {sample.shape}")
        dim = int(sample.shape[1])
        nlist = nlist or default_nlist(expected or len(sample), len(sample))
        spec = factory_spec(dim, nlist, pca_dim, pq_m)
        index = faiss.index_factory(dim, spec, faiss.METRIC_INNER_PRODUCT)
        ivf: Any = faiss.downcast_index(faiss.extract_index_ivf(index))
        ivf.cp.niter = TRAIN_NITER
        ivf.do_polysemous_training = False  # the factory's default; only Hamming pre-filters use it
        index.train(sample)
        manifest = {
            "format": STORE_FORMAT,
            "dim": dim,
            "spec": spec,
            "generation": 0,
            "rows": 0,
            "segments": [],
            "videos": {},
        }
        with atomic_dir(folder) as tmp:
            faiss.write_index(index, str(tmp / _TRAINED))
            (tmp / _VECTORS).touch()
            (tmp / _MANIFEST).write_text(json.dumps(manifest) + "\n", encoding="utf-8")
        return cls(folder, manifest, index)

    @classmethod
    def open(cls, folder: Path, mmap_segments: bool = True) -> VectorStore:
        """The committed store in ``folder``; segments memory-mapped unless ``mmap_segments`` is False."""
        import faiss

        folder = Path(folder)
        error: Exception | None = None
        for _ in range(3):  # a writer may replace segments between our reading the manifest and them
            try:
                manifest = json.loads((folder / _MANIFEST).read_text(encoding="utf-8"))
                if manifest.get("format") != STORE_FORMAT:
                    raise IndexError_(f"format {manifest.get('format')}, expected {STORE_FORMAT}")
                trained = faiss.read_index(str(folder / _TRAINED))
                return cls(folder, manifest, trained, mmap_segments)
            except (IndexError_, OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
                error = exc
        raise IndexError_(f"vector store at {folder} is unreadable: {error}") from None

    @staticmethod
    def exists(folder: Path) -> bool:
        return (Path(folder) / _MANIFEST).is_file()

    # ---- properties ------------------------------------------------------------------------------
    @property
    def ntotal(self) -> int:
        """Vectors that searches can return (rows of removed videos excluded)."""
        return sum(seg.count for seg in self.segments)

    @property
    def nlist(self) -> int:
        return int(self._ivf.nlist)

    @property
    def nprobe(self) -> int:
        return self._nprobe

    @nprobe.setter
    def nprobe(self, value: int) -> None:
        self._nprobe = max(1, min(int(value), self.nlist))
        for seg in self.segments:
            seg.index.nprobe = self._nprobe

    @property
    def originals(self) -> np.ndarray:
        """Every row's float16 vector (n_rows, dim), a read-only map of ``vectors.f16``."""
        if len(self._originals) != self.rows:  # rows added since: map them too
            self._originals = self._map_originals(self.rows)
        return self._originals

    @property
    def memory_mapped(self) -> bool:
        """Whether every segment's codes are read from their files through a memory map."""
        return all(not seg.in_memory for seg in self.segments)

    @property
    def dead_rows(self) -> int:
        """Rows of ``vectors.f16`` that belong to removed videos (disk that a rebuild would free)."""
        return self.rows - sum(n for _, n in self.videos.values())

    def span(self, key: str) -> tuple[int, int] | None:
        """(first row, row count) of a video, or None."""
        return self.videos.get(key)

    def disk_bytes(self) -> int:
        """Bytes of every committed file (segments, trained index, originals, manifest)."""
        names = [_MANIFEST, _TRAINED, *(seg.name for seg in self.segments if seg.name)]
        return sum((self.folder / n).stat().st_size for n in names) + self._committed_rows * self.dim * 2

    # ---- changing --------------------------------------------------------------------------------
    def add(self, key: str, embeddings: np.ndarray) -> tuple[int, int]:
        """Add a video's vectors as the next rows; returns (first row, count). Committed by ``save``."""
        import faiss

        if key in self.videos:
            raise ValueError(f"{key!r} is already in the store; remove it first")
        vectors = np.ascontiguousarray(embeddings, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise ValueError(f"expected (n, {self.dim}) vectors, got {vectors.shape}")
        start, n = self.rows, len(vectors)
        if n:
            self._append_originals(vectors)
            last = self.segments[-1] if self.segments else None
            if last is None or last.name or not last.in_memory:  # a segment for what this session adds
                last = _Segment("", start, start, faiss.clone_index(self._ivf), in_memory=True)
                last.index.nprobe = self._nprobe
                self.segments.append(last)
            coded = self._transform.apply(vectors) if self._transform is not None else vectors
            last.index.add_with_ids(coded, np.arange(start, start + n, dtype=np.int64))
            last.hi, last.dirty = start + n, True
            self.rows += n
        self.videos[key] = (start, n)
        self._changed = True
        return start, n

    def remove(self, key: str) -> int:
        """Remove a video's vectors (by their row range) from the codes; returns how many were removed.

        Its float16 rows stay in ``vectors.f16`` (unreferenced) until the store is rebuilt."""
        import faiss

        start, n = self.videos.pop(key)
        removed = 0
        for seg in self.segments:
            if n and seg.lo < start + n and start < seg.hi:
                self._load_fully(seg)
                removed += int(seg.index.remove_ids(faiss.IDSelectorRange(start, start + n)))
                seg.dirty = True
        self._changed = True
        return removed

    def save(self) -> None:
        """Commit: write new and changed segments, then the manifest; delete what it no longer names."""
        import faiss

        if not self._changed:
            return
        self._merge()
        self.segments = [seg for seg in self.segments if seg.count or not seg.dirty]
        generation = self.generation + 1
        written: list[_Segment] = []
        if self.rows != self._committed_rows:
            with open(self.folder / _VECTORS, "rb+") as handle:
                os.fsync(handle.fileno())
        for i, seg in enumerate(self.segments):
            if seg.dirty or not seg.name:
                name = f"seg-{generation:06d}-{i:03d}.faiss"
                with atomic_path(self.folder / name) as tmp:
                    faiss.write_index(seg.index, str(tmp))
                written.append(seg)
                seg.name = name
        manifest = {
            "format": STORE_FORMAT,
            "dim": self.dim,
            "spec": self.spec,
            "generation": generation,
            "rows": self.rows,
            "segments": [{"name": s.name, "lo": s.lo, "hi": s.hi, "count": s.count} for s in self.segments],
            "videos": {k: list(v) for k, v in self.videos.items()},
        }
        write_text_atomic(self.folder / _MANIFEST, json.dumps(manifest) + "\n")
        self.generation = generation
        self._committed_rows = self.rows
        self._changed = False
        for seg in written:  # done with the in-memory copy: search the file through a memory map
            seg.dirty = False
            index: Any = faiss.read_index(str(self.folder / seg.name), faiss.IO_FLAG_MMAP)
            index.nprobe = self._nprobe
            seg.index, seg.in_memory = index, False
        self.collect_garbage()

    def collect_garbage(self) -> list[Path]:
        """Delete segment files and temporaries that the committed manifest does not name."""
        keep = {seg.name for seg in self.segments}
        removed = []
        for entry in self.folder.iterdir():
            stale = entry.name.startswith("seg-") and entry.name.endswith(".faiss") and entry.name not in keep
            if stale or (entry.name.startswith(".") and entry.name.endswith(".tmp")):
                with contextlib.suppress(FileNotFoundError):
                    entry.unlink()
                removed.append(entry)
        return removed

    # ---- searching -------------------------------------------------------------------------------
    def candidates(self, k: int) -> int:
        """How many PQ candidates a top-``k`` search re-ranks exactly."""
        return max(1, min(RERANK_MAX, max(self.k_candidates, 2 * k)))

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k rows by exact inner product among the PQ candidates: (scores (m, k), rows (m, k)).

        Like a FAISS search: missing results are row -1 with score -inf; at most ``RERANK_MAX`` rows."""
        q = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, self.dim)
        k = max(1, int(k))
        scores = np.full((len(q), k), -np.inf, dtype=np.float32)
        rows = np.full((len(q), k), -1, dtype=np.int64)
        live = [seg for seg in self.segments if seg.count]
        if not live or not len(q):
            return scores, rows
        wanted = self.candidates(k)
        with _one_thread_for(len(q)):
            coded = self._transform.apply(q) if self._transform is not None else q
            coarse_d, coarse_i = self._ivf.quantizer.search(coded, self._nprobe)
            found_d, found_i = [], []
            for seg in live:
                d, i = seg.index.search_preassigned(coded, min(wanted, seg.count), coarse_i, coarse_d)
                found_d.append(d)
                found_i.append(i)
        cand_d, cand_i = np.concatenate(found_d, axis=1), np.concatenate(found_i, axis=1)
        for qi in range(len(q)):
            ok = cand_i[qi] >= 0
            d, i = cand_d[qi][ok], cand_i[qi][ok]
            if len(i) > wanted:
                i = i[np.argpartition(-d, wanted - 1)[:wanted]]
            if not len(i):
                continue
            exact, ordered = self.rerank(q[qi], i)
            top = min(k, len(ordered))
            scores[qi, :top], rows[qi, :top] = exact[:top], ordered[:top]
        return scores, rows

    def rerank(self, query: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``rows`` ordered by exact inner product with ``query`` (float16 originals read from disk)."""
        rows = np.unique(rows)  # sorted: the reads go through the file in order
        self._prefetch(rows)
        vectors = self.originals[rows].astype(np.float32)
        # not BLAS: a few hundred rows are faster on this thread than by waking BLAS's threads
        exact = np.einsum("ij,j->i", vectors, query.astype(np.float32))
        order = np.argsort(-exact, kind="stable")
        return exact[order], rows[order]

    # ---- internals -------------------------------------------------------------------------------
    def _append_originals(self, vectors: np.ndarray) -> None:
        path = self.folder / _VECTORS
        with open(path, "rb+") as handle:
            if not self._tail_checked:  # what a crashed writer appended after the committed rows
                handle.truncate(self._committed_rows * self.dim * 2)
                self._tail_checked = True
            handle.seek(self.rows * self.dim * 2)
            handle.write(vectors.astype(np.float16).tobytes())

    def _map_originals(self, rows: int | None = None) -> np.ndarray:
        """The first ``rows`` (default: committed) rows of vectors.f16, memory-mapped read-only."""
        rows = self._committed_rows if rows is None else rows
        if rows == 0:
            return np.zeros((0, self.dim), dtype=np.float16)
        path = self.folder / _VECTORS
        if self._fd is None:
            self._fd = os.open(path, os.O_RDONLY)
        size = rows * self.dim * 2
        if os.fstat(self._fd).st_size < size:
            raise IndexError_(f"vector store at {self.folder}: {path.name} is shorter than its {rows} rows")
        mapped = mmap.mmap(self._fd, size, access=mmap.ACCESS_READ)
        mapped.madvise(mmap.MADV_RANDOM)  # a search reads scattered rows: no read-ahead around them
        return np.frombuffer(mapped, dtype=np.float16).reshape(rows, self.dim)

    def _prefetch(self, rows: np.ndarray) -> None:
        """Ask the kernel for every candidate row at once (reads in parallel instead of one page fault
        after another: 5-8x faster when they are not cached)."""
        if self._fd is None or len(rows) < 4:
            return
        width = self.dim * 2
        breaks = np.flatnonzero(np.diff(rows) != 1) + 1
        for run in np.split(rows, breaks):
            os.posix_fadvise(self._fd, int(run[0]) * width, len(run) * width, os.POSIX_FADV_WILLNEED)

    def _load_fully(self, seg: _Segment) -> None:
        """Replace a memory-mapped (read-only) segment by an in-memory copy that can change."""
        import faiss

        if not seg.in_memory:
            seg.index = faiss.read_index(str(self.folder / seg.name))
            seg.index.nprobe = self._nprobe
            seg.in_memory = True

    def _merge(self) -> None:
        """Merge the newest two segments while the older is not larger (or there are too many)."""
        segs = self.segments
        while len(segs) >= 2 and (segs[-2].count <= segs[-1].count or len(segs) > MAX_SEGMENTS):
            older, newer = segs[-2], segs[-1]
            self._load_fully(older)
            self._load_fully(newer)
            older.index.merge_from(newer.index, 0)
            older.hi, older.dirty = newer.hi, True
            segs.pop()

    def close(self) -> None:
        """Close the originals' file descriptor (the maps stay valid while arrays use them)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
