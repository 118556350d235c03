"""Image preprocessing: uint8 RGB frames or PIL images → a normalised float tensor batch."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

if TYPE_CHECKING:
    import torch

ImageLike = Image.Image | np.ndarray


def to_pil(image: ImageLike) -> Image.Image:
    """Accept a PIL image or an HxWx3 uint8 RGB array."""
    if isinstance(image, Image.Image):
        return image.convert("RGB") if image.mode != "RGB" else image
    array = np.asarray(image)
    if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8:
        raise ValueError(f"expected an HxWx3 uint8 RGB array, got shape {array.shape} dtype {array.dtype}")
    return Image.fromarray(array, mode="RGB")


def resize(image: Image.Image, size: int, mode: str) -> Image.Image:
    """``squash``: resize to size×size; ``crop``: shorter side to size, then centre crop."""
    if mode == "squash":
        return image.resize((size, size), Image.Resampling.BILINEAR)
    width, height = image.size
    scale = size / min(width, height)
    new_w, new_h = max(size, round(width * scale)), max(size, round(height * scale))
    image = image.resize((new_w, new_h), Image.Resampling.BICUBIC)
    left, top = (new_w - size) // 2, (new_h - size) // 2
    return image.crop((left, top, left + size, top + size))


def to_tensor(
    images: Sequence[ImageLike],
    size: int,
    mode: str,
    mean: Sequence[float],
    std: Sequence[float],
    flip: bool = False,
) -> torch.Tensor:
    """Preprocess a batch into (n, 3, size, size) float32, normalised; ``flip`` mirrors horizontally."""
    import torch  # here, so that ``ImageLike`` and ``to_pil`` come without torch

    arrays = []
    for image in images:
        resized = resize(to_pil(image), size, mode)
        if flip:
            resized = resized.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        arrays.append(np.asarray(resized, dtype=np.uint8))
    batch = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float().div_(255.0)
    mean_t = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    return batch.sub_(mean_t).div_(std_t)
