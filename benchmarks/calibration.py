"""Benchmark: how well lite's shipped confidence is calibrated, on data it was never fitted on.

* **photos**: the Flickr8k DEV EVAL half (the seeded half ``frameseek calibrate`` never fits on): each
  caption with its own photo (present), with a random other photo and with the best of 20 others (absent),
  and held-out absent-object queries (``ABSENT_HELD_OUT``, never fitted on) against random photos and the
  best of 20 (absent);
* **text**: the speech/screen logistic on the same EVAL half's captions as spans (a caption against its
  photo's other captions, present; against another photo's, absent; keyword queries; held-out absent ones);
* **video**: the 21 MSR-VTT clips indexed at 1 frame/s; a clip's best frame's confidence for 5 of its own
  captions (present), for 5 captions of each of the third of clips least like it and the held-out absent
  queries (absent).

Reported: expected calibration error (15 equal-width bins; target ≤ 0.05) and AUROC (present vs absent).

    python benchmarks/calibration.py            # markdown
    python benchmarks/calibration.py --json
    python benchmarks/calibration.py --quick    # 40 photos, no video: a smoke run
"""

from __future__ import annotations

import time
from typing import Any

import common
from frameseek.lab import calibration as cal
from frameseek.models.handle import ModelHandle
from frameseek.search import Searcher

NAME = "calibration"
TARGET_ECE = 0.05


def measure(quick: bool) -> dict[str, Any]:
    started = time.perf_counter()
    handle = ModelHandle("lite")
    calibration = handle.calibration
    if not calibration.calibrated:
        raise SystemExit("lite has no shipped calibration (src/frameseek/weights/lite/calibration.json)")
    model = handle.model
    flickr = cal.load_flickr(common.SHARED_DATA / "flickr8k")
    held = flickr.eval.subset(list(range(12 if common.SMOKE else 40))) if quick else flickr.eval
    rows: dict[str, Any] = {}
    common.log(f"photos: {len(held.images)} held-out DEV photos")
    rows.update(cal.measure_images(calibration, model, held))
    rows.update(cal.measure_text(calibration, model, held.groups()))
    if not quick:
        clips = cal.load_msrvtt_groups(common.SHARED_DATA / "msrvtt")
        common.log(f"video: indexing {len(clips)} MSR-VTT clips")
        with common.scratch_home("calibration"):
            searcher = Searcher(handle)
            frames = []
            for clip in clips:
                (outcome,) = searcher.index(clip.path)
                assert outcome.index is not None
                frames.append(outcome.index.embeddings)
        rows.update(cal.measure_videos(calibration, model, clips, frames))
    for row in rows.values():
        row["meets_target"] = row["ece"] <= TARGET_ECE
    return {
        "rows": rows,
        "calibration": {
            "features": list(calibration.visual.features),
            "bank": len(calibration.bank),
            "fitted": calibration.info,
        },
        "seconds": round(time.perf_counter() - started, 1),
    }


def render(result: dict[str, Any]) -> str:
    table = common.markdown_table(
        ["held-out set", "present", "absent", "ECE (15 bins)", "AUROC", f"ECE ≤ {TARGET_ECE}"],
        [
            [name, r["present"], r["absent"], r["ece"], r["auroc"], r["meets_target"]]
            for name, r in result["rows"].items()
        ],
        digits=3,
    )
    return (
        f"{table}\n\nvisual features: {', '.join(result['calibration']['features'])}; "
        f"bank {result['calibration']['bank']} photos; {result['seconds']} s\n"
        f"{common.provenance(result)}"
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    return common.run_measurement(NAME, __doc__ or "", measure, render, argv)


if __name__ == "__main__":
    main()
