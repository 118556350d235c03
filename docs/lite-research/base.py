import sys
sys.path.insert(0, "/tmp/q")
from exp import *
from frameseek.models.factory import create_model
lite = create_model("lite")
Xi = {s: img_feats(s) for s in ("held", "dev", "tux")}
Xt = {s: txt_feats(s) for s in ("held", "dev", "tux")}
@torch.inference_mode()
def emb(views, txt):
    ie = F.normalize(sum(lite.project_images(v) for v in views), dim=-1).numpy()
    return ie, lite.project_texts(txt).numpy()
res = {}
for s in ("held", "dev", "tux"):
    rep = report(*emb(Xi[s], Xt[s]), s)
    res[s] = (round(r1(rep), 2), round(orig(rep), 2), round(rep["standard"]["text_to_image"]["R@5"], 2))
print("committed lite", json.dumps(res), flush=True)
# multi-crop on tux: squash(+flip) plus 3 square crops
crops = torch.load("/tmp/q/tux_crops.pt")
ie_sq, te = emb(Xi["tux"], Xt["tux"])
with torch.inference_mode():
    ce = [lite.project_images(c).numpy() for c in crops]
for name, ie in (("squash+flip", ie_sq),
                 ("center crop only", ce[1]),
                 ("squash+flip+3crops mean", ie_sq * 2 + ce[0] + ce[1] + ce[2]),
                 ("squash+flip+center", ie_sq * 2 + ce[1])):
    print("tux", name, round(r1(report(ie, te, "tux")), 2), flush=True)
# prompt ensembles on tux and dev texts
for s in ("tux", "held"):
    caps = SPLITS[s].captions
    ie, te0 = emb(Xi[s], Xt[s])
    variants = {}
    for p in ("a photo of {}", "a video of {}", "a picture of {}"):
        texts = [p.format(c[0].lower() + c[1:]) for c in caps]
        with torch.inference_mode():
            variants[p] = lite.project_texts(texts_feats(texts)).numpy()
    for p, tv in variants.items():
        print(s, "prompt", p, round(r1(report(ie, tv, s)), 2), "ens with plain", round(r1(report(ie, te0 + tv, s)), 2), flush=True)
    allv = te0 + sum(variants.values())
    print(s, "plain", round(r1(report(ie, te0, s)), 2), "ens all 4", round(r1(report(ie, allv, s)), 2), flush=True)
