import sys
sys.path.insert(0, "/tmp/q")
from exp import *
from PIL import Image
from frameseek.lab.features import load_image
m = probe()
xs = img_feats("tux")
print("tux squash", xs[0].shape, flush=True)
txt_feats("tux"); print("tux mini text", flush=True)
def crops(im):
    w, h = im.size
    if max(w, h) / min(w, h) < 1.2:
        return [im, im, im]
    s = min(w, h)
    if w > h:
        boxes = [(0, 0, s, s), ((w - s) // 2, 0, (w - s) // 2 + s, s), (w - s, 0, w, s)]
    else:
        boxes = [(0, 0, s, s), (0, (h - s) // 2, s, (h - s) // 2 + s), (0, h - s, s, h)]
    return [im.crop(b) for b in boxes]
out = [[], [], []]
with torch.inference_mode():
    for i in range(0, len(TUXS.images), 32):
        ims = [load_image(p) for p in TUXS.images[i:i+32]]
        cs = [crops(im) for im in ims]
        for j in range(3):
            px = m.preprocess([c[j] for c in cs])
            with torch.autocast("cpu", dtype=torch.bfloat16):
                out[j].append(m.image_features(px.contiguous(memory_format=torch.channels_last)).float())
torch.save([torch.cat(o) for o in out], "/tmp/q/tux_crops.pt")
print("done crops", flush=True)
