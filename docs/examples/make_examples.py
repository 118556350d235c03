"""Write the example markers files in this folder from a real search of the shared street video.

    .venv/bin/python docs/examples/make_examples.py [path/to/bikes.mp4]

Searches ``bikes.mp4`` for "a cyclist wearing a helmet" (the default model, 2 frames a second, top 3),
then writes ``markers.edl``, ``markers.otio``, ``markers.fcpxml`` and ``markers.xml`` (fcp7) with half a
second of handle before each hit and a quarter after, through ``frameseek.api.markers_text``. The video's
folder is written as ``/path/to`` so no machine's path is kept: relink (or replace it) after importing.
"""

from __future__ import annotations

import sys
from pathlib import Path
from urllib.parse import quote

from frameseek import api

HERE = Path(__file__).resolve().parent
QUERY = "a cyclist wearing a helmet"
PLACEHOLDER = "/path/to"
DEFAULT_VIDEO = HERE.parents[2] / "shared" / "data" / "videos" / "bikes.mp4"


def main() -> None:
    video = Path(sys.argv[1] if len(sys.argv) > 1 else DEFAULT_VIDEO).resolve()
    response = api.Searcher(sampling=api.Sampling(fps=2.0)).search(str(video), QUERY, top_k=3)
    hits = api.edit_moments(response.results)
    folder = str(video.parent)
    for kind in api.MARKER_FORMATS:
        text = api.markers_text(hits, kind, query=QUERY, pad_before=0.5, pad_after=0.25)
        text = text.replace(quote(folder), PLACEHOLDER).replace(folder, PLACEHOLDER)
        api.write_text_atomic(HERE / f"markers{api.MARKER_SUFFIXES[kind]}", text)
        print(HERE / f"markers{api.MARKER_SUFFIXES[kind]}")


if __name__ == "__main__":
    main()
