"""A text query's embedding without torch: the text tower and text head, exported once to ONNX.

A repeat query on an indexed video needs one thing from the model: the sentence's embedding (and, to
match transcripts, its sentence features). Importing torch for that costs about a second, most of such a
query. So the first process that has the model loaded exports the text side — tokens → the text
backbone's pooled features → the head → the unit-length embedding, plus the unit-length sentence
features — as ``$FRAMESEEK_HOME/engines/<model fingerprint>-query-v<N>.onnx`` (written atomically), and
later processes run it with ONNX Runtime and the folder's ``tokenizer.json`` (``tokenizers``), importing
neither torch nor ``transformers``. The export runs the model's own modules (the text engine's network
and the head), in fp32: its outputs equal ``DualEncoder.encode_texts`` / ``encode_sentences`` in fp32
up to float rounding (tests/test_query_engine.py).

Supported: an ``hf-text`` side that the BERT text engine runs (``lite``'s MiniLM, BERT-family folders).
Anything else (CLIP, hub ids, concatenated text backbones) has no query engine: the model is loaded.
This module imports neither torch nor onnxruntime until it is used; ``export_query_engine`` needs torch.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from frameseek import settings
from frameseek.atomic import atomic_path
from frameseek.models.config import DualEncoderConfig
from frameseek.models.tokenizer import TOKENIZER_FILE, load_tokenizer

if TYPE_CHECKING:
    from frameseek.models.dual_encoder import DualEncoder

log = logging.getLogger(__name__)

SCHEME = 1
"""Bump when the exported graph's inputs, outputs or computation change: old files are then ignored."""

OPSET = 17


def engine_path(fingerprint: str) -> Path:
    return settings.home() / "engines" / f"{fingerprint}-query-v{SCHEME}.onnx"


def tokenizer_folder(config: DualEncoderConfig) -> Path | None:
    """The local folder holding the text side's ``tokenizer.json``, if the side can have a query engine."""
    side = config.text
    if side.backbone != "hf-text":
        return None
    from frameseek.models.text_sources import resolve_text_source

    try:
        folder = Path(resolve_text_source(side.source)).expanduser()
    except Exception:  # a package that is not installed: loading the model reports it
        return None
    return folder if (folder / TOKENIZER_FILE).is_file() else None


class QueryEngine:
    """``encode_texts`` / ``encode_sentences`` of one model, from its exported query graph."""

    def __init__(self, path: Path, tokenizer: Any, embed_dim: int) -> None:
        import onnxruntime as ort  # type: ignore[import-untyped]

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # a sentence or two: one thread is fastest and spares the rest
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        self._session: Any = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self._tokenizer = tokenizer
        self._lock = threading.Lock()  # one session run at a time (the tokenizer's padding is shared)
        self.path = path
        self.embed_dim = embed_dim

    @classmethod
    def open(cls, fingerprint: str, config: DualEncoderConfig) -> QueryEngine | None:
        """The engine exported for ``fingerprint``, or None (never exported, unsupported, unreadable)."""
        path = engine_path(fingerprint)
        folder = tokenizer_folder(config)
        if folder is None or not path.is_file():
            return None
        try:
            return cls(path, load_tokenizer(folder, config.text.max_length), config.output_dim())
        except Exception as exc:  # a damaged file or a runtime that cannot load it: the model answers
            log.info("query engine %s unusable (%s); loading the model", path, exc)
            return None

    def _run(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        with self._lock:
            encodings = self._tokenizer.encode_batch(texts)
        ids = np.asarray([e.ids for e in encodings], dtype=np.int64)
        mask = np.asarray([e.attention_mask for e in encodings], dtype=np.int64)
        embeddings, sentences = self._session.run(
            ["embedding", "sentence"], {"input_ids": ids, "attention_mask": mask}
        )
        return embeddings.astype(np.float32), sentences.astype(np.float32)

    def encode_texts(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """Unit-length embeddings (n, embed_dim), as ``DualEncoder.encode_texts``."""
        out = [self._run(list(texts[i : i + batch_size]))[0] for i in range(0, len(texts), batch_size)]
        return np.concatenate(out) if out else np.zeros((0, self.embed_dim), dtype=np.float32)

    def encode_sentences(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """Unit-length sentence features, as ``DualEncoder.encode_sentences``."""
        out = [self._run(list(texts[i : i + batch_size]))[1] for i in range(0, len(texts), batch_size)]
        return np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)


def export_query_engine(model: DualEncoder) -> Path | None:
    """Export ``model``'s text side for later processes (see the module docstring); returns the file, or
    None when this model has no query engine (its text side is not supported, or its weights have no
    stable identity). Needs torch; writes atomically, so a killed export leaves nothing behind."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    engine = model.source_text_engine
    if engine is None or tokenizer_folder(model.config) is None:
        return None
    path = engine_path(model.fingerprint)
    sentence = int(model.config.text.sentence_dim or 0)
    head = model.text_head

    class QueryTower(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.head = head  # registered: its weights become the graph's initialisers

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
            assert engine is not None
            features = engine.features(input_ids, attention_mask, always_mask=True).float()
            embedding = F.normalize(self.head(features), dim=-1)
            kept = features[:, :sentence] if sentence else features
            return embedding, F.normalize(kept, dim=-1)

    tower = QueryTower().eval()
    ids, mask = engine.tokenize(["a dog runs on the beach", "two people"])
    from frameseek.models.onnx_engine import _quiet_exporter

    with torch.inference_mode(False), torch.no_grad(), atomic_path(path) as tmp, _quiet_exporter():
        torch.onnx.export(
            tower,
            (ids, mask),
            str(tmp),
            dynamo=False,
            input_names=["input_ids", "attention_mask"],
            output_names=["embedding", "sentence"],
            dynamic_axes={
                "input_ids": {0: "texts", 1: "tokens"},
                "attention_mask": {0: "texts", 1: "tokens"},
                "embedding": {0: "texts"},
                "sentence": {0: "texts"},
            },
            opset_version=OPSET,
        )
    return path
