import sys
sys.argv = [sys.argv[0], "none"]
exec(open("/tmp/q/exp2.py").read())
import functools
_tf = texts_feats
texts_feats = functools.lru_cache(None)(lambda texts, src: _tf(list(texts), src))
_conse = conse_fn
def conse_fn(src, beta, k=10, temp=1.0, prompt="a photo of a {}."):
    global texts_feats
    return _conse(src, beta, k, temp, prompt)
Xm, Xp = T(MINI), T(MPNET)
Xt = {s: torch.cat([Xm[s], Xp[s]], 1) for s in Xm}
hs = ensemble(Xt)
torch.save([h.state_dict() for h in hs], "/tmp/q/heads_concat.pt")
summary("lite0+[MiniLM;mpnet] ens3", hs, Xi, Xt)
summary("seed0", hs[:1], Xi, Xt)
for src, beta, k in ((MINI, 0.1, 20), (MINI, 0.2, 20), (MINI, 0.35, 20), (MPNET, 0.1, 20), (MPNET, 0.2, 20)):
    summary(f"+conse {src[8:]} beta={beta} k={k}", hs, Xi, Xt, conse_fn(src, beta, k))
