"""Stage 3, the encoder: batches of prepared frames → L2-normalised embeddings, on the caller's threads."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np

from frameseek.models.handle import ModelHandle
from frameseek.system.devices import resolve_device

if TYPE_CHECKING:  # torch is imported when frames are first encoded, not when the stage is built
    from frameseek.indexing.preparer import PreparedFrame
    from frameseek.models.dual_encoder import DualEncoder

DEFAULT_BATCH_SIZE = 8
"""Frames per encoder call: faster per frame than 16 or 32 on 1-2 CPU threads and less memory
(``benchmarks/encoder_throughput.py``, ``benchmarks/memory_vs_length.py``)."""


def default_encode_threads(model: DualEncoder, cores: int, decode_threads: int) -> int:
    """Torch threads for encoding while indexing: every core for a heavy image encoder, else the cores the
    decoder leaves. Measured on 2 cores at 720p (BENCHMARKS.md, breakdown): resnet50-distilbert (23.5M
    image parameters) indexes 1.35× faster with 2 torch threads than with 1; lite (3.4M) is
    decode-limited and gains nothing from a second thread competing with the decoder."""
    if model.load_image_backbone().heavy:
        return max(1, cores)
    return max(1, cores - decode_threads)


class FrameEncoder:
    """Embeds batches of prepared frames with ``threads`` torch threads (engine and precision: the model's).

    ``threads=None``: ``default_encode_threads`` for the model, decided on first use — it reads the image
    backbone's size, and a model that only answers text queries never builds its image backbone.
    """

    def __init__(
        self,
        model: DualEncoder | ModelHandle,
        *,
        threads: int | None = None,
        batch_size: int | None = None,
        decode_threads: int = 1,
    ) -> None:
        self._source = model
        self._threads = threads
        self.decode_threads = decode_threads
        self._batch_size = batch_size

    @property
    def model(self) -> DualEncoder:
        """The model that encodes (a handle's is created on first use)."""
        source = self._source
        return source.model if isinstance(source, ModelHandle) else source

    @property
    def fingerprint(self) -> str:
        """The model's fingerprint (a handle gives it without creating the model, where it can)."""
        return self._source.fingerprint

    @property
    def batch_size(self) -> int:
        """As given, else ``DEFAULT_BATCH_SIZE`` on a CPU and ``GPU_BATCH_SIZE`` on a GPU."""
        if self._batch_size is None:
            device = resolve_device(str(self.model.device))
            self._batch_size = device.batch_size(DEFAULT_BATCH_SIZE)
        return self._batch_size

    @property
    def threads(self) -> int:
        if self._threads is None:
            import torch

            self._threads = default_encode_threads(self.model, torch.get_num_threads(), self.decode_threads)
        return self._threads

    def prepare(self) -> str:
        """Export/load the image engine now, not inside the first timed batch; returns the engine used."""
        return self.model.prepare_image_engine(self.threads)

    @contextlib.contextmanager
    def threads_set(self) -> Iterator[None]:
        """Torch runs on ``threads`` threads inside the block (restored after)."""
        import torch

        previous = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            yield
        finally:
            torch.set_num_threads(previous)

    def __call__(self, batch: Sequence[PreparedFrame]) -> np.ndarray:
        import torch

        pixels = torch.stack([frame.pixels for frame in batch])
        if self.model.device.type == "cuda":
            pixels = pixels.pin_memory()  # page-locked: the host-to-GPU copy runs asynchronously
        embeddings: np.ndarray = self.model.encode_pixels(pixels).numpy()
        return embeddings
