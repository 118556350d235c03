"""Cache lite features for Flickr8k train-kept / holdout / dev exactly as the trainer keys them."""
import os, sys, time
from pathlib import Path
import torch
from frameseek.lab.data.captions import load_dataset
from frameseek.lab.training import SplitData, split_holdout
from frameseek.lab.features import cached_image_features, cached_text_features
from frameseek.models.factory import build_preset

torch.set_num_threads(1)
data = Path("../shared/data/flickr8k")
train = SplitData.from_samples(load_dataset("flickr8k", data, "train"))
kept, held = split_holdout(train, 500, 0)
dev = SplitData.from_samples(load_dataset("flickr8k", data, "dev"))
model = build_preset(sys.argv[1] if len(sys.argv) > 1 else "lite")
model.eval()
t = time.time()
for name, s in (("dev", dev), ("held", held), ("kept", kept)):
    for flip in (False, True):
        f = cached_image_features(model, s.images, flip=flip)
        print(name, flip, f.shape, time.time() - t, flush=True)
    f = cached_text_features(model, s.captions)
    print(name, "text", f.shape, time.time() - t, flush=True)
