"""The ``siglip2-base`` preset, ``--model auto``'s order (SigLIP 2, then CLIP, then lite) and
``frameseek models --download siglip2-base``, on private Hugging Face caches that hold a tiny randomly
initialised SigLIP 2 (and CLIP) in the hub's layout: the preset loads through the same ``from_pretrained``
path a user's downloaded copy takes, offline."""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import torch

from conftest import WORDS, _save_tiny_clip
from frameseek import cli
from frameseek.errors import ModelError
from frameseek.models.download import download_preset
from frameseek.models.factory import create_model
from frameseek.models.registry import AUTO_CANDIDATES, PRESETS, resolve_auto
from frameseek.search import Searcher
from frameseek.video.sampling import Sampling

SIGLIP_REPO = PRESETS["siglip2-base"].hub_ids[0]
CLIP_REPO = PRESETS["clip-vit-b32"].hub_ids[0]
REVISION = "89abcdef0123456789abcdef0123456789abcdef"


def save_tiny_siglip2(folder: Path) -> None:
    """A SigLIP 2 checkpoint as the fixed-resolution hub repositories store it (SigLIP's architecture,
    Gemma's tokenizer) at the preset's sizes (768-d, 256 px) with one small layer per tower."""
    from transformers import GemmaTokenizer, SiglipConfig, SiglipModel

    folder.mkdir(parents=True)
    vocab = {"<pad>": 0, "<eos>": 1, "<bos>": 2, "<unk>": 3, "<mask>": 4}
    for char in sorted(set("".join(WORDS)) | {"▁"}):
        vocab.setdefault(char, len(vocab))
    merges: list[tuple[str, str]] = []
    for word in WORDS:  # merges that spell "▁word" for each word
        parts = ["▁", *word]
        while len(parts) > 1:
            if (parts[0], parts[1]) not in merges:
                merges.append((parts[0], parts[1]))
            parts = [parts[0] + parts[1], *parts[2:]]
            vocab.setdefault(parts[0], len(vocab))
    tokenizer = GemmaTokenizer(vocab=vocab, merges=merges)
    text = {
        "vocab_size": len(vocab),
        "hidden_size": 768,
        "intermediate_size": 32,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "max_position_embeddings": 64,
        "pad_token_id": 0,
    }
    vision = {
        "hidden_size": 768,
        "intermediate_size": 32,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "image_size": 256,
        "patch_size": 32,
    }
    torch.manual_seed(0)
    SiglipModel(SiglipConfig(text_config=text, vision_config=vision)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def run_cli(args: list[str]) -> int:
    """``frameseek ARGS`` in this process; its exit status (the entry point always exits)."""
    with pytest.raises(SystemExit) as exit_info:
        cli.main(args)
    return int(exit_info.value.code or 0)


def cache_repo(cache: Path, repo_id: str, files: Path) -> Path:
    """Lay ``files`` out as the hub cache does: models--owner--name/{refs/main, snapshots/<rev>/…}."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / REVISION
    shutil.copytree(files, snapshot)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(REVISION, encoding="utf-8")
    return snapshot


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny-siglip")
    save_tiny_siglip2(root / "siglip2")
    _save_tiny_clip(root / "clip", projection_dim=512, image_size=224)  # the CLIP preset's sizes
    return {SIGLIP_REPO: root / "siglip2", CLIP_REPO: root / "clip"}


def use_cache(monkeypatch: pytest.MonkeyPatch, cache: Path) -> None:
    """Point the hub library at ``cache``, offline (it reads these at call time)."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def siglip_cache(tiny_models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A hub cache holding only the tiny SigLIP 2 under the preset's repository id, for the module."""
    cache = tmp_path_factory.mktemp("hub-siglip")
    cache_repo(cache, SIGLIP_REPO, tiny_models[SIGLIP_REPO])
    with pytest.MonkeyPatch.context() as mp:
        use_cache(mp, cache)
        yield cache


def test_auto_prefers_siglip2_then_clip_then_lite(
    tiny_models: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert AUTO_CANDIDATES == ("siglip2-base", "clip-vit-b32")
    cache = tmp_path / "hub"
    cache.mkdir()
    use_cache(monkeypatch, cache)
    name, note = resolve_auto()
    assert name == "lite" and "--download siglip2-base" in note
    cache_repo(cache, CLIP_REPO, tiny_models[CLIP_REPO])
    assert resolve_auto()[0] == "clip-vit-b32"
    cache_repo(cache, SIGLIP_REPO, tiny_models[SIGLIP_REPO])
    assert resolve_auto() == (
        "siglip2-base",
        "model auto: siglip2-base (its weights are in the local Hugging Face cache)",
    )


def test_siglip2_without_its_weights_is_not_chosen(
    tiny_models: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "hub"
    cache.mkdir()
    use_cache(monkeypatch, cache)
    snapshot = cache_repo(cache, SIGLIP_REPO, tiny_models[SIGLIP_REPO])
    (snapshot / "model.safetensors").unlink()  # a config alone (an interrupted download) is not enough
    assert resolve_auto()[0] == "lite"


def test_the_preset_loads_the_cached_siglip2_offline_and_embeds_both_sides(siglip_cache: Path) -> None:
    model = create_model("auto")  # from the cache, HF_HUB_OFFLINE set: no network
    assert model.name == "siglip2-base" and model.embed_dim == 768
    texts = model.encode_texts(["A Dog on the GRASS", "a dog on the grass", "two people in the snow"])
    assert texts.shape == (3, 768)
    assert np.allclose(np.linalg.norm(texts, axis=1), 1.0, atol=1e-4)
    assert np.allclose(texts[0], texts[1], atol=1e-6)  # lower-cased, as SigLIP 2 was trained
    assert not np.allclose(texts[1], texts[2], atol=1e-3)
    frames = np.zeros((2, 90, 160, 3), dtype=np.uint8)
    frames[1, :, :, 0] = 255
    images = model.encode_images(list(frames))
    assert images.shape == (2, 768) and not np.allclose(images[0], images[1], atol=1e-3)


def test_siglip2_pads_on_the_right_to_its_length(siglip_cache: Path) -> None:
    model = create_model("siglip2-base")
    encoder = model.text_backbone
    batch = encoder.tokenizer(["a dog"], padding="max_length", max_length=encoder.max_length)
    ids = batch["input_ids"][0]
    assert (
        len(ids) == 64
        and ids[0] != encoder.tokenizer.pad_token_id
        and ids[-1] == encoder.tokenizer.pad_token_id
    )


def test_siglip2_searches_the_street_video(siglip_cache: Path, fs_home: Path, shared_data: Path) -> None:
    searcher = Searcher("siglip2-base", sampling=Sampling(fps=1.0))
    response = searcher.search(shared_data / "videos" / "bikes.mp4", "a cyclist wearing a helmet", top_k=3)
    assert response.results  # random weights: the order means nothing, the path must run end to end
    for hit in response.results:
        assert 0.0 <= hit.time <= 10.0 and 0.0 <= hit.confidence <= 1.0


def test_download_finds_the_cached_snapshot_and_names_it(
    siglip_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    snapshot = siglip_cache / f"models--{SIGLIP_REPO.replace('/', '--')}" / "snapshots" / REVISION
    assert download_preset("siglip2-base") == [snapshot]
    assert run_cli(["models", "--download", "siglip2-base", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"model": "siglip2-base", "folders": [str(snapshot)]}


class FakeHub(BaseHTTPRequestHandler):
    """The four requests ``snapshot_download`` makes of the hub (repository info, file tree, HEAD and GET of
    each file), answered from a folder, on a real HTTP server on 127.0.0.1."""

    files: ClassVar[dict[str, bytes]] = {}
    requests: ClassVar[list[str]] = []

    def log_message(self, format: str, *args: object) -> None:
        pass

    def answer(self, head: bool) -> None:
        path = self.path.split("?")[0]
        self.requests.append(f"{self.command} {path}")
        headers = {"Content-Type": "application/json"}
        if path == f"/api/models/{SIGLIP_REPO}/revision/main":
            body = json.dumps(
                {"id": SIGLIP_REPO, "sha": REVISION, "siblings": [{"rfilename": f} for f in self.files]}
            )
        elif path == f"/api/models/{SIGLIP_REPO}/tree/{REVISION}":
            body = json.dumps(
                [
                    {"type": "file", "path": f, "size": len(b), "oid": hashlib.sha1(b).hexdigest()}
                    for f, b in self.files.items()
                ]
            )
        elif path.startswith(f"/{SIGLIP_REPO}/resolve/{REVISION}/") and path.rpartition("/")[2] in self.files:
            data = self.files[path.rpartition("/")[2]]
            headers = {"X-Repo-Commit": REVISION, "ETag": f'"{hashlib.sha1(data).hexdigest()}"'}
            return self.send(200, data, headers, head)
        else:
            return self.send(404, b"", {"X-Error-Code": "EntryNotFound"}, head)
        self.send(200, body.encode(), headers, head)

    def send(self, code: int, data: bytes, headers: dict[str, str], head: bool) -> None:
        self.send_response(code)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if not head:
            self.wfile.write(data)

    def do_GET(self) -> None:
        self.answer(head=False)

    def do_HEAD(self) -> None:
        self.answer(head=True)


def test_download_fetches_siglip2_from_the_hub_with_a_progress_bar_then_auto_picks_it(
    tiny_models: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from huggingface_hub import constants

    folder = tiny_models[SIGLIP_REPO]
    FakeHub.files = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    FakeHub.files["flax_model.msgpack"] = b"weights for another framework: never fetched"
    FakeHub.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeHub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        cache = tmp_path / "hub"
        monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        endpoint = f"http://127.0.0.1:{server.server_port}"  # what HF_ENDPOINT sets when the library loads
        monkeypatch.setattr(constants, "ENDPOINT", endpoint)
        monkeypatch.setattr(
            constants, "HUGGINGFACE_CO_URL_TEMPLATE", endpoint + "/{repo_id}/resolve/{revision}/{filename}"
        )
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        monkeypatch.setenv("HF_TOKEN", "")
        assert run_cli(["models", "--download", "siglip2-base"]) == 0
    finally:
        server.shutdown()
        server.server_close()
    out, err = capsys.readouterr()
    snapshot = cache / f"models--{SIGLIP_REPO.replace('/', '--')}" / "snapshots" / REVISION
    assert out.strip() == f"siglip2-base: {snapshot}"
    assert "Fetching" in err and "100%" in err  # the hub library's progress bar, on stderr
    assert sorted(p.name for p in snapshot.iterdir()) == sorted(set(FakeHub.files) - {"flax_model.msgpack"})
    assert f"GET /{SIGLIP_REPO}/resolve/{REVISION}/model.safetensors" in FakeHub.requests
    assert not [r for r in FakeHub.requests if r.endswith("flax_model.msgpack")]
    use_cache(monkeypatch, cache)  # offline from here: the downloaded copy is what auto and the preset use
    assert resolve_auto()[0] == "siglip2-base"
    assert create_model("auto").encode_texts(["a dog"]).shape == (1, 768)


def test_download_offline_without_a_copy_is_one_line_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    use_cache(monkeypatch, tmp_path)
    assert run_cli(["models", "--download", "siglip2-base"]) == 5
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and SIGLIP_REPO in lines[0]
    with pytest.raises(ModelError, match="--install lite"):
        download_preset("lite")


def test_the_presets_table_describes_siglip2_without_downloading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    use_cache(monkeypatch, tmp_path)
    assert run_cli(["models", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    row = rows["siglip2-base"]
    assert row["embed_dim"] == 768 and row["weights"] == "hub: download needed"
    assert row["heads"] == "none (zero-shot)"
    counts = row["parameters"]
    assert counts["image_head"] == counts["text_head"] == 0
    assert 92.5e6 < counts["image_backbone"] < 93.5e6  # ViT-B/16 at 256 px + attention-pooling head
    assert 282e6 < counts["text_backbone"] < 283e6  # Gemma's 256k × 768 embeddings are 197M of it
