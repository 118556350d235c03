import sys
sys.argv = [sys.argv[0], "none"] + sys.argv[1:]
exec(open("/tmp/q/exp2.py").read())
what = sys.argv[2]
if what == "concat":
    Xm, Xp = T(MINI), T(MPNET)
    Xt = {s: torch.cat([Xm[s], Xp[s]], 1) for s in Xm}
    hs = ensemble(Xt)
    summary("lite0+[MiniLM;mpnet] ens3", hs, Xi, Xt)
elif what == "ens5":
    Xt = T(MPNET)
    states = torch.load("/tmp/q/heads_mpnet.pt")
    hs = []
    for st in states:
        h = Heads(1904, 768, 0); h.load_state_dict(st); h.eval(); hs.append(h)
    hs += ensemble(Xt, seeds=(3, 4))
    torch.save([h.state_dict() for h in hs], "/tmp/q/heads_mpnet5.pt")
    summary("lite0+mpnet ens5", hs, Xi, Xt)
    for beta, k in ((0.2, 20), (0.35, 20), (0.5, 20)):
        summary(f"ens5 +conse beta={beta} k={k}", hs, Xi, Xt, conse_fn(MPNET, beta, k))
elif what == "bs1024":
    Xt = T(MPNET)
    hs = ensemble(Xt, seeds=(0,), bs=1024)
    summary("mpnet bs1024 seed0", hs, Xi, Xt)
    hs = ensemble(Xt, seeds=(0,), wd=0.3)
    summary("mpnet wd0.3 seed0", hs, Xi, Xt)
