"""The dual encoder: image and text backbones, each followed by a projection head into one space."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from frameseek.models.backbones import (
    ImageBackbone,
    TextBackbone,
    build_image_backbone,
    build_text_backbone,
)
from frameseek.models.checkpoint import load_weights_into, read_config, read_weights, save_checkpoint
from frameseek.models.config import DualEncoderConfig
from frameseek.models.heads import build_head
from frameseek.models.inference import Engine, InferenceSettings, Precision
from frameseek.models.onnx_engine import OnnxImageEngine
from frameseek.models.preprocess import ImageLike, to_tensor


class DualEncoder(nn.Module):
    """Image and text encoders that embed into one L2-normalised space of size ``embed_dim``."""

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
        inference = inference or InferenceSettings.resolve()  # a direct construction reads the defaults
        self.precision: Precision = inference.precision  # bf16: CPU autocast + channels-last images
        self.engine: Engine = inference.engine  # image inference: "torch" or "onnx"
        self._onnx: OnnxImageEngine | None = None
        self._fingerprint: str | None = None

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
        cls, folder: str | Path, *, inference: InferenceSettings | None = None
    ) -> DualEncoder:
        """Load a checkpoint folder (``config.json`` + ``model.safetensors``); presets: ``create_model``."""
        path = Path(folder).expanduser()
        model = cls.from_config(read_config(path), inference=inference)
        load_weights_into(model, read_weights(path), str(path))
        model.eval()
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
        return self.config.embed_dim * (
            self.config.head.ensemble if self.config.head.kind == "projection" else 1
        )

    @property
    def fingerprint(self) -> str:
        """A stable hash of the config and every weight: the model's identity in index keys."""
        if self._fingerprint is None:
            digest = hashlib.sha256(json.dumps(self.config.to_dict(), sort_keys=True).encode())
            for key, tensor in sorted(self.state_dict().items()):
                digest.update(key.encode())
                digest.update(tensor.detach().to(torch.float32).contiguous().numpy().tobytes())
            self._fingerprint = digest.hexdigest()[:16]
        return self._fingerprint

    def invalidate_fingerprint(self) -> None:
        """Call after changing weights: the identity and any exported image engine are recomputed."""
        self._fingerprint = None
        self._onnx = None

    # ---- differentiable pieces (training) -----------------------------------------------------
    def preprocess(self, images: Sequence[ImageLike], flip: bool = False) -> torch.Tensor:
        side = self.image_backbone
        return to_tensor(images, side.image_size, self.config.image.resize, side.mean, side.std, flip=flip)

    def image_features(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.image_backbone(pixels)

    def text_features(self, texts: Sequence[str]) -> torch.Tensor:
        return self.text_backbone(texts)

    def project_images(self, features: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.image_head(features.float()), dim=-1)

    def project_texts(self, features: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.text_head(features.float()), dim=-1)

    def forward(self, pixels: torch.Tensor, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        return self.project_images(self.image_features(pixels)), self.project_texts(self.text_features(texts))

    # ---- inference ------------------------------------------------------------------------------
    def _autocast(self) -> torch.autocast | nullcontext[None]:
        if self.precision == "bf16":
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return nullcontext()

    @property
    def image_inference(self) -> str:
        """How images are encoded at inference: ``onnxruntime fp32``, ``torch bf16`` or ``torch fp32``."""
        return "onnxruntime fp32" if self.engine == "onnx" else f"torch {self.precision}"

    def _onnx_engine(self) -> OnnxImageEngine | None:
        """The ONNX Runtime engine for the image backbone, when this model runs images through it."""
        if self.engine != "onnx" or self.training:
            return None
        if self._onnx is None:
            self._onnx = OnnxImageEngine(
                self.image_backbone, self.image_backbone.image_size, self.fingerprint
            )
        return self._onnx

    def prepare_image_engine(self, threads: int | None = None) -> str:
        """Export/load the image engine now (not inside the first timed batch); returns the engine used."""
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
                return self.project_images(features)
        if self.precision == "bf16":
            pixels = pixels.contiguous(memory_format=torch.channels_last)
        with self._autocast():
            features = self.image_features(pixels)
        return self.project_images(features.float())

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
        for start in range(0, len(texts), batch_size):
            with self._autocast():
                features = self.text_features(texts[start : start + batch_size])
            out.append(self.project_texts(features.float()).numpy())
        self.train(was_training)
        return np.concatenate(out) if out else np.zeros((0, self.embed_dim), dtype=np.float32)

    @torch.inference_mode()
    def encode_sentences(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """The text backbone's own sentence embeddings (before the head), L2-normalised: text-to-text
        similarity for matching a query against transcripts and on-screen text."""
        out = []
        for start in range(0, len(texts), batch_size):
            with self._autocast():
                features = self.text_features(texts[start : start + batch_size])
            out.append(F.normalize(features.float(), dim=-1).numpy())
        width = int(self.config.text_feature_dim or 0)
        return np.concatenate(out) if out else np.zeros((0, width), dtype=np.float32)

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
