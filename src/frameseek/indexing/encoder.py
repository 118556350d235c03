"""Stage 3, the encoder: batches of prepared frames → L2-normalised embeddings, on the caller's threads."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import numpy as np
import torch

from frameseek.indexing.preparer import PreparedFrame
from frameseek.models.dual_encoder import DualEncoder

DEFAULT_BATCH_SIZE = 8
"""Frames per encoder call: faster per frame than 16 or 32 on 1-2 CPU threads and less memory
(``benchmarks/encoder_throughput.py``, ``benchmarks/memory_vs_length.py``)."""

HEAVY_IMAGE_ENCODER_PARAMETERS = 10_000_000
"""Above this many image-backbone parameters indexing is limited by the encoder, not by decoding."""


def default_encode_threads(model: DualEncoder, cores: int, decode_threads: int) -> int:
    """Torch threads for encoding while indexing: every core for a heavy image encoder, else the cores the
    decoder leaves. Measured on 2 cores at 720p (BENCHMARKS.md, breakdown): resnet50-distilbert (23.5M
    image parameters) indexes 1.35× faster with 2 torch threads than with 1; lite (3.4M) is
    decode-limited and gains nothing from a second thread competing with the decoder."""
    backbone = getattr(model, "image_backbone", None)
    size = sum(p.numel() for p in backbone.parameters()) if isinstance(backbone, torch.nn.Module) else 0
    if size >= HEAVY_IMAGE_ENCODER_PARAMETERS:
        return max(1, cores)
    return max(1, cores - decode_threads)


class FrameEncoder:
    """Embeds batches of prepared frames with ``threads`` torch threads (engine and precision: the model's).

    ``threads=None``: ``default_encode_threads`` for the model, decided on first use — it reads the image
    backbone's size, and a model that only answers text queries never builds its image backbone.
    """

    def __init__(
        self,
        model: DualEncoder,
        *,
        threads: int | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        decode_threads: int = 1,
    ) -> None:
        self.model = model
        self._threads = threads
        self.decode_threads = decode_threads
        self.batch_size = batch_size

    @property
    def threads(self) -> int:
        if self._threads is None:
            self._threads = default_encode_threads(self.model, torch.get_num_threads(), self.decode_threads)
        return self._threads

    def prepare(self) -> str:
        """Export/load the image engine now, not inside the first timed batch; returns the engine used."""
        return self.model.prepare_image_engine(self.threads)

    @contextlib.contextmanager
    def threads_set(self) -> Iterator[None]:
        """Torch runs on ``threads`` threads inside the block (restored after)."""
        previous = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            yield
        finally:
            torch.set_num_threads(previous)

    def __call__(self, batch: Sequence[PreparedFrame]) -> np.ndarray:
        pixels = torch.stack([frame.pixels for frame in batch])
        embeddings: np.ndarray = self.model.encode_pixels(pixels).numpy()
        return embeddings
