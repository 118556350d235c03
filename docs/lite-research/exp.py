"""Research harness: frozen-feature head training mirroring frameseek's Trainer, with extra channels."""
from __future__ import annotations
import json, sys, time, math, copy
from pathlib import Path
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from frameseek.lab.data.captions import load_dataset
from frameseek.lab.training import SplitData, split_holdout, epoch_batches
from frameseek.lab import features as FE
from frameseek.models.config import DualEncoderConfig, ImageSideConfig, TextSideConfig, HeadConfig
from frameseek.models.dual_encoder import DualEncoder
from frameseek.models.heads import ProjectionHead
from frameseek.lab.losses import build_loss
from frameseek.lab.retrieval_eval import recall_report
from frameseek.lab import evaluation

torch.set_num_threads(1)
DATA = Path("../shared/data/flickr8k")
TUX = Path("/usr/share/tuxpaint/stamps")
train = SplitData.from_samples(load_dataset("flickr8k", DATA, "train"))
KEPT, HELD = split_holdout(train, 500, 0)
DEV = SplitData.from_samples(load_dataset("flickr8k", DATA, "dev"))
TUXS = SplitData.from_samples(load_dataset("tuxpaint", TUX, "all"))
SPLITS = {"kept": KEPT, "held": HELD, "dev": DEV, "tux": TUXS}

_models: dict = {}
def probe(image="efficientnet-lite0-multiscale", text="package:all-MiniLM-L6-v2", size=224):
    key = (image, text, size)
    if key not in _models:
        cfg = DualEncoderConfig(name="probe", image=ImageSideConfig(backbone=image, image_size=size),
                                text=TextSideConfig(backbone="hf-text", source=text, pooling="mean"),
                                head=HeadConfig(kind="projection"))
        m = DualEncoder.from_config(cfg); m.eval(); _models[key] = m
    return _models[key]

def img_feats(split, image="efficientnet-lite0-multiscale", size=224):
    m = probe(image, size=size)
    s = SPLITS[split]
    return [FE.cached_image_features(m, s.images, flip=f) for f in (False, True)]

def txt_feats(split, text="package:all-MiniLM-L6-v2"):
    m = probe(text=text)
    s = SPLITS[split]
    import hashlib
    side = {"backbone": "hf-text", "source": text, "pooling": "mean", "max_length": 64}
    payload = json.dumps({"side": side, "kind": "text", "extra": "", "precision": "bf16"}, sort_keys=True)
    d = hashlib.sha256(payload.encode())
    for t in s.captions:
        d.update(t.encode()); d.update(b"\0")
    key = d.hexdigest()[:24]
    path = FE.settings.home() / "features" / f"{key}.safetensors"
    if path.is_file():
        return FE.load_file(str(path))["features"]
    @torch.inference_mode()
    def compute():
        out = []
        for i in range(0, len(s.captions), 128):
            with torch.autocast("cpu", dtype=torch.bfloat16):
                out.append(m.text_features(s.captions[i:i+128]).float())
        return torch.cat(out)
    return FE._cached(key, compute)

def texts_feats(texts, text="package:all-MiniLM-L6-v2"):
    texts = list(texts)
    m = probe(text=text)
    with torch.inference_mode():
        return torch.cat([m.text_features(texts[i:i+128]).float() for i in range(0, len(texts), 128)])

def report(img, txt, split):
    s = SPLITS[split]
    return recall_report(img, txt, s.captions, s.caption_to_image)

def r1(rep):
    return rep["standard"]["text_to_image"]["R@1"]
def orig(rep):
    o = rep["original_protocol"]["text_to_image"]; return o["R@1"] if o else float("nan")

class Heads(nn.Module):
    def __init__(self, din_i, din_t, seed, dim=512, drop=0.1, idrop=0.2):
        super().__init__()
        torch.manual_seed(seed)
        self.i = ProjectionHead(din_i, dim, drop, idrop)
        self.t = ProjectionHead(din_t, dim, drop, idrop)
    def emb_i(self, x): return F.normalize(self.i(x.float()), dim=-1)
    def emb_t(self, x): return F.normalize(self.t(x.float()), dim=-1)

@torch.inference_mode()
def embed(heads, views, txt):
    heads.eval()
    ie = sum(heads.emb_i(v) for v in views)
    return F.normalize(ie, dim=-1).numpy(), heads.emb_t(txt).numpy()

def train_heads(Xi, Xt, seed=0, epochs=12, early=3, bs=512, lr=1e-3, wd=0.1, extra=None, extra_w=0.0,
                hard=0.0, verbose=False):
    """Xi: dict split -> [view tensors]; Xt: dict split -> text tensor. extra: (img_inputs, txt_inputs) pairs."""
    torch.manual_seed(seed); np.random.seed(seed)
    heads = Heads(Xi["kept"][0].shape[1], Xt["kept"].shape[1], seed)
    loss_fn = build_loss("infonce", None)
    loss_x = build_loss("infonce", None)
    params = [{"params": list(heads.parameters()), "lr": lr, "weight_decay": wd},
              {"params": list(loss_fn.parameters()) + list(loss_x.parameters()), "lr": lr, "weight_decay": 0.0}]
    opt = torch.optim.AdamW(params)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="max", factor=0.5, patience=1)
    rng = np.random.default_rng(seed + 1)
    c2i = np.asarray(KEPT.caption_to_image)
    best, best_state, since = -1.0, None, 0
    views = Xi["kept"]
    for ep in range(1, epochs + 1):
        heads.train()
        for batch in epoch_batches(KEPT.caption_to_image, bs, rng):
            ids = c2i[batch]
            v = rng.integers(0, len(views), size=len(batch))
            fi = torch.stack([views[a][b] for a, b in zip(v, ids)])
            ie, te = heads.emb_i(fi), heads.emb_t(Xt["kept"][torch.as_tensor(batch)])
            loss = loss_fn(ie, te)
            if extra is not None and extra_w > 0:
                xi, xt = extra
                sel = torch.as_tensor(rng.choice(len(xi), size=min(256, len(xi)), replace=False))
                loss = loss + extra_w * loss_x(heads.emb_i(xi[sel]), heads.emb_t(xt[sel]))
            opt.zero_grad(); loss.backward(); opt.step()
        rep = report(*embed(heads, Xi["held"], Xt["held"]), "held")
        sel_r1 = r1(rep); sched.step(sel_r1)
        if verbose: print(f"  ep {ep} held {sel_r1:.2f}", flush=True)
        if sel_r1 > best:
            best, best_state, since = sel_r1, copy.deepcopy(heads.state_dict()), 0
        else:
            since += 1
            if since >= early: break
    heads.load_state_dict(best_state); heads.eval()
    return heads, best

def ens_embed(heads_list, views, txt):
    ims, tts = zip(*(embed(h, views, txt) for h in heads_list))
    k = len(heads_list)
    return np.concatenate(ims, 1) / math.sqrt(k), np.concatenate(tts, 1) / math.sqrt(k)

def summary(name, heads_list, Xi, Xt, extra_fn=None):
    out = {"name": name}
    for split in ("held", "dev", "tux"):
        ie, te = ens_embed(heads_list, Xi[split], Xt[split])
        if extra_fn is not None:
            ie, te = extra_fn(split, ie, te)
        rep = report(ie, te, split)
        out[split] = round(r1(rep), 2)
        if split == "dev": out["dev_orig"] = round(orig(rep), 2)
        if split == "tux": out["tux_R@5"] = round(rep["standard"]["text_to_image"]["R@5"], 2)
    print(json.dumps(out), flush=True)
    return out
