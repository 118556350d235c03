"""Stored frame indexes (atomic, validated, rebuilt when damaged), libraries, exact and FAISS search."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from frameseek import settings as fs_settings
from frameseek.errors import IndexError_, InputError
from frameseek.storage import (
    INDEX_FORMAT,
    LibraryMatrix,
    VideoIndex,
    add_to_library,
    build_ann,
    exact_top_k,
    index_folder,
    library_entries,
    load_library,
    save_index,
    try_load,
)
from frameseek.storage import library as library_mod
from frameseek.storage.store import legacy_index_folder, migrate_legacy
from frameseek.video.sampling import Sampling

DIM = 16


def _unit(rows: np.ndarray) -> np.ndarray:
    unit: np.ndarray = (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)
    return unit


def make_index(
    name: str = "clip", frames: int = 12, *, fingerprint: str = "fp-test", seed: int = 0, fps: float = 1.0
) -> VideoIndex:
    """An in-memory index of a fake video (random unit embeddings, one frame per 1/fps s)."""
    rng = np.random.default_rng(seed)
    sha = f"{seed:02d}" + "ab" * 31
    sampling = Sampling(fps=fps)
    return VideoIndex(
        folder=index_folder(sha, fingerprint, sampling),
        video_path=f"/videos/{name}.mp4",
        video_sha256=sha,
        title=name,
        origin=f"/videos/{name}.mp4",
        model_name="test-model",
        model_fingerprint=fingerprint,
        sampling=sampling,
        duration=frames / fps,
        times=np.arange(frames, dtype=np.float64) / fps,
        embeddings=_unit(rng.normal(size=(frames, DIM))),
        extra={"width": 64, "height": 48},
    )


def _thumbs(folder: Path, count: int) -> Path:
    folder.mkdir(parents=True)
    for i in range(count):
        (folder / f"{i:06d}.jpg").write_bytes(b"\xff\xd8 fake jpeg \xff\xd9")
    return folder


# ------------------------------------------------------------------------------------ save / load


def test_round_trip(fs_home: Path, tmp_path: Path) -> None:
    original = make_index(frames=7)
    save_index(original, _thumbs(tmp_path / "thumbs", 7))

    assert original.folder.is_dir()
    assert original.folder.is_relative_to(fs_home / "indexes")
    loaded = VideoIndex.load(original.folder)
    assert loaded.folder == original.folder
    for name in ("video_path", "video_sha256", "title", "origin", "model_name", "model_fingerprint"):
        assert getattr(loaded, name) == getattr(original, name)
    assert loaded.sampling == original.sampling
    assert loaded.duration == original.duration
    assert loaded.extra == original.extra
    assert loaded.times.dtype == np.float64
    assert loaded.embeddings.dtype == np.float32
    np.testing.assert_array_equal(loaded.times, original.times)
    np.testing.assert_array_equal(loaded.embeddings, original.embeddings)
    assert len(loaded) == 7
    assert all(loaded.thumbnail(i).is_file() for i in range(7))
    assert not (tmp_path / "thumbs").exists()  # moved into the index, not copied
    meta = json.loads((original.folder / "meta.json").read_text())
    assert meta["format"] == INDEX_FORMAT and meta["frames"] == 7
    assert try_load(original.folder) is not None


def test_save_without_thumbnails_and_overwrite(fs_home: Path) -> None:
    first = make_index(frames=3)
    save_index(first, None)
    assert (first.folder / "thumbs").is_dir()
    assert not first.thumbnail(0).exists()

    second = dataclasses.replace(first, title="renamed")
    save_index(second, None)  # publishing over an existing index replaces it whole
    assert VideoIndex.load(first.folder).title == "renamed"
    assert [p.name for p in first.folder.parent.iterdir() if p.name.startswith(".")] == []


def test_failed_save_leaves_no_final_folder(fs_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    index = make_index()

    def half_write(self: VideoIndex, tmp: Path) -> None:
        (tmp / "embeddings.safetensors").write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(VideoIndex, "write", half_write)
    with pytest.raises(OSError, match="disk full"):
        save_index(index, None)
    assert not index.folder.exists()
    assert list(index.folder.parent.iterdir()) == []  # the temporary folder is gone too
    assert try_load(index.folder) is None


def test_failed_save_keeps_the_previous_index(fs_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    index = make_index()
    save_index(index, None)

    def broken(self: VideoIndex, tmp: Path) -> None:
        raise RuntimeError("interrupted")

    monkeypatch.setattr(VideoIndex, "write", broken)
    with pytest.raises(RuntimeError):
        save_index(dataclasses.replace(index, title="new"), None)
    assert VideoIndex.load(index.folder).title == index.title


# ------------------------------------------------------------------------------------ damaged indexes


def _saved(fs_home: Path) -> VideoIndex:
    index = make_index(frames=9)
    save_index(index, None)
    return index


def _truncate_safetensors(folder: Path) -> None:
    path = folder / "embeddings.safetensors"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _meta(folder: Path) -> dict[str, object]:
    meta: dict[str, object] = json.loads((folder / "meta.json").read_text())
    return meta


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(_truncate_safetensors, id="truncated-safetensors"),
        pytest.param(lambda f: (f / "embeddings.safetensors").unlink(), id="missing-safetensors"),
        pytest.param(lambda f: (f / "embeddings.safetensors").write_bytes(b""), id="empty-safetensors"),
        pytest.param(lambda f: (f / "meta.json").write_text("{not json"), id="meta-not-json"),
        pytest.param(lambda f: (f / "meta.json").write_bytes(b"\xff\xfe\x00"), id="meta-not-utf8"),
        pytest.param(lambda f: (f / "meta.json").write_text("[1, 2, 3]"), id="meta-not-an-object"),
        pytest.param(
            lambda f: (f / "meta.json").write_text(json.dumps({"format": INDEX_FORMAT, "frames": 9})),
            id="meta-missing-fields",
        ),
        pytest.param(
            lambda f: (f / "meta.json").write_text(json.dumps({**_meta(f), "frames": 4})),
            id="meta-wrong-frame-count",
        ),
        pytest.param(
            lambda f: (f / "meta.json").write_text(json.dumps({**_meta(f), "format": 1})),
            id="meta-unknown-old-format",
        ),
        pytest.param(
            lambda f: (f / "meta.json").write_text(json.dumps({**_meta(f), "sampling": 3})),
            id="meta-bad-sampling",
        ),
    ],
)
def test_damaged_index_is_discarded(fs_home: Path, damage: object) -> None:
    index = _saved(fs_home)
    damage(index.folder)  # type: ignore[operator]
    with pytest.raises(IndexError_):
        VideoIndex.load(index.folder)
    assert try_load(index.folder) is None
    assert not index.folder.exists()  # removed, so the next query rebuilds it
    save_index(index, None)  # and a rebuild publishes cleanly at the same place
    assert try_load(index.folder) is not None


def _legacy_copy(index: VideoIndex) -> Path:
    """``index`` rewritten as format 2 left it: at ``<sha>/<fingerprint>-<format-2 key>``, stopped_at in extra."""
    old = legacy_index_folder(index.video_sha256, index.model_fingerprint, index.sampling)
    shutil.copytree(index.folder, old)
    meta = _meta(old)
    meta.pop("stopped_at")
    meta.pop("track")
    meta.update(format=2, extra={**index.extra, "stopped_at": 5.0})
    (old / "meta.json").write_text(json.dumps(meta))
    shutil.rmtree(index.folder)
    return old


def test_a_format_2_index_is_moved_into_place_and_upgraded(fs_home: Path) -> None:
    index = _saved(fs_home)
    old = _legacy_copy(index)
    assert try_load(index.folder) is None
    moved = migrate_legacy(index.video_sha256, index.model_fingerprint, index.sampling)
    assert moved is not None and moved.folder == index.folder and not old.exists()
    again = VideoIndex.load(index.folder)
    assert _meta(index.folder)["format"] == INDEX_FORMAT
    assert again.stopped_at == 5.0 and "stopped_at" not in again.extra
    np.testing.assert_array_equal(again.embeddings, index.embeddings)
    assert migrate_legacy(index.video_sha256, index.model_fingerprint, index.sampling) is None  # once


def test_a_library_entry_written_by_format_2_finds_its_moved_index(fs_home: Path) -> None:
    index = _saved(fs_home)
    old = _legacy_copy(index)
    legacy = VideoIndex.load(old)  # format 2 still reads where it lies
    add_to_library(legacy, "old")
    migrate_legacy(index.video_sha256, index.model_fingerprint, index.sampling)
    matrix = load_library("old", index.model_fingerprint)
    assert [v.folder for v in matrix.videos] == [index.folder]


def test_a_damaged_format_2_index_is_removed_not_moved(fs_home: Path) -> None:
    index = _saved(fs_home)
    old = _legacy_copy(index)
    (old / "embeddings.safetensors").write_bytes(b"")
    assert migrate_legacy(index.video_sha256, index.model_fingerprint, index.sampling) is None
    assert not old.exists() and not index.folder.exists()


def test_mismatched_arrays_are_inconsistent(fs_home: Path) -> None:
    """times and embeddings of different lengths are caught even when one matches meta's count."""
    from safetensors.numpy import save_file

    index = _saved(fs_home)
    save_file(
        {"times": np.arange(9, dtype=np.float64), "embeddings": np.zeros((5, DIM), np.float32)},
        str(index.folder / "embeddings.safetensors"),
    )
    assert try_load(index.folder) is None


def test_try_load_of_missing_or_incomplete_folder(fs_home: Path) -> None:
    index = make_index()
    assert try_load(index.folder) is None
    index.folder.mkdir(parents=True)
    (index.folder / "embeddings.safetensors").write_bytes(b"x")  # no meta.json: not published
    assert try_load(index.folder) is None


# ------------------------------------------------------------------------------------ sampling keys


def test_sampling_key_differs_per_setting() -> None:
    base = Sampling()
    variants = [
        Sampling(fps=2.0),
        Sampling(scene=True),
        Sampling(scene_max_gap=5.0),
        Sampling(start=1.0),
        Sampling(end=30.0),
        Sampling(max_frames=100),
        Sampling(max_side=320),
    ]
    keys = {base.key(), *(v.key() for v in variants)}
    assert len(keys) == len(variants) + 1
    assert Sampling().key() == base.key()
    assert all(len(k) == 12 for k in keys)


def test_sampling_key_ignores_number_types() -> None:
    """The Python API (fps=1) and the CLI (fps=1.0) share one index."""
    assert Sampling(fps=1).key() == Sampling(fps=1.0).key()
    assert Sampling(start=2, end=5).key() == Sampling(start=2.0, end=5.0).key()


def test_index_folder_depends_on_video_model_and_sampling(fs_home: Path) -> None:
    sha = "cd" * 32
    base = index_folder(sha, "fp1", Sampling())
    assert base.is_relative_to(fs_settings.indexes_dir())
    assert len({base, index_folder("ef" * 32, "fp1", Sampling()),
                index_folder(sha, "fp2", Sampling()),
                index_folder(sha, "fp1", Sampling(fps=2.0))}) == 4  # fmt: skip


@pytest.mark.parametrize(
    "kwargs",
    [
        {"fps": 0.0},
        {"fps": -1.0},
        {"fps": 500.0},
        {"start": -1.0},
        {"start": 5.0, "end": 5.0},
        {"start": 5.0, "end": 2.0},
        {"max_frames": 0},
        {"scene_max_gap": 0.0},
    ],
)
def test_sampling_validation(kwargs: dict[str, float]) -> None:
    with pytest.raises(InputError):
        Sampling(**kwargs)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------ libraries


def test_library_add_and_list(fs_home: Path) -> None:
    a, b = make_index("a", seed=1), make_index("b", seed=2)
    for index in (a, b):
        save_index(index, None)
    assert library_entries("mine") == []
    add_to_library(a, "mine")
    add_to_library(b, "mine")
    add_to_library(a, "mine")  # adding again does not duplicate
    entries = library_entries("mine")
    assert sorted(e["title"] for e in entries) == ["a", "b"]
    entry = next(e for e in entries if e["title"] == "a")
    assert entry["index_folder"] == str(a.folder)
    assert entry["model_fingerprint"] == "fp-test"
    assert entry["frames"] == len(a)
    assert library_entries("default") == []  # libraries are separate


@pytest.mark.parametrize("name", ["", "../escape", "a b", "x/y", "semi;colon"])
def test_library_names_are_checked(fs_home: Path, name: str) -> None:
    with pytest.raises(InputError):
        library_entries(name)


def test_unreadable_library_file(fs_home: Path) -> None:
    path = fs_settings.libraries_dir() / "broken" / "library.json"
    path.parent.mkdir(parents=True)
    path.write_text("{oops")
    with pytest.raises(IndexError_):
        library_entries("broken")


def test_load_library_filters_model_and_skips_damaged(fs_home: Path) -> None:
    a, b = make_index("a", 5, seed=1), make_index("b", 7, seed=2)
    other = make_index("other-model", 3, seed=3, fingerprint="fp-other")
    for index in (a, b, other):
        save_index(index, None)
        add_to_library(index)

    matrix = load_library("default", "fp-test")
    assert [v.title for v in matrix.videos] == ["a", "b"]
    assert matrix.embeddings.shape == (12, DIM)
    np.testing.assert_array_equal(matrix.video_ids, [0] * 5 + [1] * 7)
    np.testing.assert_array_equal(matrix.times, np.concatenate([a.times, b.times]))
    assert matrix.ann is None  # small: exact search

    (b.folder / "meta.json").write_text("{")  # a damaged index is skipped, not fatal
    assert [v.title for v in load_library("default", "fp-test").videos] == ["a"]
    with pytest.raises(IndexError_, match="no videos"):
        load_library("default", "fp-unknown")
    with pytest.raises(IndexError_):
        load_library("empty", "fp-test")


# ------------------------------------------------------------------------------------ search


@settings(max_examples=60, deadline=None)
@given(
    st.integers(min_value=1, max_value=300),
    st.integers(min_value=1, max_value=40),
    st.integers(min_value=0, max_value=2**16),
)
def test_exact_top_k_matches_brute_force(n: int, k: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    embeddings = _unit(rng.normal(size=(n, DIM)))
    query = _unit(rng.normal(size=(1, DIM)))[0]
    scores, rows = exact_top_k(embeddings, query, k)

    brute = embeddings @ query
    expected = np.argsort(-brute, kind="stable")[: min(k, n)]
    assert len(rows) == min(k, n)
    np.testing.assert_allclose(scores, brute[expected], rtol=1e-6)
    np.testing.assert_allclose(scores, brute[rows], rtol=1e-6)
    assert list(scores) == sorted(scores, reverse=True)
    assert len(set(rows.tolist())) == len(rows)


def test_exact_top_k_edge_cases() -> None:
    embeddings = _unit(np.random.default_rng(0).normal(size=(4, DIM)))
    scores, rows = exact_top_k(embeddings, embeddings[2], 0)
    assert len(scores) == len(rows) == 0
    scores, rows = exact_top_k(embeddings, embeddings[2], 1)
    assert rows.tolist() == [2] and scores[0] == pytest.approx(1.0, abs=1e-5)


def _mixture(n: int, dim: int, clusters: int, spread: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors from a Gaussian mixture (like frame embeddings: shots form clusters), and its centers."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(clusters, dim))
    points = centers[rng.integers(0, clusters, n)] + spread * rng.normal(size=(n, dim))
    return _unit(points), centers


def test_ann_recall_against_exact() -> None:
    data, centers = _mixture(20_000, 64, 50, 0.5, seed=1)
    rng = np.random.default_rng(2)
    queries = _unit(centers[rng.integers(0, 50, 200)] + 0.5 * rng.normal(size=(200, 64)))
    ann = build_ann(data)
    assert ann.ntotal == len(data)

    _, ann_rows = ann.search(queries, 10)  # one batched call
    recalls = []
    for query, found in zip(queries, ann_rows, strict=True):
        _, exact_rows = exact_top_k(data, query, 10)
        recalls.append(len(set(exact_rows.tolist()) & set(found.tolist())) / 10)
    recall = float(np.mean(recalls))
    assert recall >= 0.9, f"recall@10 of the FAISS index vs exact search is {recall:.3f}"


@pytest.mark.parametrize("n", [1, 5, 15, 40, 300])
def test_ann_works_for_small_libraries(n: int) -> None:
    """Forcing ANN on a library smaller than the default number of lists must not crash."""
    data, _ = _mixture(n, DIM, 3, 0.3, seed=n)
    ann = build_ann(data)
    assert 1 <= ann.nlist <= n
    assert ann.nprobe <= ann.nlist
    _, rows = ann.search(data[n // 2].reshape(1, -1), 1)
    assert rows[0][0] == n // 2


def test_ann_refuses_an_empty_matrix() -> None:
    with pytest.raises(IndexError_):
        build_ann(np.zeros((0, DIM), np.float32))


def test_library_matrix_search(fs_home: Path) -> None:
    videos = [make_index(name, 30, seed=i) for i, name in enumerate(["a", "b", "c"])]
    embeddings = np.concatenate([v.embeddings for v in videos])
    times = np.concatenate([v.times for v in videos])
    video_ids = np.repeat(np.arange(3), 30)
    exact = LibraryMatrix(embeddings, times, video_ids, videos)
    ann = LibraryMatrix(embeddings, times, video_ids, videos, build_ann(embeddings))

    target = 30 + 17  # video "b", frame 17
    query = embeddings[target]
    for matrix in (exact, ann):
        scores, rows = matrix.search(query, 5)
        assert int(rows[0]) == target
        assert scores[0] == pytest.approx(1.0, abs=1e-5)
        assert int(matrix.video_ids[rows[0]]) == 1 and matrix.times[rows[0]] == 17.0
        assert list(scores) == sorted(scores, reverse=True)
    _, rows = exact.search(query, 1000)  # k is clamped to the number of frames
    assert len(rows) == 90
    assert len(exact.search(query, 0)[1]) == 0


def test_large_library_uses_ann(fs_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(library_mod, "ANN_MIN_FRAMES", 50)
    for i in range(3):
        index = make_index(f"v{i}", 30, seed=i)
        save_index(index, None)
        add_to_library(index)
    matrix = load_library("default", "fp-test")
    assert matrix.ann is not None
    assert load_library("default", "fp-test", use_ann=False).ann is None
    _, rows = matrix.search(matrix.embeddings[42], 3)
    assert int(rows[0]) == 42


def test_library_ann_is_built_once_and_reused(fs_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(library_mod, "ANN_MIN_FRAMES", 50)
    for i in range(3):
        index = make_index(f"v{i}", 30, seed=i)
        save_index(index, None)
        add_to_library(index)
    first = load_library("default", "fp-test")
    stored = list((fs_home / "libraries" / "default").glob("ann-*.faiss"))
    assert len(stored) == 1

    def no_build(*args: object, **kwargs: object) -> None:
        raise AssertionError("the stored ANN index should have been reused")

    real_build = library_mod.build_ann
    monkeypatch.setattr(library_mod, "build_ann", no_build)
    again = load_library("default", "fp-test")
    assert again.ann is not None and again.ann.ntotal == first.ann.ntotal == 90
    _, rows = again.search(again.embeddings[17], 3)
    assert int(rows[0]) == 17
    monkeypatch.setattr(library_mod, "build_ann", real_build)
    extra = make_index("v3", 30, seed=3)  # a new member → a new index replaces the stale one
    save_index(extra, None)
    add_to_library(extra)
    assert load_library("default", "fp-test").ann.ntotal == 120
    assert len(list((fs_home / "libraries" / "default").glob("ann-*.faiss"))) == 1
