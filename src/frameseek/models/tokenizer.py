"""A text model folder's fast tokenizer, run by the ``tokenizers`` library (what ``transformers``' fast
tokenizer wraps) without importing torch or ``transformers``: truncation at the model's length and padding
to the longest text of a batch, as ``HFTextEncoder`` tokenizes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

TOKENIZER_FILE = "tokenizer.json"


def load_tokenizer(folder: Path, max_length: int) -> Any:
    """The folder's ``tokenizer.json``, truncating at ``max_length`` and padding to the longest text."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(folder / TOKENIZER_FILE))
    settings: dict[str, Any] = {}
    for name in ("special_tokens_map.json", "tokenizer_config.json"):
        path = folder / name
        if path.is_file():
            settings.update({k: v for k, v in json.loads(path.read_text(encoding="utf-8")).items() if v})
    pad = settings.get("pad_token", "[PAD]")
    pad = pad.get("content", "[PAD]") if isinstance(pad, dict) else str(pad)
    pad_id = tokenizer.token_to_id(pad)
    if pad_id is None:
        raise ValueError(f"pad token {pad!r} is not in the vocabulary")
    tokenizer.no_truncation()
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=max_length)
    tokenizer.enable_padding(pad_id=pad_id, pad_token=pad)
    return tokenizer
