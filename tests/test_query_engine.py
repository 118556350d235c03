"""The query engine: a text query's embedding without torch. Exported from the loaded model, it gives the
model's fp32 embeddings and sentence features; a later process searches an indexed video with it and
imports neither torch nor the model, with the same results; a damaged engine falls back to the model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from frameseek.models.factory import create_model
from frameseek.models.handle import ModelHandle
from frameseek.models.query_engine import (
    GRAPH_FILE,
    WEIGHTS_FILE,
    QueryEngine,
    engine_path,
    export_query_engine,
)
from frameseek.models.registry import packaged_weights
from frameseek.search import Searcher
from frameseek.video.sampling import Sampling
from videos import require_bikes

QUERY = "a cyclist wearing a helmet"
TEXTS = [
    QUERY,
    "x",
    "",
    "Ünïcödé naïve café — 東京 🚲 emoji!!",
    " ".join(["word"] * 200),  # truncated at max_length
    "A DOG  runs\ton the\nbeach.",
]

SEARCH_SCRIPT = r"""
import json, sys
from frameseek.search import Searcher
from frameseek.video.sampling import Sampling
searcher = Searcher("lite", sampling=Sampling(max_frames=6))
response = searcher.search(sys.argv[1], sys.argv[2], top_k=3)
print(json.dumps({
    "results": [[r.time, r.score] for r in response.results],
    "reused": response.metrics["index_reused"],
    "torch": "torch" in sys.modules,
    "transformers": "transformers" in sys.modules,
    "loaded": searcher.handle.loaded,
    "engine": searcher.handle.query_engine() is not None,
}))
"""


@pytest.fixture(autouse=True)
def _lite() -> None:
    if packaged_weights("lite") is None:
        pytest.skip("lite's weights are not installed")


def test_the_engine_gives_the_models_fp32_text_embeddings(fs_home: Path) -> None:
    model = create_model("lite", precision="fp32", device="cpu")
    path = export_query_engine(model)
    assert path == engine_path(model.fingerprint)
    assert sorted(p.name for p in path.iterdir()) == sorted([GRAPH_FILE, WEIGHTS_FILE])
    assert not list(path.parent.glob(".*"))  # written atomically: no temporaries left
    assert not model.text_backbone_built or model.config.text.backbone != "hf-text"
    engine = QueryEngine.open(model.fingerprint, model.config)
    assert engine is not None
    np.testing.assert_allclose(engine.encode_texts(TEXTS), model.encode_texts(TEXTS), atol=2e-6)
    np.testing.assert_allclose(engine.encode_sentences(TEXTS), model.encode_sentences(TEXTS), atol=2e-6)
    one = engine.encode_texts([QUERY])  # alone (no padding) as in a batch
    np.testing.assert_allclose(one[0], engine.encode_texts(TEXTS)[0], atol=2e-6)
    assert engine.encode_texts([]).shape == (0, model.embed_dim)
    # the model on a bf16 CPU runs its image tower in bf16, but text stays fp32: the same numbers
    default = create_model("lite", device="cpu")
    np.testing.assert_allclose(default.encode_texts(TEXTS), engine.encode_texts(TEXTS), atol=2e-6)


@pytest.mark.slow
def test_a_repeat_query_in_a_new_process_needs_neither_torch_nor_the_model(fs_home: Path) -> None:
    video = require_bikes()
    first = Searcher("lite", sampling=Sampling(max_frames=6))
    assert not first.handle.loaded  # nothing loaded to build the Searcher
    expected = first.search(video, QUERY, top_k=3)
    assert first.handle.loaded and not expected.metrics["index_reused"]
    assert first.handle.prepare_query_engine() is not None

    env = {**os.environ, "FRAMESEEK_HOME": str(fs_home)}
    done = subprocess.run(
        [sys.executable, "-c", SEARCH_SCRIPT, str(video), QUERY],
        capture_output=True, text=True, env=env, timeout=300, check=True,
    )  # fmt: skip
    again = json.loads(done.stdout.strip().splitlines()[-1])
    assert again["reused"] and again["engine"]
    assert not again["torch"] and not again["transformers"] and not again["loaded"]
    assert [t for t, _ in again["results"]] == [r.time for r in expected.results]
    np.testing.assert_allclose(
        [s for _, s in again["results"]], [r.score for r in expected.results], atol=1e-5
    )

    # a damaged engine file: the model answers instead, with the same results
    (engine_path(first.handle.fingerprint) / GRAPH_FILE).write_bytes(b"not an onnx graph")
    done = subprocess.run(
        [sys.executable, "-c", SEARCH_SCRIPT, str(video), QUERY],
        capture_output=True, text=True, env=env, timeout=300, check=True,
    )  # fmt: skip
    fallback = json.loads(done.stdout.strip().splitlines()[-1])
    assert fallback["loaded"] and fallback["torch"] and not fallback["engine"]
    assert [t for t, _ in fallback["results"]] == [r.time for r in expected.results]


def test_a_handle_loads_the_model_only_when_asked(fs_home: Path) -> None:
    handle = ModelHandle("lite", device="cpu")
    assert not handle.loaded and handle.name == "lite"
    assert handle.config.embed_dim > 0 and not handle.loaded
    assert handle.query_engine() is None  # nothing exported in this home yet
    vectors = handle.encode_texts([QUERY])  # no engine: the model answers
    assert handle.loaded and vectors.shape == (1, handle.model.embed_dim)
    assert handle.fingerprint == handle.model.fingerprint
    assert handle.prepare_query_engine() == engine_path(handle.fingerprint)
    fresh = ModelHandle("lite", device="cpu")
    assert fresh.query_engine() is not None and not fresh.loaded
    np.testing.assert_allclose(fresh.encode_texts([QUERY]), vectors, atol=2e-6)
    assert fresh.fingerprint == handle.fingerprint and not fresh.loaded
    assert ModelHandle(handle.model).loaded  # a loaded model is used as it is


def test_a_bert_text_side_exports_through_its_text_engine(fs_home: Path, tmp_path: Path) -> None:
    """One text encoder (MiniLM, run by the BERT text engine): one token input pair, the same numbers."""
    from conftest import minilm_lite_config
    from frameseek.models.dual_encoder import DualEncoder

    folder = DualEncoder.from_config(minilm_lite_config()).save_pretrained(tmp_path / "minilm")
    model = create_model(str(folder), precision="fp32", device="cpu")
    assert model.source_text_engine is not None and not model.text_backbone_built
    assert export_query_engine(model) == engine_path(model.fingerprint)
    engine = QueryEngine.open(model.fingerprint, model.config)
    assert engine is not None
    np.testing.assert_allclose(engine.encode_texts(TEXTS), model.encode_texts(TEXTS), atol=2e-6)
    np.testing.assert_allclose(engine.encode_sentences(TEXTS), model.encode_sentences(TEXTS), atol=2e-6)
