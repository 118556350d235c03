"""``--model auto`` (a CLIP preset when its weights are in the local Hugging Face cache, else lite) and
``frameseek models --download NAME``, on a private hub cache holding a tiny random CLIP in the hub's layout."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from conftest import _save_tiny_clip
from frameseek import cli
from frameseek.errors import ModelError
from frameseek.models.download import download_preset
from frameseek.models.factory import create_model
from frameseek.models.registry import DEFAULT_MODEL, PRESETS, packaged_weights, resolve_auto

CLIP_REPO = PRESETS["clip-vit-b32"].hub_ids[0]
REVISION = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty Hugging Face cache of our own, offline (read by the hub library at call time)."""
    from huggingface_hub import constants

    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cache


def cache_repo(cache: Path, repo_id: str, files: Path) -> Path:
    """Lay ``files`` out as the hub cache does: models--owner--name/{refs/main, snapshots/<rev>/…}."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / REVISION
    shutil.copytree(files, snapshot)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(REVISION, encoding="utf-8")
    return snapshot


def test_auto_is_the_default_and_falls_back_to_lite(
    hub_cache: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert DEFAULT_MODEL == "auto"
    name, note = resolve_auto()
    assert name == "lite"
    assert note.startswith("model auto: lite") and "--download siglip2-base" in note and "\n" not in note
    if packaged_weights("lite") is None:
        pytest.skip("the lite model's trained heads are not installed")
    with caplog.at_level(logging.WARNING, logger="frameseek"):
        model = create_model("auto")
    assert model.name == "lite"
    assert [r.getMessage() for r in caplog.records if r.name.startswith("frameseek")] == [note]


def test_auto_picks_a_cached_clip(hub_cache: Path, tmp_path: Path) -> None:
    tiny = tmp_path / "tiny-clip"
    _save_tiny_clip(tiny, projection_dim=512, image_size=224)  # the preset's sizes, tiny layers
    (tiny / "model.safetensors").rename(tmp_path / "weights")
    cache_repo(hub_cache, CLIP_REPO, tiny)
    assert resolve_auto()[0] == "lite"  # a config without weights is not enough
    (tmp_path / "weights").rename(hub_cache / f"models--{CLIP_REPO.replace('/', '--')}" / "snapshots"
                                  / REVISION / "model.safetensors")  # fmt: skip
    name, note = resolve_auto()
    assert (name, note) == (
        "clip-vit-b32",
        "model auto: clip-vit-b32 (its weights are in the local Hugging Face cache)",
    )
    model = create_model("auto")  # loads from the cache with HF_HUB_OFFLINE set: no network
    assert model.name == "clip-vit-b32"
    assert model.encode_texts(["a dog on the grass"]).shape == (1, 512)
    # the loaded model's identity is the preset's, so its index keys differ from lite's
    if packaged_weights("lite") is not None:
        assert model.fingerprint != create_model("lite").fingerprint


def test_download_offline_is_one_line_error(hub_cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["models", "--download", "clip-vit-b32"])
    assert exit_info.value.code not in (0, None)
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:")
    assert CLIP_REPO in lines[0] and "HF_HUB_OFFLINE" in lines[0]


def test_download_finds_a_cached_snapshot(hub_cache: Path, tmp_path: Path) -> None:
    tiny = tmp_path / "tiny-clip"
    _save_tiny_clip(tiny, projection_dim=16, image_size=32)
    snapshot = cache_repo(hub_cache, CLIP_REPO, tiny)
    assert download_preset("clip-vit-b32") == [snapshot]  # offline: the hub library answers from its cache
    with pytest.raises(ModelError, match="needs no download"):
        download_preset("lite")
    with pytest.raises(ModelError, match="unknown model"):
        download_preset("no-such-model")
