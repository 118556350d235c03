"""Benchmark 7: a repeat text query from the command line — a new process on an already indexed video.

In a scratch ``FRAMESEEK_HOME``: one ``frameseek search VIDEO QUERY`` builds the index, then every round
runs, each in a fresh process and in alternating order:

* ``cli``: ``frameseek search VIDEO QUERY --json``, timed from outside (the wall time a user waits);
* ``phases``: the same work as a script that times its phases — interpreter start-up and exit, importing
  the CLI (typer, rich, option checks), importing the search stack (no torch: ``frameseek.models.handle``),
  the model handle (config + cached fingerprint), and the search itself (stored index found, query
  embedded by the exported query engine, ranked) — and reports what was loaded (torch, the model);
* ``eager``: the same script with torch imported and the model loaded whole, fingerprint hashed from every
  tensor, the Searcher warmed up (text warm-up + image engine) and the imports under the cycle collector,
  as every query paid before this wave: the side-by-side reference on a shared, noisy machine.

The first ``frameseek search`` (the indexing run) exports the query engine that later processes use.
frameseek's modules are byte-compiled first, as ``pip install`` does for an installed package (an
editable install under ``PYTHONDONTWRITEBYTECODE=1`` would otherwise recompile them in every process).

Medians over the rounds; the phases' sum plus start-up equals the script's wall time.

    python benchmarks/repeat_query.py [--json] [--quick] [--runs N] [--video PATH] [--query TEXT]
"""

from __future__ import annotations

import compileall
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import common
import frameseek

NAME = "repeat_query"
DEFAULT_QUERY = "a cyclist wearing a helmet"

PHASES_SCRIPT = r"""
import contextlib, json, sys, time
t0 = time.perf_counter()
import frameseek.cli  # typer, rich, option checks: what `frameseek --help` costs
from frameseek.system.startup import heavy_imports
t1 = time.perf_counter()
video, query, model_name, eager = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "1"
with contextlib.nullcontext() if eager else heavy_imports():  # as `frameseek search` imports them
    if eager:  # torch and the model code first, as every query paid before the query engine
        import torch  # noqa: F401
        from frameseek.lab.features import load_image  # noqa: F401
        from frameseek.models.dual_encoder import DualEncoder
        from frameseek.models.factory import create_model
        from frameseek.models.registry import packaged_weights
    from frameseek.search import Searcher
t2 = time.perf_counter()
if eager:
    folder = packaged_weights(model_name)
    model = DualEncoder.from_pretrained(folder, lazy=False) if folder else create_model(model_name)
    model.invalidate_fingerprint()  # hashed from every tensor, as before the fingerprint cache
    searcher = Searcher(model, warm_up=True)
else:
    searcher = Searcher(model_name)  # a handle: config and cached fingerprint, no model yet
t3 = time.perf_counter()
response = searcher.search(video, query)
t4 = time.perf_counter()
loaded = searcher.handle.loaded
print(json.dumps({
    "import_cli_s": t1 - t0,
    "import_torch_search_s": t2 - t1,
    "model_load_s": t3 - t2,
    "search_s": t4 - t3,
    "inside_s": t4 - t0,
    "index_reused": response.metrics["index_reused"],
    "top": [round(h.time, 3) for h in response.results],
    "scores": [round(h.score, 5) for h in response.results],
    "model_loaded": loaded,
    "torch_imported": "torch" in sys.modules,
    "image_backbone_built": loaded and searcher.model.image_backbone_built,
    "text_backbone_built": loaded and searcher.model.text_backbone_built,
    "transformers_model_code_imported": "transformers.modeling_utils" in sys.modules,
}))
"""


def cli_command() -> list[str]:
    """The installed ``frameseek`` script beside this Python, else ``python -m frameseek``."""
    script = Path(sys.executable).with_name("frameseek")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "frameseek"]


def timed(cmd: list[str]) -> tuple[float, str]:
    """Run ``cmd`` in a fresh process; (wall seconds, stdout). A failure stops the benchmark."""
    started = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, env=dict(os.environ))
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:3])} … failed ({done.returncode}): {done.stderr.strip()[-800:]}")
    return wall, done.stdout


def last_json(stdout: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
    return data


def measure(video: Path, query: str, model: str, runs: int) -> dict[str, Any]:
    search = [*cli_command(), "search", str(video), query, "--model", model, "--json"]
    compileall.compile_dir(str(Path(frameseek.__file__).parent), quiet=1)  # as an installed package is
    with common.scratch_home(NAME) as home:
        common.log(f"indexing {video.name} once (FRAMESEEK_HOME={home})")
        index_wall, out = timed(search)
        built = last_json(out)
        if built["metrics"]["index_reused"]:
            raise SystemExit("the scratch home already had an index")

        def cli() -> float:
            wall, stdout = timed(search)
            if not last_json(stdout)["metrics"]["index_reused"]:
                raise SystemExit("a repeat query rebuilt the index")
            return wall

        phase_rows: dict[str, list[dict[str, Any]]] = {"lazy": [], "eager": []}

        def phases(eager: bool) -> float:
            cmd = [sys.executable, "-c", PHASES_SCRIPT, str(video), query, model, "1" if eager else "0"]
            wall, stdout = timed(cmd)
            row = last_json(stdout)
            row["wall_s"] = wall
            row["startup_exit_s"] = wall - row["inside_s"]
            phase_rows["eager" if eager else "lazy"].append(row)
            return wall

        common.log(f"{runs} interleaved rounds: CLI, phases (lazy), phases (eager reference)")
        walls = common.interleaved(
            {"cli": cli, "phases": lambda: phases(False), "eager": lambda: phases(True)}, runs
        )

    def phase_medians(rows: list[dict[str, Any]]) -> dict[str, Any]:
        keys = (
            "startup_exit_s",
            "import_cli_s",
            "import_torch_search_s",
            "model_load_s",
            "search_s",
            "wall_s",
        )
        summary: dict[str, Any] = {k: common.median([r[k] for r in rows]) for k in keys}
        for flag in (
            "model_loaded",
            "torch_imported",
            "image_backbone_built",
            "text_backbone_built",
            "transformers_model_code_imported",
        ):
            summary[flag] = any(r[flag] for r in rows)
        summary["same_results"] = all(r["top"] == rows[0]["top"] for r in rows)
        summary["scores"] = rows[0]["scores"]
        return summary

    lazy, eager = phase_medians(phase_rows["lazy"]), phase_medians(phase_rows["eager"])
    return {
        "video": video.name,
        "query": query,
        "model": model,
        "runs": runs,
        "index_run_s": index_wall,
        "cli_s": walls["cli"],
        "cli_median_s": common.median(walls["cli"]),
        "cli_min_s": min(walls["cli"]),
        "cli_max_s": max(walls["cli"]),
        "phases": lazy,
        "eager": eager,
        "eager_over_lazy": eager["wall_s"] / lazy["wall_s"],
        "same_results_as_eager": phase_rows["lazy"][0]["top"] == phase_rows["eager"][0]["top"],
        "max_score_difference": max(
            (abs(a - b) for a, b in zip(lazy["scores"], eager["scores"], strict=False)), default=None
        ),
    }


HEADERS = [
    "model",
    "video",
    "repeat query, CLI wall (median s)",
    "min–max (s)",
    "start-up + exit",
    "import CLI",
    "import search stack",
    "model handle / load",
    "search",
    "eager load (s)",
    "eager / lazy",
]


def row(r: dict[str, Any]) -> list[Any]:
    p = r["phases"]
    return [
        r["model"],
        r["video"],
        r["cli_median_s"],
        f"{r['cli_min_s']:.2f}–{r['cli_max_s']:.2f}",
        p["startup_exit_s"],
        p["import_cli_s"],
        p["import_torch_search_s"],
        p["model_load_s"],
        p["search_s"],
        r["eager"]["wall_s"],
        r["eager_over_lazy"],
    ]


def render(result: dict[str, Any]) -> str:
    r = result["result"]
    p = r["phases"]
    built = [
        name
        for name, flag in (
            ("torch", p.get("torch_imported", True)),
            ("the model", p.get("model_loaded", True)),
            ("image backbone", p["image_backbone_built"]),
            ("transformers text backbone", p["text_backbone_built"]),
            ("transformers model code imported", p["transformers_model_code_imported"]),
        )
        if flag
    ]
    lines = [
        f"`{result['command']}` — {r['runs']} fresh processes per case after one indexing run "
        f"({r['index_run_s']:.2f} s), medians; load average {result['machine']['load_average']}.",
        "",
        common.markdown_table(HEADERS, [row(r)]),
        "",
        "Phases (lazy, s): start-up + exit of the interpreter, importing the CLI, importing the search "
        "stack, the model handle (config, cached fingerprint), the search (index found, query embedded by "
        "the exported query engine, ranked). "
        f"Loaded for the query: {', '.join(built) or 'neither torch nor the model'}; results identical to "
        f"the eager load: {common.fmt(r['same_results_as_eager'])} (largest score difference "
        f"{common.fmt(r.get('max_score_difference'), 6)}).",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = common.base_parser(__doc__ or "")
    parser.add_argument("--runs", type=int, default=None, help="rounds (default 9, quick 5)")
    parser.add_argument("--video", type=Path, default=common.SHARED_DATA / "videos" / "bikes.mp4")
    parser.add_argument("--query", default=DEFAULT_QUERY)
    parser.add_argument("--model", default="lite")
    args = parser.parse_args(argv)
    if args.smoke:  # a 6-second clip cut from the same footage instead of the whole video
        args.video = common.make_clip("360p", common.SMOKE_SECONDS)
    if not args.video.is_file():
        raise SystemExit(f"no video at {args.video} (set --video or FRAMESEEK_SHARED_DATA)")
    runs = args.runs or (5 if args.quick else 9)
    result = {
        "benchmark": NAME,
        "command": common.command_line(),
        "result": measure(args.video, args.query, args.model, runs),
        "machine": common.machine_info(),
    }
    common.emit(result, args.json, render)
    return result


if __name__ == "__main__":
    main()
