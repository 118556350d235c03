"""Cache text features of a text backbone (bf16 autocast, to save time) under the trainer's cache keys."""
import sys, time
from pathlib import Path
import torch
from tqdm import tqdm
from frameseek.lab.data.captions import load_dataset
from frameseek.lab.training import SplitData, split_holdout
from frameseek.lab import features as F
from frameseek.models.config import DualEncoderConfig, ImageSideConfig, TextSideConfig, HeadConfig
from frameseek.models.dual_encoder import DualEncoder

torch.set_num_threads(1)
source = sys.argv[1]
data = Path("../shared/data/flickr8k")
train = SplitData.from_samples(load_dataset("flickr8k", data, "train"))
kept, held = split_holdout(train, 500, 0)
dev = SplitData.from_samples(load_dataset("flickr8k", data, "dev"))
cfg = DualEncoderConfig(name="probe", image=ImageSideConfig(backbone="efficientnet-lite0-multiscale"),
                        text=TextSideConfig(backbone="hf-text", source=source, pooling="mean"),
                        head=HeadConfig(kind="projection"))
model = DualEncoder.from_config(cfg); model.eval()

@torch.inference_mode()
def compute(texts):
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = []
    for s in tqdm(range(0, len(texts), 128), leave=False):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out.append(model.text_features([texts[i] for i in order[s:s+128]]).float())
    feats = torch.cat(out)
    result = torch.empty_like(feats)
    result[torch.as_tensor(order)] = feats
    return result

t = time.time()
extra_sets = [("dev", dev.captions), ("held", held.captions), ("kept", kept.captions)]
for name, texts in extra_sets:
    key = F._cache_key(model, "text", texts, "")
    f = F._cached(key, lambda: compute(texts))
    print(name, f.shape, round(time.time() - t), flush=True)
