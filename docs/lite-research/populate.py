"""Write the concat (MiniLM + mpnet) text-feature caches under the trainer's key from the two cached parts."""
import hashlib, json, types
from pathlib import Path
import torch
from safetensors.torch import load_file
from frameseek.lab.data.captions import load_dataset
from frameseek.lab.training import SplitData, split_holdout
from frameseek.lab import features as FE
from frameseek import settings
from frameseek.models.registry import PRESETS

def old_key(source, texts):
    side = {"backbone": "hf-text", "source": source, "pooling": "mean", "max_length": 64}
    payload = json.dumps({"side": side, "kind": "text", "extra": "", "precision": "bf16"}, sort_keys=True)
    d = hashlib.sha256(payload.encode())
    for t in texts:
        d.update(t.encode()); d.update(b"\0")
    return d.hexdigest()[:24]

data = Path("../shared/data/flickr8k")
train = SplitData.from_samples(load_dataset("flickr8k", data, "train"))
kept, held = split_holdout(train, 500, 0)
dev = SplitData.from_samples(load_dataset("flickr8k", data, "dev"))
side = PRESETS["lite"].config.text
fake = types.SimpleNamespace(config=types.SimpleNamespace(text=side), precision="bf16")
home = settings.home() / "features"
for s in (kept, held, dev):
    parts = [load_file(str(home / f"{old_key(src, s.captions)}.safetensors"))["features"]
             for src in FE_SRC] if (FE_SRC := side.source.split("+")) else []
    key = FE._cache_key(fake, "text", s.captions, "")
    FE._cached(key, lambda: torch.cat(parts, 1))
    print(len(s.captions), [p.shape for p in parts], key)
