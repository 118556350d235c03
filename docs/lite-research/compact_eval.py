import json, sys
from pathlib import Path
import numpy as np, torch
from frameseek.lab.data.captions import load_dataset
from frameseek.lab.training import SplitData, split_holdout
from frameseek.models.factory import create_model
from frameseek.lab.retrieval_eval import embed_split, recall_report
from frameseek.lab.compact import Codec
torch.set_num_threads(1)
model = create_model(sys.argv[1] if len(sys.argv) > 1 else "lite")
data = Path("../shared/data/flickr8k")
train = SplitData.from_samples(load_dataset("flickr8k", data, "train"))
kept, _ = split_holdout(train, 500, 0)
dev = SplitData.from_samples(load_dataset("flickr8k", data, "dev"))
ki, kt = embed_split(model, kept.images, kept.captions)
di, dt = embed_split(model, dev.images, dev.captions)
rng = np.random.default_rng(0)
sample = np.concatenate([ki, kt[rng.choice(len(kt), len(ki), replace=False)]])
def r(i, t):
    rep = recall_report(i, t, dev.captions, dev.caption_to_image)
    return round(rep["standard"]["text_to_image"]["R@1"], 2), round(rep["original_protocol"]["text_to_image"]["R@1"], 2)
full = r(di, dt)
rows = [("full float32", di.shape[1], 4 * di.shape[1], *full), ("full float16", di.shape[1], 2 * di.shape[1], *r(di.astype(np.float16).astype(np.float32), dt))]
from frameseek.lab.compact import fit_projection
import faiss
P = fit_projection(sample, 1024)
print("svd done", flush=True)
def make(dim, storage, m):
    c = Codec(np.ascontiguousarray(P[:, :dim]), storage, m or 64)
    if storage == "pq":
        v = c.queries(sample); pq = faiss.IndexPQ(dim, m, 8, faiss.METRIC_INNER_PRODUCT); pq.train(np.ascontiguousarray(v)); c._pq = pq
    return c
for dim, storage, m in ((1024, "float16", 0), (768, "float16", 0), (512, "float32", 0), (512, "float16", 0), (384, "float16", 0), (256, "float16", 0), (512, "pq", 128), (512, "pq", 64)):
    codec = make(dim, storage, m)
    rows.append((f"PCA {dim} {storage}" + (f" m={m}" if m else ""), dim, codec.bytes_per_vector, *r(codec.decode(codec.encode(di)), codec.queries(dt))))
for row in rows:
    print(f"{row[0]:24s} dim {row[1]:5d} bytes {row[2]:6d}  DEV t2i R@1 {row[3]:6.2f} ({100*row[3]/full[0]:5.1f}%)  orig {row[4]:6.2f}", flush=True)
