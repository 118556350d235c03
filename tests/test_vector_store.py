"""The compressed vector store of large libraries: recall of IVF-PQ + exact re-rank, incremental adds,
removal, crash-safe commits, memory-mapped search; and a library switching to it past its threshold."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import faiss
import numpy as np
import pytest

from frameseek.errors import IndexError_
from frameseek.moments.ranking import rank_library
from frameseek.storage import VideoIndex, add_to_library, index_folder, load_library, save_index
from frameseek.storage import library as library_mod
from frameseek.storage import vectors as vectors_mod
from frameseek.storage.vectors import VectorStore
from frameseek.video.sampling import Sampling

DIM = 64
N = 50_000
VIDEO = 500  # rows a "video" adds


def _unit(x: np.ndarray) -> np.ndarray:
    out: np.ndarray = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    return out


def clustered(n: int, dim: int = DIM, clusters: int = 500, seed: int = 0) -> np.ndarray:
    """Unit vectors around ``clusters`` random unit centres (noise about as large as the centre)."""
    rng = np.random.default_rng(seed)
    centres = _unit(rng.standard_normal((clusters, dim)))
    noise = rng.standard_normal((n, dim)) / np.sqrt(dim)
    return _unit(centres[rng.integers(clusters, size=n)] + 0.6 * noise)


def queries(data: np.ndarray, count: int, seed: int = 1) -> np.ndarray:
    """Near (not on) stored vectors."""
    rng = np.random.default_rng(seed)
    base = data[rng.integers(len(data), size=count)]
    return _unit(base + 0.6 * rng.standard_normal(base.shape) / np.sqrt(data.shape[1]))


def exact(data: np.ndarray, q: np.ndarray, k: int) -> np.ndarray:
    return np.argsort(-(q @ data.T), axis=1, kind="stable")[:, :k]


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    return clustered(N)


@pytest.fixture(scope="module")
def trained(data: np.ndarray, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty store trained on a sample (PCA 64 → 32-d, 256 lists, PQ16); tests copy it."""
    folder = tmp_path_factory.mktemp("trained") / "store"
    sample = data[np.random.default_rng(2).choice(N, 12_000, replace=False)]
    VectorStore.create(folder, sample, expected=N, pca_dim=32, pq_m=16)
    return folder


def _copy(trained: Path, tmp_path: Path, name: str = "store") -> VectorStore:
    shutil.copytree(trained, tmp_path / name)
    return VectorStore.open(tmp_path / name)


def _fill(store: VectorStore, data: np.ndarray, save_every: int = 10) -> None:
    for i, start in enumerate(range(0, len(data), VIDEO)):
        store.add(f"video-{i}", data[start : start + VIDEO])
        if (i + 1) % save_every == 0:
            store.save()
    store.save()


def test_recall_at_10_with_rerank(trained: Path, data: np.ndarray, tmp_path: Path) -> None:
    store = _copy(trained, tmp_path)
    assert store.spec == "PCAR32,IVF256,PQ16"
    _fill(store, data)
    q = queries(data, 100)
    truth = exact(data, q, 10)
    _, rows = store.search(q, 10)
    recall = np.mean([len(set(r) & set(t)) / 10 for r, t in zip(rows, truth, strict=True)])
    assert recall >= 0.95
    # the re-rank is what buys it: the codes alone rank worse
    scores, _ = store.search(q[:1], 10)
    assert np.all(np.diff(scores[0]) <= 0)
    np.testing.assert_allclose(scores[0], (data[rows[0]] @ q[0]), atol=2e-3)  # exact (float16) scores


def test_incremental_adds_equal_a_batch_build(trained: Path, data: np.ndarray, tmp_path: Path) -> None:
    part = data[:20_000]
    incremental = _copy(trained, tmp_path, "incremental")
    _fill(incremental, part, save_every=1)  # a commit per video: segments merge as they go
    assert 1 <= len(incremental.segments) <= 8
    batch = _copy(trained, tmp_path, "batch")
    batch.add("everything", part)
    batch.save()
    assert len(batch.segments) == 1 and incremental.ntotal == batch.ntotal == len(part)
    q = queries(part, 40)
    s1, r1 = VectorStore.open(tmp_path / "incremental").search(q, 10)
    s2, r2 = VectorStore.open(tmp_path / "batch").search(q, 10)
    np.testing.assert_array_equal(r1, r2)
    np.testing.assert_allclose(s1, s2, rtol=0, atol=1e-6)
    assert incremental.span("video-3") == (3 * VIDEO, VIDEO)


def test_remove_a_video(trained: Path, data: np.ndarray, tmp_path: Path) -> None:
    part = data[:10_000]
    store = _copy(trained, tmp_path)
    _fill(store, part, save_every=1)
    start, n = store.span("video-7") or (0, 0)
    q = part[start : start + 5]  # queries that are the removed video's own frames
    _, before = store.search(q, 10)
    assert np.isin(before[:, 0], np.arange(start, start + n)).all()
    assert store.remove("video-7") == n
    store.save()
    again = VectorStore.open(store.folder)
    assert again.ntotal == len(part) - n and again.span("video-7") is None
    assert again.dead_rows == n
    _, after = again.search(q, 10)
    assert not np.isin(after, np.arange(start, start + n)).any()
    assert (after >= 0).all()
    # what the other rows return is unchanged
    other = queries(part[n * 8 :], 10)
    np.testing.assert_array_equal(store.search(other, 10)[1], again.search(other, 10)[1])


def test_a_crash_while_saving_leaves_the_previous_store(
    trained: Path, data: np.ndarray, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _copy(trained, tmp_path)
    _fill(store, data[:5_000])
    q = queries(data[:5_000], 10)
    before = store.search(q, 10)
    files_before = sorted(p.name for p in store.folder.iterdir())

    def crash_in_write(index: object, path: str) -> None:
        Path(path).write_bytes(b"half a segment")
        raise OSError("disk full")

    store.add("late", data[5_000:6_000])
    monkeypatch.setattr(faiss, "write_index", crash_in_write)
    with pytest.raises(OSError, match="disk full"):
        store.save()
    monkeypatch.undo()
    reopened = VectorStore.open(store.folder)  # what another process sees, and what a restart sees
    assert reopened.span("late") is None and reopened.rows == 5_000
    np.testing.assert_array_equal(reopened.search(q, 10)[1], before[1])
    # a crash after the segment but before the manifest: same
    store2 = VectorStore.open(store.folder)
    store2.add("late", data[5_000:6_000])

    def crash_in_manifest(target: Path, text: str) -> None:
        raise OSError("killed")

    monkeypatch.setattr(vectors_mod, "write_text_atomic", crash_in_manifest)
    with pytest.raises(OSError, match="killed"):
        store2.save()
    monkeypatch.undo()
    reopened = VectorStore.open(store.folder)
    assert reopened.span("late") is None and reopened.ntotal == 5_000
    np.testing.assert_array_equal(reopened.search(q, 10)[1], before[1])
    # the next writer cuts off the uncommitted rows and leaves no debris once it commits
    reopened.add("late", data[5_000:6_000])
    reopened.save()
    assert (store.folder / "vectors.f16").stat().st_size == 6_000 * DIM * 2
    final = VectorStore.open(store.folder)
    assert final.span("late") == (5_000, 1_000) and final.ntotal == 6_000
    assert np.array_equal(final.originals[5_000:6_000], data[5_000:6_000].astype(np.float16))
    assert {p.name for p in store.folder.iterdir()} - set(files_before) <= {s.name for s in final.segments}
    assert not [p for p in store.folder.iterdir() if p.name.endswith(".tmp")]


def test_memory_mapped_load(trained: Path, data: np.ndarray, tmp_path: Path) -> None:
    store = _copy(trained, tmp_path)
    _fill(store, data[:8_000], save_every=4)
    opened = VectorStore.open(store.folder)
    assert opened.memory_mapped and opened.segments
    for seg in opened.segments:  # FAISS reads the codes through a read-only map of the file
        assert isinstance(faiss.downcast_InvertedLists(seg.index.invlists), faiss.OnDiskInvertedLists)
    assert not opened.originals.flags.writeable and opened.originals.dtype == np.float16
    assert opened.originals.base is not None
    q = queries(data[:8_000], 5)
    np.testing.assert_array_equal(opened.search(q, 10)[1], store.search(q, 10)[1])
    in_memory = VectorStore.open(store.folder, mmap_segments=False)
    assert not in_memory.memory_mapped
    np.testing.assert_array_equal(in_memory.search(q, 10)[1], store.search(q, 10)[1])
    # changing a memory-mapped store loads what it changes
    opened.remove("video-0")
    opened.save()
    assert VectorStore.open(store.folder).ntotal == 8_000 - VIDEO


def test_store_edges(trained: Path, data: np.ndarray, tmp_path: Path) -> None:
    store = _copy(trained, tmp_path)
    scores, rows = store.search(data[:2], 5)  # empty
    assert (rows == -1).all() and np.isneginf(scores).all()
    store.add("a", data[:300])
    with pytest.raises(ValueError, match="already"):
        store.add("a", data[:10])
    with pytest.raises(ValueError, match="vectors"):
        store.add("b", data[:10, :8])
    _, rows = store.search(data[:1], 400)  # before any save: searches what was added
    found = rows[0][rows[0] >= 0]  # what the probed lists hold, padded with -1 like FAISS
    assert found[0] == 0 and 10 < len(found) <= 300 and len(set(found)) == len(found)
    with pytest.raises(IndexError_, match="already exists"):
        VectorStore.create(store.folder, data[:1000])
    (store.folder / "manifest.json").write_text("{", encoding="utf-8")
    with pytest.raises(IndexError_, match="unreadable"):
        VectorStore.open(store.folder)
    assert vectors_mod.factory_spec(1536, 4096) == "PCAR256,IVF4096,PQ64"
    assert vectors_mod.default_nlist(10_000_000, 200_000) == 4096
    assert vectors_mod.default_nprobe(4096) == 384 and vectors_mod.default_nprobe(256) == 32


# ------------------------------------------------------------------------------------ in a library


def _video(i: int, vectors: np.ndarray) -> VideoIndex:
    sha = f"{i:04d}" + "cd" * 30
    sampling = Sampling(fps=1.0)
    return VideoIndex(
        folder=index_folder(sha, "fp-big", sampling),
        video_path=f"/videos/v{i}.mp4",
        video_sha256=sha,
        title=f"v{i}",
        origin=f"/videos/v{i}.mp4",
        model_name="test-model",
        model_fingerprint="fp-big",
        sampling=sampling,
        duration=float(len(vectors)),
        times=np.arange(len(vectors), dtype=np.float64),
        embeddings=vectors,
    )


def test_a_large_library_uses_the_store(
    fs_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(library_mod, "STORE_MIN_FRAMES", 3_000)
    vectors = clustered(6_000, dim=32, clusters=60, seed=3)
    for i in range(5):
        video = _video(i, vectors[i * 1000 : (i + 1) * 1000])
        save_index(video, None)
        add_to_library(video, "big")
    matrix = load_library("big", "fp-big")
    store = matrix.ann
    assert isinstance(store, VectorStore) and store.ntotal == 5_000 and len(matrix.videos) == 5
    assert matrix.embeddings.dtype == np.float16 and len(matrix.embeddings) == 5_000
    q = queries(vectors[:5_000], 20)
    found = [matrix.search(x, 10)[1] for x in q]
    truth = exact(vectors[:5_000], q, 10)
    assert np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth, strict=True)]) >= 0.95
    assert rank_library(matrix, q[0], 3, 2.0, 0.5)  # the usual ranking runs on it

    def no_training(*args: object, **kwargs: object) -> VectorStore:
        raise AssertionError("the store must not be trained again")

    monkeypatch.setattr(VectorStore, "create", no_training)
    # adding a video updates the store in place, under the library's lock
    late = _video(5, vectors[5_000:])
    save_index(late, None)
    add_to_library(late, "big")
    assert VectorStore.open(store.folder).span(str(late.folder)) == (5_000, 1_000)
    add_to_library(late, "big")  # again: nothing changes
    assert VectorStore.open(store.folder).rows == 6_000
    matrix = load_library("big", "fp-big")
    assert matrix.ann.ntotal == 6_000 and [v.title for v in matrix.videos][-1] == "v5"
    row = int(matrix.search(vectors[5_123], 1)[1][0])
    assert row == 5_123 and matrix.videos[int(matrix.video_ids[row])].title == "v5"
    assert matrix.times[row] == 123.0
    # a video whose index is gone leaves the store at the next load; row ids stay valid
    shutil.rmtree(_video(1, vectors[:1]).folder)
    matrix = load_library("big", "fp-big")
    assert [v.title for v in matrix.videos] == ["v0", "v2", "v3", "v4", "v5"]
    assert matrix.ann.ntotal == 5_000 and matrix.ann.dead_rows == 1_000
    row = int(matrix.search(vectors[2_500], 1)[1][0])
    assert row == 2_500 and matrix.videos[int(matrix.video_ids[row])].title == "v2"
    hits = rank_library(matrix, vectors[4_321], 1, 2.0, 0.5)
    assert hits[0].title == "v4" and hits[0].time == 321.0
    # exact search on request still stacks the float32 embeddings
    assert load_library("big", "fp-big", use_ann=False).ann is None
    manifest = json.loads((store.folder / "manifest.json").read_text(encoding="utf-8"))
    assert len(manifest["videos"]) == 5
