"""The dual encoder: image and text backbones, each followed by a projection head into one space.

A model loaded from a checkpoint folder builds its backbones only when needed: the image backbone when an
image is first encoded (indexing, an image query); the ``transformers`` text backbone when anything but
inference needs it (a ``TextEngine`` embeds texts meanwhile, without importing transformers' model code);
both when the whole model is asked for (``state_dict``, ``parameters``, ``to``, training). A text query
on an indexed video builds neither. ``image_backbone_built`` / ``text_backbone_built`` say which exist.

One module because the lazy parts and the whole-model views (``state_dict``, ``to``, training) must agree
on one object's state; presets live in ``registry``, loading in ``factory``, engines in their own modules.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Any, Self, cast

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.modules.module import _IncompatibleKeys

from frameseek.errors import ModelError
from frameseek.models import fingerprint as fingerprints
from frameseek.models.backbones import (
    DEFERRED_BACKBONES,
    DeferredImageBackbone,
    DeferredTextBackbone,
    ImageBackbone,
    TextBackbone,
    build_image_backbone,
    build_text_backbone,
)
from frameseek.models.checkpoint import load_weights_into, read_weights, save_checkpoint
from frameseek.models.config import DualEncoderConfig, read_config
from frameseek.models.heads import ClassChannelHead, ProjectedHead, build_head
from frameseek.models.inference import Engine, EngineSetting, InferenceSettings, Precision
from frameseek.models.onnx_engine import OnnxImageEngine, resolve_engine
from frameseek.models.preprocess import ImageLike, to_tensor
from frameseek.models.text_engine import TextEngine, load_text_engine
from frameseek.models.text_sources import concat_sources

FEW_TEXTS = 4
"""Up to this many texts are embedded on one torch thread. A query is a few dozen tokens: splitting its
small matrix products over threads gains nothing, and on shared cores it waits for a descheduled partner
thread at every parallel region — all-MiniLM-L6-v2 on one sentence, 2 cores at load ~8: 0.79 s with 2
threads, 0.006-0.015 s with 1."""

_BUILD_LOCK = threading.Lock()
"""Held while a deferred backbone is built (a preparer thread and the encoder may both ask for it)."""


class DualEncoder(nn.Module):
    """Image and text encoders that embed into one L2-normalised space of size ``embed_dim``.

    ``image_backbone`` may be a ``DeferredImageBackbone``: the real one is then built on first use.
    """

    def __init__(
        self,
        config: DualEncoderConfig,
        image_backbone: ImageBackbone,
        text_backbone: TextBackbone,
        *,
        inference: InferenceSettings | None = None,
    ):
        super().__init__()
        config.image_feature_dim = int(image_backbone.out_dim)
        config.text_feature_dim = int(text_backbone.out_dim)
        self.config = config
        self.image_backbone = image_backbone
        self.text_backbone = text_backbone
        head = config.head
        self.image_head = build_head(
            head.kind,
            image_backbone.out_dim,
            config.embed_dim,
            head.dropout,
            head.input_dropout,
            head.ensemble,
        )
        self.text_head = build_head(
            head.kind,
            text_backbone.out_dim,
            config.embed_dim,
            head.dropout,
            head.input_dropout,
            head.ensemble,
        )
        if head.class_weight > 0:  # the fused zero-shot class channel (its tensors come with the weights)
            self.add_class_channel()
        if head.project_dim > 0:  # the fixed compact projection (its matrix comes with the weights)
            self.add_projection()
        inference = inference or InferenceSettings.resolve()  # a direct construction reads the defaults
        self.precision: Precision = inference.precision  # bf16: CPU autocast + channels-last images
        # image inference: "torch", "onnx", or "auto" (the image backbone decides: ``engine``)
        self._engine: EngineSetting = inference.engine
        self._target = torch.device(inference.device)  # where place() puts the model (create_model calls it)
        self._onnx: OnnxImageEngine | None = None
        self._fingerprint: str | None = None
        # what the weights were loaded from (fingerprint.source_key); None once weights may have changed
        self._source_key: str | None = None
        # the checkpoint folder the weights were loaded from (its calibration lives there); None once changed
        self.source_folder: Path | None = None
        self._text_engine: TextEngine | None = None  # answers text inference while text_backbone is deferred
        # the same network as the source's text backbone while its weights are the source's (for exports)
        self._source_text_engine: TextEngine | None = None
        self._text_from_source = False  # the text backbone holds (or will build with) its source's weights
        self._first_engine: TextEngine | bool | None = None  # hf-text-concat: its first encoder's engine
        self.register_state_dict_pre_hook(_build_before_state_dict)
        self.register_load_state_dict_pre_hook(_build_before_load)

    def add_class_channel(self) -> None:
        """Wrap both heads in ``ClassChannelHead`` (with zero tensors: ``class_channel.install`` fills
        them; a checkpoint's weights replace them) as ``config.head`` says."""
        head = self.config.head
        text_dim = self.config.class_text_width()
        self._wrap_heads(
            ClassChannelHead,
            lambda inner, side: ClassChannelHead(
                inner,
                side,
                head.class_weight,
                head.class_top_k,
                head.class_count,
                head.class_feature_dim,
                text_dim,
                head.class_text_start,
            ),
        )

    def add_projection(self) -> None:
        """Wrap both heads in ``ProjectedHead`` to ``config.head.project_dim`` dimensions (a zero matrix:
        ``projection.install`` fills it; a checkpoint's weights replace it)."""
        fused, dim = self.config.fused_dim(), self.config.head.project_dim
        self._wrap_heads(ProjectedHead, lambda inner, side: ProjectedHead(inner, fused, dim))

    def _wrap_heads(self, kind: type[nn.Module], wrap: Callable[[nn.Module, str], nn.Module]) -> None:
        """Replace each side's head by ``wrap(head, side)``, on the heads' device, unless it is a ``kind``."""
        device = self.device  # the wrapper's tensors go where the heads are
        for side in ("image", "text"):
            inner = getattr(self, f"{side}_head")
            if not isinstance(inner, kind):
                setattr(self, f"{side}_head", wrap(inner, side).to(device))

    @classmethod
    def from_config(
        cls, config: DualEncoderConfig, *, inference: InferenceSettings | None = None
    ) -> DualEncoder:
        """Build backbones from their sources (package, hub id or folder) and fresh heads."""
        config.validate()
        return cls(
            config, build_image_backbone(config.image), build_text_backbone(config.text), inference=inference
        )

    @classmethod
    def from_pretrained(
        cls, folder: str | Path, *, inference: InferenceSettings | None = None, lazy: bool = True
    ) -> DualEncoder:
        """Load a checkpoint folder (``config.json`` + ``model.safetensors``); presets: ``create_model``.

        With ``lazy`` (the default) each backbone whose weights all come from its source (see
        ``can_defer``) is built on first use: the image backbone when an image is encoded; the text backbone
        when anything but inference needs it, a ``TextEngine`` answering inference meanwhile where one
        supports it. The fingerprint comes from the cache when the weight files are unchanged
        (``frameseek.models.fingerprint``). Either way the model computes the same.
        """
        path = Path(folder).expanduser()
        config = read_config(path)
        weights = read_weights(path)
        key = fingerprints.source_key(config, path)  # before the backbones load (they do not change it)
        config.validate()
        image: ImageBackbone
        if lazy and can_defer(config, weights, "image"):
            image = DeferredImageBackbone(config.image, config.image_feature_dim)
        else:
            image = build_image_backbone(config.image)
        text_from_source = can_defer(config, weights, "text")
        engine = load_text_engine(config.text) if lazy and text_from_source else None
        text: TextBackbone
        if engine is not None and engine.out_dim == config.text_feature_dim:
            text = DeferredTextBackbone(config.text, config.text_feature_dim)
        elif lazy and text_from_source and config.text.backbone == "hf-text-concat":
            # no engine runs it (mpnet is not BERT): built on the first text, so indexing never loads it
            engine, text = None, DeferredTextBackbone(config.text, config.text_feature_dim)
        else:
            engine, text = None, build_text_backbone(config.text)
        model = cls(config, image, text, inference=inference)
        model._text_engine = model._source_text_engine = engine
        model._text_from_source = text_from_source
        load_weights_into(model, weights, str(path))
        model.eval()
        model._source_key = key
        model.source_folder = path
        return model

    def save_pretrained(self, folder: str | Path, include_backbones: bool | None = None) -> Path:
        """Write ``config.json`` + ``model.safetensors`` atomically (backbones only if fine-tuned)."""
        return save_checkpoint(self, Path(folder), include_backbones=include_backbones)

    # ---- properties -------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.config.name

    @property
    def embed_dim(self) -> int:
        """Size of the output embeddings (each head's size × the number of ensembled heads)."""
        return self.config.output_dim()

    @property
    def fingerprint(self) -> str:
        """A stable hash of the config and every weight: the model's identity in index keys.

        Defined in ``frameseek.models.fingerprint``; for weights loaded from unchanged files it is read from
        the cache there, so it needs neither the hashing nor a built image backbone.
        """
        if self._fingerprint is None:
            key = self._source_key
            found = fingerprints.cached(key) if key is not None else None
            if found is None:
                found = fingerprints.of_weights(self.config.to_dict(), self.state_dict())
                if key is not None:
                    fingerprints.remember(key, found)
            self._fingerprint = found
        return self._fingerprint

    def invalidate_fingerprint(self) -> None:
        """Call after changing weights: the identity and any exported image engine are recomputed."""
        self._fingerprint = None
        self._source_key = None  # the files no longer say what the weights are
        self.source_folder = None  # nor does their calibration
        self._onnx = None
        if self.text_backbone_built:  # a built text backbone may have trained (a deferred one cannot)
            self._source_text_engine = None
            self._text_from_source = False

    # ---- device -------------------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        """Where the model computes: its heads' device (a deferred backbone is built there)."""
        for tensor in self.image_head.parameters():
            return tensor.device
        return torch.device("cpu")

    def place(self, device: str | torch.device | None = None) -> Self:
        """Move what is built to ``device`` (default: the one the inference settings named) without
        building deferred backbones (``.to()`` builds everything first, as every whole-model view does)."""
        target = torch.device(device) if device is not None else self._target
        self._target = target
        if target == self.device:
            return self
        for module in self._modules.values():
            if module is not None and not isinstance(module, DEFERRED_BACKBONES):
                module.to(target)
        return self

    @property
    def on_gpu(self) -> bool:
        return self.device.type in ("cuda", "mps")

    # ---- deferred backbones ----------------------------------------------------------------------
    @property
    def image_backbone(self) -> ImageBackbone:
        """The image backbone, built now if it was deferred."""
        return cast(ImageBackbone, self._load_deferred("image_backbone"))

    @image_backbone.setter
    def image_backbone(self, value: ImageBackbone) -> None:
        self._modules["image_backbone"] = value

    @property
    def text_backbone(self) -> TextBackbone:
        """The text backbone (``transformers``), built now if it was deferred."""
        return cast(TextBackbone, self._load_deferred("text_backbone"))

    @text_backbone.setter
    def text_backbone(self, value: TextBackbone) -> None:
        self._modules["text_backbone"] = value

    @property
    def image_backbone_built(self) -> bool:
        """False while the image backbone is deferred (no image has been encoded, nothing needed it)."""
        return not isinstance(self._modules["image_backbone"], DEFERRED_BACKBONES)

    @property
    def text_backbone_built(self) -> bool:
        """False while the text backbone is deferred (the text engine answers text inference)."""
        return not isinstance(self._modules["text_backbone"], DEFERRED_BACKBONES)

    @property
    def text_engine(self) -> TextEngine | None:
        """The engine that answers text inference while the text backbone is deferred, if any."""
        return self._text_engine

    @property
    def source_text_engine(self) -> TextEngine | None:
        """A text engine computing this model's text features while its text backbone holds its source's
        weights (also once the backbone is built), else None; ``query_engine`` exports it."""
        return self._source_text_engine

    @property
    def text_from_source(self) -> bool:
        """Whether the text backbone computes its source's features (no fine-tuned text weights, unchanged
        since loading): what the query engine needs to export it."""
        return self._text_from_source

    def load_image_backbone(self) -> ImageBackbone:
        """Build a deferred image backbone now (a no-op once built); returns it."""
        return self.image_backbone

    def load_text_backbone(self) -> TextBackbone:
        """Build a deferred text backbone now (a no-op once built); the text engine is then dropped."""
        return self.text_backbone

    def load_backbones(self) -> None:
        """Build every deferred backbone: the model is then what an eager load gives."""
        self._load_deferred("image_backbone")
        self._load_deferred("text_backbone")

    def _load_deferred(self, name: str) -> nn.Module:
        """The backbone ``name``, built first if deferred: outside inference mode (its weights must stay
        ordinary tensors), without moving the global random state, in the placeholder's train/eval mode."""
        current = self._modules[name]
        if not isinstance(current, DEFERRED_BACKBONES):
            assert current is not None
            return current
        with _BUILD_LOCK:
            current = self._modules[name]
            if isinstance(current, DEFERRED_BACKBONES):
                with torch.inference_mode(False), torch.random.fork_rng(devices=[]):
                    built = current.build()
                if int(built.out_dim) != current.out_dim:
                    side = name.split("_")[0]
                    raise ModelError(
                        f"the {side} backbone gives {built.out_dim}-d features, the checkpoint's config "
                        f"says {side}_feature_dim {current.out_dim}"
                    )
                built.train(current.training)
                built.to(self.device)  # where the heads are (create_model placed them)
                self._modules[name] = built
                if name == "text_backbone":
                    self._text_engine = None  # the real backbone answers from now on
                current = built
        assert current is not None
        return current

    def built_state_dict(self) -> dict[str, torch.Tensor]:
        """The state dict of what is built so far: deferred backbones contribute nothing."""
        state: dict[str, torch.Tensor] = {}
        for name, module in self._modules.items():
            if module is None or isinstance(module, DEFERRED_BACKBONES):
                continue
            state.update({f"{name}.{key}": value for key, value in module.state_dict().items()})
        return state

    # every view of the whole model (parameters, buffers, modules, to/float, apply) builds it first
    def named_modules(
        self, memo: set[nn.Module] | None = None, prefix: str = "", remove_duplicate: bool = True
    ) -> Iterator[tuple[str, nn.Module]]:
        self.load_backbones()
        return super().named_modules(memo, prefix, remove_duplicate)

    def _apply(self, fn: Callable[[torch.Tensor], torch.Tensor], recurse: bool = True) -> Self:
        self.load_backbones()
        return super()._apply(fn, recurse)

    def apply(self, fn: Callable[[nn.Module], None]) -> Self:
        self.load_backbones()
        return super().apply(fn)

    def load_state_dict(
        self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False
    ) -> _IncompatibleKeys:
        if strict:  # a strict load reports missing backbone tensors: they must exist
            self.load_backbones()
        return super().load_state_dict(state_dict, strict, assign)

    def train(self, mode: bool = True) -> Self:
        if mode:
            self._source_key = None  # training changes weights: the fingerprint is hashed from them
        return super().train(mode)

    # ---- differentiable pieces (training) -----------------------------------------------------
    def preprocess(self, images: Sequence[ImageLike], flip: bool = False) -> torch.Tensor:
        side = self.image_backbone
        return to_tensor(images, side.image_size, self.config.image.resize, side.mean, side.std, flip=flip)

    def image_features(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.image_backbone(pixels.to(self.device))

    def text_features(self, texts: Sequence[str]) -> torch.Tensor:
        engine = self._text_engine
        if engine is not None and not self.training and not self.text_backbone_built:
            # the same features without building the transformers backbone (the engine runs on the CPU)
            return engine(texts).to(self.device)
        return self.text_backbone(texts)

    def project_images(self, features: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.image_head(features.float()), dim=-1)

    def project_texts(self, features: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.text_head(features.float()), dim=-1)

    def forward(self, pixels: torch.Tensor, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        return self.project_images(self.image_features(pixels)), self.project_texts(self.text_features(texts))

    # ---- inference ------------------------------------------------------------------------------
    def backbone_input(self, pixels: torch.Tensor) -> torch.Tensor:
        """A preprocessed batch ready for the image backbone at inference: on the model's device (from
        pinned memory asynchronously), channels-last where that is the faster layout."""
        device = self.device
        if device.type != "cpu":
            pixels = pixels.to(device, non_blocking=True)
        if self.precision == "bf16" or device.type == "cuda":
            pixels = pixels.contiguous(memory_format=torch.channels_last)
        return pixels

    @property
    def compute_precision(self) -> str:
        """The numeric precision inference runs in: ``fp32`` / ``bf16`` on the CPU, ``cuda-bf16`` … on a GPU
        (feature caches key on it)."""
        if not self.on_gpu:
            return self.precision
        return f"{self.device.type}-{'bf16' if gpu_dtype(self.device) == torch.bfloat16 else 'fp16'}"

    def _text_autocast(self) -> torch.autocast | nullcontext[None]:
        """Text runs in fp32 on the CPU (a sentence is cheap, and the exported query engine computes the
        same numbers); half precision on a GPU."""
        return self.autocast() if self.on_gpu else nullcontext()

    def autocast(self) -> torch.autocast | nullcontext[None]:
        """Inference autocast: half precision on a GPU, bf16 on a CPU that has it, else none."""
        device = self.device
        if device.type in ("cuda", "mps"):
            return torch.autocast(device.type, dtype=gpu_dtype(device))
        if self.precision == "bf16":
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return nullcontext()

    @property
    def engine(self) -> Engine:
        """The image engine, ``torch`` or ``onnx``; ``auto`` is decided by the image backbone (built now if
        deferred) the first time it is asked (``onnx_engine.resolve_engine``)."""
        if self._engine == "auto":
            heavy = self.load_image_backbone().heavy
            self._engine = cast(EngineSetting, resolve_engine("auto", self.precision, heavy))
        return cast(Engine, self._engine)

    @engine.setter
    def engine(self, value: Engine) -> None:
        self._engine = value

    @property
    def image_inference(self) -> str:
        """How images are encoded at inference: ``onnxruntime fp32``, ``torch bf16``, ``torch fp32``, or on a
        GPU ``torch cuda:0 bf16`` (autocast)."""
        if self.engine == "onnx":
            return "onnxruntime fp32" + ("" if self.device.type == "cpu" else f" ({self.device})")
        if self.on_gpu:
            half = "bf16" if gpu_dtype(self.device) == torch.bfloat16 else "fp16"
            return f"torch {self.device} {half}"
        return f"torch {self.precision}"

    def _onnx_engine(self) -> OnnxImageEngine | None:
        """The ONNX Runtime engine for the image backbone, when this model runs images through it."""
        if self.engine != "onnx" or self.training:
            return None
        if self._onnx is None:
            self._onnx = OnnxImageEngine(
                self.image_backbone, self.image_backbone.image_size, self.fingerprint, device=self.device
            )
        return self._onnx

    def prepare_image_engine(self, threads: int | None = None) -> str:
        """Build the image backbone and export/load its engine now (not inside the first timed batch);
        returns the engine used."""
        self.load_image_backbone()
        engine = self._onnx_engine()
        if engine is not None and engine.session(threads or torch.get_num_threads()) is not None:
            return "onnx"
        return "torch"

    @torch.inference_mode()
    def encode_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        """Embed an already preprocessed batch (n, 3, H, W)."""
        engine = self._onnx_engine()
        if engine is not None:
            features = engine.features(pixels, torch.get_num_threads())
            if features is not None:
                return self.project_images(features.to(self.device)).cpu()
        pixels = self.backbone_input(pixels)
        with self.autocast():
            features = self.image_features(pixels)
        return self.project_images(features.float()).cpu()

    @torch.inference_mode()
    def encode_images(
        self, images: Sequence[ImageLike], batch_size: int = 32, flip_tta: bool = False
    ) -> np.ndarray:
        """Embed images (PIL or HxWx3 uint8 RGB) → (n, embed_dim) float32, L2-normalised."""
        was_training = self.training
        self.eval()
        out = []
        for start in range(0, len(images), batch_size):
            chunk = images[start : start + batch_size]
            emb = self.encode_pixels(self.preprocess(chunk))
            if flip_tta:
                emb = F.normalize(emb + self.encode_pixels(self.preprocess(chunk, flip=True)), dim=-1)
            out.append(emb.numpy())
        self.train(was_training)
        return np.concatenate(out) if out else np.zeros((0, self.embed_dim), dtype=np.float32)

    @torch.inference_mode()
    def encode_texts(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Embed texts → (n, embed_dim) float32, L2-normalised."""
        was_training = self.training
        self.eval()
        out = []
        with _few_texts_on_one_thread(len(texts)):
            for start in range(0, len(texts), batch_size):
                with self._text_autocast():
                    features = self.text_features(texts[start : start + batch_size])
                out.append(self.project_texts(features.float()).cpu().numpy())
        self.train(was_training)
        return np.concatenate(out) if out else np.zeros((0, self.embed_dim), dtype=np.float32)

    @torch.inference_mode()
    def encode_sentences(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """The text backbone's own sentence embeddings (before the head), L2-normalised: text-to-text
        similarity for matching a query against transcripts and on-screen text."""
        out = []
        sentence = int(self.config.text.sentence_dim or 0)
        with _few_texts_on_one_thread(len(texts)):
            for start in range(0, len(texts), batch_size):
                chunk = texts[start : start + batch_size]
                with self._text_autocast():
                    features = self._sentence_features(chunk, sentence)
                out.append(F.normalize(features.float(), dim=-1).cpu().numpy())
        width = int(self.config.text.sentence_dim or self.config.text_feature_dim or 0)
        return np.concatenate(out) if out else np.zeros((0, width), dtype=np.float32)

    def _sentence_features(self, texts: Sequence[str], sentence: int) -> torch.Tensor:
        """The first ``sentence`` text features (0: all). For a concatenating backbone whose first encoder
        gives exactly those, only that encoder runs — through a text engine while the backbone is not
        built — so matching transcripts never loads or runs the larger encoder."""
        if not sentence:
            return self.text_features(texts)
        first = self._first_text_part(sentence)
        if first is not None:
            return first(texts).to(self.device)
        return self.text_features(texts)[:, :sentence]

    def _first_text_part(self, sentence: int) -> Callable[[Sequence[str]], torch.Tensor] | None:
        side = self.config.text
        if side.backbone != "hf-text-concat" or not self._text_from_source or self.training:
            return None
        if self.text_backbone_built:
            parts = getattr(self.text_backbone, "parts", None)
            if isinstance(parts, nn.ModuleList) and int(getattr(parts[0], "out_dim", 0)) == sentence:
                return cast(Callable[[Sequence[str]], torch.Tensor], parts[0])
            return None
        if self._first_engine is None:
            first = replace(side, backbone="hf-text", source=concat_sources(side.source)[0])
            engine = load_text_engine(first)
            self._first_engine = engine if engine is not None and engine.out_dim == sentence else False
        return self._first_engine if isinstance(self._first_engine, TextEngine) else None

    def parameter_counts(self) -> dict[str, int]:
        """Parameters per part: image/text backbone and head, and the total."""

        def count(module: nn.Module) -> int:
            return sum(p.numel() for p in module.parameters())

        counts = {
            "image_backbone": count(self.image_backbone),
            "image_head": count(self.image_head),
            "text_backbone": count(self.text_backbone),
            "text_head": count(self.text_head),
        }
        counts["total"] = sum(counts.values())
        return counts


def gpu_dtype(device: torch.device) -> torch.dtype:
    """Autocast precision on a GPU: bfloat16 where CUDA supports it, else float16."""
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float16


@contextlib.contextmanager
def _few_texts_on_one_thread(count: int) -> Iterator[None]:
    """One torch thread for the block when embedding up to ``FEW_TEXTS`` texts (restored after; torch's
    OpenMP thread count is per calling thread, so other threads keep theirs)."""
    previous = torch.get_num_threads()
    if count > FEW_TEXTS or previous == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def can_defer(config: DualEncoderConfig, weights: dict[str, torch.Tensor], side: str) -> bool:
    """Whether a checkpoint's ``side`` ("image" / "text") backbone can be built later with the weights it
    would get now.

    It can when the checkpoint carries (and its config lists) none of its tensors — they all come from the
    backbone's source —, the config records its feature size (the head is built from it) and the source
    is not random.
    """
    prefix = f"{side}_backbone."
    if int((config.image_feature_dim if side == "image" else config.text_feature_dim) or 0) <= 0:
        return False
    if any(k.startswith(prefix) for k in [*weights, *config.backbone_weight_prefixes]):
        return False
    return not (
        side == "image"
        and config.image.backbone.startswith("efficientnet")
        and config.image.source == "random"
    )


def _build_before_state_dict(module: nn.Module, prefix: str, keep_vars: bool) -> None:
    """``state_dict`` pre-hook: the whole model's state includes every backbone."""
    if isinstance(module, DualEncoder):
        module.load_backbones()


def _build_before_load(module: nn.Module, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
    """``load_state_dict`` pre-hook (also inside a wrapper's load): build a deferred backbone if the state
    has its tensors; loading changes weights, so the fingerprint is hashed from them afterwards."""
    if not isinstance(module, DualEncoder):
        return
    for name in ("image_backbone", "text_backbone"):
        if any(k.startswith(f"{prefix}{name}.") for k in state_dict):
            module._load_deferred(name)
    module.invalidate_fingerprint()
