"""A model loaded from a checkpoint builds only what a call needs: a text query on an indexed video never
builds the image tower (nor, for a BERT text side, the text tower: the text engine answers it), sentence
features of lite need only MiniLM, the fingerprint comes from its cache and equals the fully loaded
model's, and indexing after such a start builds the image tower and gives the same index."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import TinyHubModels, minilm_lite_config
from frameseek.models import fingerprint as fingerprints
from frameseek.models.backbones import build_text_backbone
from frameseek.models.config import TextSideConfig
from frameseek.models.dual_encoder import DualEncoder
from frameseek.models.factory import create_model
from frameseek.models.registry import packaged_weights
from frameseek.models.text_engine import load_text_engine
from frameseek.search import Searcher
from frameseek.system.startup import heavy_imports
from frameseek.video.sampling import Sampling
from videos import require_bikes

QUERY = "a cyclist wearing a helmet"
SAMPLING = Sampling(max_frames=4)
TEXTS = [
    QUERY,
    "warm up",
    "",
    "x",
    "Ünïcödé naïve café — 東京 🚲 emoji!!",
    "A DOG  runs\ton the\nbeach.",
    " ".join(["word"] * 200),  # truncated at max_length
    "don't stop-believing; (ok?) 3.14 $5 #tag @user",
]


def lite_folder() -> Path:
    folder = packaged_weights("lite")
    if folder is None:
        pytest.skip("the lite model's trained heads are not installed in src/frameseek/weights/lite/")
    return folder


def by_definition(model: DualEncoder) -> str:
    """The fingerprint as defined: hashed from the whole model's tensors (no cache)."""
    return fingerprints.of_weights(model.config.to_dict(), model.state_dict())


@pytest.fixture(scope="module")
def eager_lite() -> DualEncoder:
    return DualEncoder.from_pretrained(lite_folder(), lazy=False)


# ------------------------------------------------------------------------------- the fingerprint
def test_lazy_fingerprint_equals_the_fully_loaded_one(fs_home: Path, eager_lite: DualEncoder) -> None:
    expected = by_definition(eager_lite)
    first = create_model("lite")  # nothing cached in this home: hashed from the tensors (builds both)
    assert not first.image_backbone_built and not first.text_backbone_built
    assert first.fingerprint == expected
    assert first.image_backbone_built and first.text_backbone_built
    again = create_model("lite")  # as a new process: from the cache, nothing built
    assert again.fingerprint == expected
    assert not again.image_backbone_built and not again.text_backbone_built
    assert sorted(again.state_dict()) == sorted(eager_lite.state_dict())  # the whole model, on demand
    assert by_definition(again) == expected


def test_fingerprint_cache_follows_the_weight_files(
    fs_home: Path, tmp_path: Path, tiny_hub_models: TinyHubModels
) -> None:
    torch.manual_seed(3)
    folder = DualEncoder.from_config(tiny_hub_models.dual_config()).save_pretrained(tmp_path / "ckpt")
    loaded = create_model(str(folder))
    assert not loaded.image_backbone_built  # heads-only checkpoint, hf-resnet from a local folder
    assert loaded.text_backbone_built  # DistilBERT: no text engine, transformers builds it
    original = loaded.fingerprint
    assert original == by_definition(DualEncoder.from_pretrained(folder, lazy=False))
    assert len(list(fingerprints.cache_dir().iterdir())) == 1

    # new weights in the same file: a new key, so hashed again from the new tensors
    weights = folder / "model.safetensors"
    model = DualEncoder.from_pretrained(folder)
    with torch.no_grad():
        for p in model.image_head.parameters():
            p.add_(0.5)
    model.invalidate_fingerprint()
    changed = by_definition(model)
    model.save_pretrained(folder)
    stat = weights.stat()
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    reloaded = create_model(str(folder))
    assert reloaded.fingerprint == changed != original
    # a backbone source file touched: the key changes too (hashed again, same value)
    source = next(p for p in tiny_hub_models.resnet.iterdir() if p.suffix == ".safetensors")
    key = fingerprints.source_key(reloaded.config, folder)
    stat = source.stat()
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    assert fingerprints.source_key(reloaded.config, folder) != key


def test_changing_weights_drops_the_cached_identity(fs_home: Path) -> None:
    lite_folder()
    cached = create_model("lite").fingerprint  # hashed once, now in the cache
    trained = create_model("lite")
    trained.train()  # training changes weights: the files no longer say what they are
    trained.eval()
    with torch.no_grad():
        next(trained.text_head.parameters()).add_(1.0)
    assert trained.fingerprint == by_definition(trained) != cached

    edited = create_model("lite")
    assert edited.fingerprint == cached
    with torch.no_grad():
        next(edited.image_head.parameters()).add_(1.0)
    edited.invalidate_fingerprint()
    assert edited.fingerprint == by_definition(edited) != cached
    assert create_model("lite").fingerprint == cached  # the cache itself is untouched


# ------------------------------------------------------------------------------- the text engine
def test_text_engine_matches_transformers() -> None:
    side = TextSideConfig(
        backbone="hf-text", source="package:all-MiniLM-L6-v2", pooling="mean", max_length=64
    )
    engine = load_text_engine(side)
    if engine is None:
        pytest.skip("all-MiniLM-L6-v2 package not installed")
    reference = build_text_backbone(side).eval()
    batch = reference.tokenize(TEXTS)  # type: ignore[operator]
    ids, mask = engine.tokenize(TEXTS)
    assert torch.equal(ids, batch["input_ids"]) and torch.equal(mask, batch["attention_mask"])
    with torch.inference_mode():
        np.testing.assert_allclose(engine(TEXTS).numpy(), reference(TEXTS).numpy(), rtol=0, atol=1e-5)
        one = [QUERY]  # no padding: the unmasked attention path
        np.testing.assert_allclose(engine(one).numpy(), reference(one).numpy(), rtol=0, atol=1e-5)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            fast, slow = engine(TEXTS).float().numpy(), reference(TEXTS).float().numpy()
        np.testing.assert_allclose(fast, slow, rtol=0, atol=2e-2)


def test_lazy_model_embeds_texts_like_the_fully_loaded_one(eager_lite: DualEncoder) -> None:
    lazy = DualEncoder.from_pretrained(lite_folder())
    assert not lazy.image_backbone_built and not lazy.text_backbone_built
    # transcripts' sentence features: lite's first text encoder (MiniLM) alone, through its text engine
    np.testing.assert_allclose(
        lazy.encode_sentences(TEXTS), eager_lite.encode_sentences(TEXTS), rtol=0, atol=1e-5
    )
    assert not lazy.text_backbone_built, "sentence features built the whole text backbone (mpnet)"
    np.testing.assert_allclose(lazy.encode_texts(TEXTS), eager_lite.encode_texts(TEXTS), rtol=0, atol=1e-5)
    assert lazy.text_backbone_built and not lazy.image_backbone_built  # no engine runs mpnet: built now
    np.testing.assert_allclose(
        lazy.encode_sentences(TEXTS), eager_lite.encode_sentences(TEXTS), rtol=0, atol=1e-5
    )


def test_a_bert_text_side_embeds_through_its_engine_without_building(fs_home: Path, tmp_path: Path) -> None:
    """A BERT-family text side (here MiniLM alone) is answered by the text engine: nothing is built."""
    torch.manual_seed(0)
    single = DualEncoder.from_config(minilm_lite_config())
    folder = single.save_pretrained(tmp_path / "minilm")
    lazy = DualEncoder.from_pretrained(folder)
    assert lazy.text_engine is not None
    np.testing.assert_allclose(lazy.encode_texts(TEXTS), single.eval().encode_texts(TEXTS), rtol=0, atol=1e-5)
    np.testing.assert_allclose(
        lazy.encode_sentences(TEXTS), single.encode_sentences(TEXTS), rtol=0, atol=1e-5
    )
    assert not lazy.image_backbone_built and not lazy.text_backbone_built
    lazy.load_text_backbone()  # anything beyond inference gets the transformers backbone
    assert lazy.text_backbone_built and lazy.text_engine is None
    np.testing.assert_allclose(lazy.encode_texts(TEXTS), single.encode_texts(TEXTS), rtol=0, atol=1e-5)


def test_whole_model_views_build_the_backbones(eager_lite: DualEncoder) -> None:
    lazy = DualEncoder.from_pretrained(lite_folder())
    assert lazy.parameter_counts() == eager_lite.parameter_counts()
    assert lazy.image_backbone_built and lazy.text_backbone_built
    lazy = DualEncoder.from_pretrained(lite_folder())
    assert sum(p.numel() for p in lazy.parameters()) == sum(p.numel() for p in eager_lite.parameters())
    lazy = DualEncoder.from_pretrained(lite_folder())
    lazy.load_state_dict(eager_lite.state_dict())  # strict: every tensor has a home
    assert lazy.image_backbone_built and lazy.text_backbone_built
    assert all(not p.is_inference() for p in lazy.parameters())


# ------------------------------------------------------------------------ searching and indexing
def test_text_query_on_an_indexed_video_builds_no_image_backbone(
    fs_home: Path, eager_lite: DualEncoder
) -> None:
    bikes = require_bikes()
    lite_folder()
    built = Searcher(create_model("lite"), sampling=SAMPLING).search(bikes, QUERY)
    assert not built.metrics["index_reused"]

    model = create_model("lite")  # as a new process would
    searcher = Searcher(model, sampling=SAMPLING)
    assert not model.image_backbone_built and not model.text_backbone_built  # no warm-up, no engine
    again = searcher.search(bikes, QUERY)
    assert again.metrics["index_reused"]
    assert not model.image_backbone_built, "a text query on an indexed video built the image backbone"
    # (lite's mpnet has no torch text engine, so its text backbone is built here; a new process skips
    # the model altogether with the exported query engine: test_repeat_cli_query_imports_no_model_code)
    assert [(h.time, round(h.score, 5)) for h in again.results] == [
        (h.time, round(h.score, 5)) for h in built.results
    ]
    image = searcher.search(bikes, image=np.zeros((32, 32, 3), np.uint8))  # an image query needs it
    assert image.metrics["index_reused"] and model.image_backbone_built


def test_indexing_after_a_lazy_start(
    fs_home: Path, tmp_path: Path, eager_lite: DualEncoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    bikes = require_bikes()
    model = DualEncoder.from_pretrained(lite_folder())
    searcher = Searcher(model, sampling=SAMPLING)
    searcher.encode_query(QUERY)  # a text query first: nothing built
    assert not model.image_backbone_built
    (index,) = [o.index for o in searcher.index(bikes)]
    assert model.image_backbone_built and len(index) == 4
    assert index.model_fingerprint == by_definition(eager_lite)

    reference_home = tmp_path / "eager-home"
    monkeypatch.setenv("FRAMESEEK_HOME", str(reference_home))
    (reference,) = [o.index for o in Searcher(eager_lite, sampling=SAMPLING).index(bikes)]
    assert reference is not None and index is not None
    assert reference.folder.relative_to(reference_home) == index.folder.relative_to(fs_home)
    np.testing.assert_array_equal(reference.times, index.times)
    np.testing.assert_allclose(reference.embeddings, index.embeddings, rtol=0, atol=1e-5)


def test_repeat_cli_query_imports_no_model_code(fs_home: Path) -> None:
    """In a new process a repeat query builds neither tower: torch, transformers' model code and the
    EfficientNet package are never imported; the query engine (ONNX Runtime) embeds the sentence."""
    bikes = require_bikes()
    lite_folder()
    from frameseek.cli import main

    with pytest.raises(SystemExit) as first:
        main(["search", str(bikes), QUERY, "--max-frames", "4", "--json"])
    assert first.value.code in (0, None)
    script = (
        "import json, sys\n"
        "from frameseek.cli import main\n"
        "try:\n"
        f"    main(['search', {str(bikes)!r}, {QUERY!r}, '--max-frames', '4', '--json'])\n"
        "except SystemExit as exc:\n"
        "    assert exc.code in (0, None), exc.code\n"
        "names = ('transformers.modeling_utils', 'efficientnet_lite_pytorch', 'torch', 'onnxruntime')\n"
        "print(json.dumps({n: n in sys.modules for n in names}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=dict(os.environ)
    )
    assert done.returncode == 0, done.stderr
    response, loaded = (json.loads(line) for line in done.stdout.strip().splitlines()[-2:])
    assert response["metrics"]["index_reused"] and response["results"]
    assert loaded == {**dict.fromkeys(loaded, False), "onnxruntime": True}, loaded


def test_checkpoint_with_backbone_tensors_loads_eagerly(
    tmp_path: Path, tiny_hub_models: TinyHubModels
) -> None:
    torch.manual_seed(4)
    model = DualEncoder.from_config(tiny_hub_models.dual_config())
    folder = model.save_pretrained(tmp_path / "full", include_backbones=True)
    loaded = create_model(str(folder))
    assert loaded.image_backbone_built and loaded.text_backbone_built


def test_heavy_imports_pause_the_collector_and_freeze() -> None:
    assert gc.isenabled()
    try:
        with heavy_imports():
            assert not gc.isenabled()
            kept = [object() for _ in range(10)]
        assert gc.isenabled() and gc.get_freeze_count() >= len(kept)
    finally:
        gc.unfreeze()
