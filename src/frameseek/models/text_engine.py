"""A text tower for inference that needs neither ``transformers``' model classes nor their import.

Importing ``transformers``' model code pulls in ``torch._dynamo``, ``torch.distributed``, SciPy and SymPy:
about 2 s of CPU, the largest part of a text query in a new process. For the common case — a BERT-family
encoder (all-MiniLM-L6-v2 in ``lite``, BERT-base, …) in a local folder — this module runs the same network
in plain torch: ``BertEncoder`` reads the folder's ``model.safetensors`` under ``transformers.BertModel``'s
names and repeats BertModel's eval-mode forward (SDPA attention) call by call, so features are the same
(bit for bit on the tested CPU, fp32 and bf16 autocast); the tokenizer is the folder's ``tokenizer.json`` run by the
``tokenizers`` library (what ``transformers``' fast tokenizer wraps). tests/test_lazy_model.py checks
both against ``transformers``.

It is only an inference engine, like the ONNX image engine: the model's real text backbone stays the
``transformers`` one, built when anything needs it (training, ``state_dict``, ``parameters``). Whatever it
does not support (another architecture, a hub id, no ``tokenizer.json``) gives ``None`` here and the
``transformers`` backbone is built as before.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch.nn import functional as F

from frameseek.models.config import TextSideConfig
from frameseek.models.tokenizer import TOKENIZER_FILE, load_tokenizer

log = logging.getLogger(__name__)

WEIGHTS_FILE = "model.safetensors"


class BertEncoder:
    """``transformers.BertModel`` (no pooler) for eval-mode inference, written with ``torch.nn.functional``
    over the checkpoint's tensors (BertModel's names): the same calls BertModel's modules make, in the
    same order. No ``nn.Module`` is built, so loading costs no parameter initialisation."""

    def __init__(self, config: dict[str, Any], weights: dict[str, torch.Tensor]):
        self.hidden_size = int(config["hidden_size"])
        self.heads = int(config["num_attention_heads"])
        self.layers = int(config["num_hidden_layers"])
        self.eps = float(config.get("layer_norm_eps", 1e-12))
        missing = [key for key in self.keys() if key not in weights]
        if missing:
            raise KeyError(f"missing weight {missing[0]!r}")
        if any(weights[key].dtype != torch.float32 for key in self.keys()):
            raise TypeError("weights not stored as float32")  # transformers' dtype rules: let it load them
        self.weights = {key: weights[key] for key in self.keys()}

    def keys(self) -> list[str]:
        """The state-dict keys this encoder reads (BertModel's, without the pooler)."""
        keys = [
            f"embeddings.{name}.weight"
            for name in ("word_embeddings", "position_embeddings", "token_type_embeddings")
        ]
        keys += ["embeddings.LayerNorm.weight", "embeddings.LayerNorm.bias"]
        for i in range(self.layers):
            for part in (
                "attention.self.query",
                "attention.self.key",
                "attention.self.value",
                "attention.output.dense",
                "attention.output.LayerNorm",
                "intermediate.dense",
                "output.dense",
                "output.LayerNorm",
            ):
                keys += [f"encoder.layer.{i}.{part}.weight", f"encoder.layer.{i}.{part}.bias"]
        return keys

    def _linear(self, x: torch.Tensor, name: str) -> torch.Tensor:
        return F.linear(x, self.weights[f"{name}.weight"], self.weights[f"{name}.bias"])

    def _norm(self, x: torch.Tensor, name: str) -> torch.Tensor:
        w = self.weights
        return F.layer_norm(x, (self.hidden_size,), w[f"{name}.weight"], w[f"{name}.bias"], self.eps)

    def __call__(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, always_mask: bool = False
    ) -> torch.Tensor:
        """Token states (n, L, hidden): BertModel's ``last_hidden_state``. ``always_mask``: pass the mask
        to attention even without padding (one graph for every input, as an ONNX export needs)."""
        w = self.weights
        n, length = input_ids.shape
        positions = torch.arange(length).unsqueeze(0)
        hidden = F.embedding(input_ids, w["embeddings.word_embeddings.weight"])
        hidden = hidden + F.embedding(
            torch.zeros_like(input_ids), w["embeddings.token_type_embeddings.weight"]
        )
        hidden = hidden + F.embedding(positions, w["embeddings.position_embeddings.weight"])
        hidden = self._norm(hidden, "embeddings.LayerNorm")
        mask: torch.Tensor | None = None
        if always_mask or not bool(
            attention_mask.all()
        ):  # as transformers does for SDPA: none without padding
            mask = attention_mask.bool()[:, None, None, :].expand(n, 1, length, length)
        head_size = self.hidden_size // self.heads
        for i in range(self.layers):
            layer = f"encoder.layer.{i}."
            shape = (n, length, -1, head_size)
            query = self._linear(hidden, layer + "attention.self.query").view(*shape).transpose(1, 2)
            key = self._linear(hidden, layer + "attention.self.key").view(*shape).transpose(1, 2)
            value = self._linear(hidden, layer + "attention.self.value").view(*shape).transpose(1, 2)
            attended = F.scaled_dot_product_attention(
                query, key, value, attn_mask=mask, dropout_p=0.0, scale=head_size**-0.5
            )
            attended = attended.transpose(1, 2).contiguous().reshape(n, length, -1).contiguous()
            attended = self._linear(attended, layer + "attention.output.dense")
            attended = self._norm(attended + hidden, layer + "attention.output.LayerNorm")
            inner = F.gelu(self._linear(attended, layer + "intermediate.dense"))
            hidden = self._norm(
                self._linear(inner, layer + "output.dense") + attended, layer + "output.LayerNorm"
            )
        return hidden


def supports(config: dict[str, Any]) -> bool:
    """A plain BERT encoder config (absolute positions, exact GELU, no decoder parts)."""
    return (
        config.get("model_type") == "bert"
        and config.get("position_embedding_type", "absolute") == "absolute"
        and config.get("hidden_act", "gelu") == "gelu"
        and not config.get("is_decoder", False)
        and not config.get("add_cross_attention", False)
        and int(config.get("hidden_size", 0)) % max(1, int(config.get("num_attention_heads", 1))) == 0
    )


def _bert_weights(path: Path) -> dict[str, torch.Tensor]:
    """A BertModel's tensors from a safetensors file, in BertModel's names (a ``bert.`` prefix and the old
    ``gamma``/``beta`` LayerNorm names are mapped as ``transformers`` maps them)."""
    from safetensors.torch import load_file

    raw = load_file(str(path))
    if raw and all(k.startswith("bert.") for k in raw if not k.startswith("cls.")):
        raw = {k[len("bert.") :]: v for k, v in raw.items() if k.startswith("bert.")}
    out = {}
    for key, value in raw.items():
        key = key.replace("LayerNorm.gamma", "LayerNorm.weight").replace("LayerNorm.beta", "LayerNorm.bias")
        out[key] = value
    return out


class TextEngine:
    """Texts → pooled features (n, hidden), as ``HFTextEncoder.forward`` computes them."""

    def __init__(self, tokenizer: Any, encoder: BertEncoder, pooling: str, source: str):
        self.tokenizer = tokenizer
        self.encoder = encoder
        self.pooling = pooling
        self.source = source
        self.out_dim = encoder.hidden_size

    def tokenize(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        encodings = self.tokenizer.encode_batch(list(texts))
        ids = torch.tensor([e.ids for e in encodings], dtype=torch.long)
        mask = torch.tensor([e.attention_mask for e in encodings], dtype=torch.long)
        return ids, mask

    def __call__(self, texts: Sequence[str]) -> torch.Tensor:
        ids, mask = self.tokenize(texts)
        return self.features(ids, mask)

    def features(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, always_mask: bool = False
    ) -> torch.Tensor:
        """Pooled features (n, hidden) of tokenized texts."""
        hidden = self.encoder(input_ids, attention_mask, always_mask)
        if self.pooling == "cls":
            return hidden[:, 0]
        weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-6)


def load_text_engine(side: TextSideConfig) -> TextEngine | None:
    """The engine for an ``hf-text`` backbone in a local folder with a BERT config, else None."""
    if side.backbone != "hf-text":
        return None
    from frameseek.models.text_sources import resolve_text_source

    try:
        folder = Path(resolve_text_source(side.source)).expanduser()
        config_path = folder / "config.json"
        if not (
            config_path.is_file()
            and (folder / TOKENIZER_FILE).is_file()
            and (folder / WEIGHTS_FILE).is_file()
        ):
            return None
        config = json.loads(config_path.read_text(encoding="utf-8"))
        if not isinstance(config, dict) or not supports(config):
            return None
        # a missing tensor (KeyError): transformers would initialise it, so let it build the backbone
        encoder = BertEncoder(config, _bert_weights(folder / WEIGHTS_FILE))
        tokenizer = load_tokenizer(folder, side.max_length)
    except Exception as exc:  # an engine is a speed-up, never a reason to fail: build the backbone instead
        log.info("text engine unavailable for %s (%s); using transformers", side.source, exc)
        return None
    return TextEngine(tokenizer, encoder, side.pooling, side.source)
