"""A text query's embedding without torch: the text tower and text head, exported once to ONNX.

A repeat query on an indexed video needs one thing from the model: the sentence's embedding (and, to
match transcripts, its sentence features). Importing torch for that costs about a second, most of such a
query. So the first process that has the model loaded exports the text side — tokens → the text
backbone's pooled features → the head → the unit-length embedding, plus the unit-length sentence
features — as ``$FRAMESEEK_HOME/engines/<model fingerprint>-query-v<N>/`` (a folder, written atomically),
and later processes run it with ONNX Runtime and each text model folder's ``tokenizer.json``
(``tokenizers``), importing neither torch nor ``transformers``. The graph is stored already optimised
(ONNX Runtime's extended level, once, at export, for the CPU provider) with its weights in a file beside
it, which ONNX Runtime maps rather than copies: ``lite``'s MiniLM + mpnet graph (526 MB) opens in ~0.4 s
instead of ~0.9 s. The export runs the model's own modules (the text networks, heads, class channel and
projection), in fp32: its outputs equal ``DualEncoder.encode_texts`` / ``encode_sentences`` in fp32 up to
float rounding (tests/test_query_engine.py).

Supported: an ``hf-text`` side that the BERT text engine runs (BERT-family folders), and an
``hf-text-concat`` side of local ``transformers`` encoders (``lite``'s MiniLM + mpnet: one token input pair
per encoder, each with its own tokenizer), while the text weights are their sources'. Anything else (CLIP,
hub ids, fine-tuned text backbones) has no query engine: the model is loaded.
This module imports neither torch nor onnxruntime until it is used; ``export_query_engine`` needs torch.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from frameseek import settings
from frameseek.models.config import DualEncoderConfig
from frameseek.models.tokenizer import TOKENIZER_FILE, load_tokenizer
from frameseek.system.atomic import atomic_dir

if TYPE_CHECKING:
    from frameseek.models.dual_encoder import DualEncoder

log = logging.getLogger(__name__)

SCHEME = 2
"""Bump when the exported graph's inputs, outputs or computation change: old files are then ignored."""

OPSET = 17
GRAPH_FILE = "model.onnx"
WEIGHTS_FILE = "weights.data"


def engine_path(fingerprint: str) -> Path:
    """The folder of a model's query engine (``model.onnx`` + ``weights.data``)."""
    return settings.home() / "engines" / f"{fingerprint}-query-v{SCHEME}"


def tokenizer_folders(config: DualEncoderConfig) -> list[Path] | None:
    """The local folders holding each text encoder's ``tokenizer.json``, in input order, if the side can
    have a query engine."""
    side = config.text
    if side.backbone not in ("hf-text", "hf-text-concat"):
        return None
    from frameseek.models.text_sources import concat_sources, resolve_text_source

    sources = concat_sources(side.source) if side.backbone == "hf-text-concat" else [side.source]
    try:
        folders = [Path(resolve_text_source(source)).expanduser() for source in sources]
    except Exception:  # a package that is not installed: loading the model reports it
        return None
    return folders if all((f / TOKENIZER_FILE).is_file() for f in folders) else None


class QueryEngine:
    """``encode_texts`` / ``encode_sentences`` of one model, from its exported query graph."""

    def __init__(self, folder: Path, tokenizers: list[Any], embed_dim: int) -> None:
        import onnxruntime as ort  # type: ignore[import-untyped]

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # a sentence or two: one thread is fastest and spares the rest
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # done at export
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        self._session: Any = ort.InferenceSession(
            str(folder / GRAPH_FILE), options, providers=["CPUExecutionProvider"]
        )
        self._tokenizers = tokenizers
        self._lock = threading.Lock()  # one session run at a time (the tokenizers' padding is shared)
        self.path = folder
        self.embed_dim = embed_dim

    @classmethod
    def open(cls, fingerprint: str, config: DualEncoderConfig) -> QueryEngine | None:
        """The engine exported for ``fingerprint``, or None (never exported, unsupported, unreadable)."""
        folder = engine_path(fingerprint)
        sources = tokenizer_folders(config)
        if sources is None or not (folder / GRAPH_FILE).is_file():
            return None
        try:
            tokenizers = [load_tokenizer(f, config.text.max_length) for f in sources]
            return cls(folder, tokenizers, config.output_dim())
        except Exception as exc:  # a damaged file or a runtime that cannot load it: the model answers
            log.info("query engine %s unusable (%s); loading the model", folder, exc)
            return None

    def _run(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        feed: dict[str, np.ndarray] = {}
        with self._lock:
            for i, tokenizer in enumerate(self._tokenizers):
                encodings = tokenizer.encode_batch(texts)
                feed[f"input_ids_{i}"] = np.asarray([e.ids for e in encodings], dtype=np.int64)
                feed[f"attention_mask_{i}"] = np.asarray(
                    [e.attention_mask for e in encodings], dtype=np.int64
                )
        embeddings, sentences = self._session.run(["embedding", "sentence"], feed)
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
    """Export ``model``'s text side for later processes (see the module docstring); returns the folder,
    or None when this model has no query engine (its text side is not supported, or its weights have no
    stable identity). Needs torch; writes atomically, so a killed export leaves nothing behind."""
    import torch

    if tokenizer_folders(model.config) is None:
        return None
    encoders = _text_encoders(model)
    if encoders is None:
        return None
    tower = _query_tower(model, encoders).eval()
    sample = ["a dog runs on the beach", "two people"]
    inputs: list[torch.Tensor] = []
    names: list[str] = []
    for i, (tokenize, _) in enumerate(encoders):
        ids, mask = tokenize(sample)
        inputs += [ids.cpu(), mask.cpu()]
        names += [f"input_ids_{i}", f"attention_mask_{i}"]
    axes: dict[str, dict[int, str]] = {name: {0: "texts", 1: "tokens"} for name in names}
    axes |= {"embedding": {0: "texts"}, "sentence": {0: "texts"}}
    target = engine_path(model.fingerprint)
    from frameseek.models.onnx_engine import quiet_exporter

    with torch.inference_mode(False), torch.no_grad(), atomic_dir(target) as tmp, quiet_exporter():
        raw = tmp / "raw.onnx"
        torch.onnx.export(
            tower,
            tuple(inputs),
            str(raw),
            dynamo=False,
            input_names=names,
            output_names=["embedding", "sentence"],
            dynamic_axes=axes,
            opset_version=OPSET,
        )
        _optimise(raw, tmp / GRAPH_FILE)
        for leftover in tmp.iterdir():
            if leftover.name not in (GRAPH_FILE, WEIGHTS_FILE):
                leftover.unlink()
    return target


def _optimise(raw: Path, out: Path) -> None:
    """Save ``raw`` as ONNX Runtime's extended-level graph (hardware-neutral fusions), its weights in
    ``WEIGHTS_FILE`` beside it."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(out)
    options.add_session_config_entry("session.optimized_model_external_initializers_file_name", WEIGHTS_FILE)
    options.add_session_config_entry(
        "session.optimized_model_external_initializers_min_size_in_bytes", "1024"
    )
    options.log_severity_level = 3
    ort.InferenceSession(str(raw), options, providers=["CPUExecutionProvider"])


Tokenize = Any  # texts -> (input_ids, attention_mask)
Features = Any  # (input_ids, attention_mask) -> pooled features


def _text_encoders(model: DualEncoder) -> list[tuple[Tokenize, Features]] | None:
    """Each text encoder as (tokenize, features) in the model's feature order, or None if unsupported."""
    engine = model.source_text_engine
    if model.config.text.backbone == "hf-text":
        if engine is None:
            return None
        return [(engine.tokenize, lambda ids, mask: engine.features(ids, mask, always_mask=True))]
    if model.config.text.backbone != "hf-text-concat" or not model.text_from_source:
        return None
    backbone = model.text_backbone  # built now if deferred (the export needs the real encoders)
    parts = list(getattr(backbone, "parts", []))
    encoders: list[tuple[Tokenize, Features]] = [
        (lambda texts, part=part: tuple(part.tokenize(texts).values()), part.features) for part in parts
    ]
    return encoders or None


def _query_tower(model: DualEncoder, encoders: list[tuple[Tokenize, Features]]) -> Any:
    """tokens of each encoder → (unit embedding, unit sentence features), as ``DualEncoder`` computes."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    sentence = int(model.config.text.sentence_dim or 0)

    class QueryTower(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.head = model.text_head  # registered: its weights become the graph's initialisers
            if model.text_backbone_built:
                self.text = model.text_backbone

        def forward(self, *tokens: torch.Tensor) -> tuple[torch.Tensor, ...]:
            pooled = [features(tokens[2 * i], tokens[2 * i + 1]) for i, (_, features) in enumerate(encoders)]
            joined = torch.cat([p.float() for p in pooled], dim=-1)
            embedding = F.normalize(self.head(joined), dim=-1)
            kept = joined[:, :sentence] if sentence else joined
            return embedding, F.normalize(kept, dim=-1)

    return QueryTower()
