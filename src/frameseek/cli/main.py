"""The ``frameseek`` command line: a thin typer layer over the library.

One file because typer declares each command's options beside its function: what is here is option
plumbing (names, help, defaults) and printing; the work is in the library (``search``, ``transcripts``,
``training``, ``data.msrvtt.discover_msrvtt``, ``video.export``). ``library_cli`` and ``service.command``
hold the command groups that have their own state.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from frameseek.cli.library import library_app
from frameseek.errors import FrameseekError, InputError
from frameseek.models.registry import DEFAULT_MODEL
from frameseek.query import check_text
from frameseek.service.command import serve
from frameseek.system.devices import check_device_spec
from frameseek.video.sampling import Sampling

app = typer.Typer(
    name="frameseek",
    help="Find the moments in a video that match a sentence.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
out = Console()
err = Console(stderr=True)

ModelOpt = Annotated[
    str,
    typer.Option(
        "--model",
        "-m",
        help="Preset name (see `frameseek models`), checkpoint folder, or auto: a CLIP preset whose weights "
        "are in the local Hugging Face cache, else lite.",
    ),
]
DeviceOpt = Annotated[
    str | None,
    typer.Option(
        "--device",
        help="Where the model runs: auto (default: the first CUDA GPU, else Apple MPS, else the CPU; "
        "or $FRAMESEEK_DEVICE), cpu, cuda, cuda:N or mps.",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout instead of a table.")]
FpsOpt = Annotated[float, typer.Option("--fps", help="Frames sampled per second of video.")]
SceneOpt = Annotated[
    bool, typer.Option("--scene", help="Sample at shot changes (+ one frame every --scene-gap s).")
]
ExactOpt = Annotated[
    bool,
    typer.Option(
        "--exact-frames",
        help="Keep the very first frame at or after each grid time (default: when sampling sparsely, "
        "non-reference B-frames are not decoded, so a sample may be a few frames later; times are the "
        "frames' exact PTS either way).",
    ),
]


SpeechOpt = Annotated[
    bool,
    typer.Option(
        "--speech",
        help="Also search what is said: offline speech recognition (Whisper) when there are no subtitles.",
    ),
]
OcrOpt = Annotated[
    bool, typer.Option("--ocr", help="Also search text on screen (OCR where the picture changes).")
]
SubLangOpt = Annotated[str, typer.Option("--sub-lang", help="Language of subtitles and captions to use.")]
SubtitlesOpt = Annotated[
    bool,
    typer.Option("--subtitles/--no-subtitles", help="Use subtitles and captions that come with a video."),
]
AsrModelOpt = Annotated[
    str,
    typer.Option(
        "--asr-model",
        help="Speech model: base (packaged, offline), a faster-whisper hub name (e.g. small) or a folder.",
    ),
]


def _tracks(speech: bool, ocr: bool, subtitles: bool, sub_lang: str, asr_model: str) -> Any:
    """The text-track options as one validated value."""
    from frameseek.indexing.text_tracks import TrackOptions

    return TrackOptions(subtitles=subtitles, speech=speech, ocr=ocr, sub_lang=sub_lang, asr_model=asr_model)


def _sampling(
    fps: float,
    scene: bool,
    scene_gap: float,
    start: float | None,
    end: float | None,
    max_frames: int | None,
    exact_frames: bool = False,
) -> Sampling:
    """The sampling options as one validated value (an impossible one fails before any model loads)."""
    return Sampling(
        fps=fps,
        scene=scene,
        scene_max_gap=scene_gap,
        start=start,
        end=end,
        max_frames=max_frames,
        fast_decode=not exact_frames,
    )


def _precheck_sources(sources: list[str]) -> None:
    """Fail fast, before the model is loaded, on what needs no model to be refused.

    A link must be http(s) (it is only downloaded later, by the Searcher, which records the download's
    metrics); a path must exist; a single video file must open and hold a decodable first frame. The
    Searcher checks all of this again, so skipping a check here never lets bad input through.
    """
    from frameseek.video.decode import probe
    from frameseek.video.sources import _scheme, check_url, resolve

    for source in sources:
        if _scheme(source.strip()) is not None:
            check_url(source)
            continue
        found = resolve(source)
        if len(found) == 1 and Path(source.strip()).expanduser().is_file():
            probe(found[0].path)


class _ProgressPrinter:
    """Progress on stderr (rich), silent when stderr is not a terminal or --json is used."""

    def __init__(self, enabled: bool):
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = (
            Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TimeRemainingColumn(),
                console=err,
                transient=True,
            )
            if enabled and err.is_terminal
            else None
        )
        self.tasks: dict[str, Any] = {}

    def __enter__(self) -> _ProgressPrinter:
        if self.progress:
            self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress:
            self.progress.__exit__(None, None, None)

    def __call__(self, stage: str, done: float, total: float | None) -> None:
        if not self.progress:
            return
        if stage not in self.tasks:
            self.tasks[stage] = self.progress.add_task(stage, total=total)
        self.progress.update(self.tasks[stage], completed=done, total=total)


@app.command()
def search(
    args: Annotated[
        list[str],
        typer.Argument(
            help="SOURCE QUERY (a file, folder or link, then the sentence); with --library just QUERY."
        ),
    ],
    image: Annotated[
        Path | None, typer.Option("--image", help="An image as the query (alone or with the text).")
    ] = None,
    text_weight: Annotated[
        float, typer.Option(help="Weight of the text when both text and image are given.")
    ] = 0.5,
    top_k: Annotated[int, typer.Option("--top-k", "-k", help="How many moments to return.")] = 5,
    fps: FpsOpt = 1.0,
    scene: SceneOpt = False,
    scene_gap: Annotated[float, typer.Option(help="Scene mode: at least one frame every N seconds.")] = 10.0,
    start: Annotated[float | None, typer.Option(help="Only search from this time (seconds).")] = None,
    end: Annotated[float | None, typer.Option(help="Only search up to this time (seconds).")] = None,
    max_frames: Annotated[int | None, typer.Option(help="Sample at most this many frames.")] = None,
    exact_frames: ExactOpt = False,
    min_gap: Annotated[float, typer.Option(help="No two results closer than this (seconds).")] = 2.0,
    library: Annotated[
        bool, typer.Option("--library", help="Search the library instead of a source.")
    ] = False,
    library_name: Annotated[str, typer.Option("--library-name", help="Which library.")] = "default",
    export: Annotated[
        Path | None, typer.Option(help="Write each hit's frame (JPEG) and segment (MP4 with sound) here.")
    ] = None,
    pad_before: Annotated[float, typer.Option(help="--export: seconds added before each segment.")] = 0.0,
    pad_after: Annotated[float, typer.Option(help="--export: seconds added after each segment.")] = 0.0,
    supercut: Annotated[
        bool, typer.Option("--supercut", help="--export: also every hit, in order, in one supercut.mp4.")
    ] = False,
    markers: Annotated[
        Literal["edl", "otio"] | None,
        typer.Option(help="--export: also markers.edl (CMX 3600) or markers.otio (OpenTimelineIO)."),
    ] = None,
    speech: SpeechOpt = False,
    ocr: OcrOpt = False,
    subtitles: SubtitlesOpt = True,
    sub_lang: SubLangOpt = "en",
    asr_model: AsrModelOpt = "base",
    refine: Annotated[
        bool,
        typer.Option(
            "--refine", help="Look at every frame around each hit for the best one and sharper segment edges."
        ),
    ] = False,
    model: ModelOpt = DEFAULT_MODEL,
    device: DeviceOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Search a video (file, link or folder) — or the library — for a sentence and/or an image: what is
    seen, and what is said (subtitles; --speech) or written on screen (--ocr)."""
    if library:
        if len(args) > 1:
            raise InputError("with --library give only the QUERY (no SOURCE)")
        source, query = None, (args[0] if args else None)
    else:
        if not args or len(args) > 2:
            raise InputError('give SOURCE and QUERY, e.g. frameseek search video.mp4 "a dog on a beach"')
        source, query = args[0], (args[1] if len(args) > 1 else None)
    if query is None and image is None:
        raise InputError("give a text QUERY, --image, or both")
    check_text(query)  # an empty sentence fails before the model is loaded (seconds of work)
    check_device_spec(device)
    sampling = _sampling(fps, scene, scene_gap, start, end, max_frames, exact_frames)
    tracks = _tracks(speech, ocr, subtitles, sub_lang, asr_model)
    if source is not None:
        _precheck_sources([source])
    from frameseek.system.startup import heavy_imports

    with heavy_imports():  # after the cheap checks, without GC passes over what they create
        from frameseek.search import Searcher  # no torch: a repeat text query may not need it

    query_image = None
    if image is not None:
        with heavy_imports():
            from frameseek.lab.features import load_image
        query_image = load_image(image)
    with _ProgressPrinter(not json_out) as progress:
        searcher = Searcher(model, sampling=sampling, progress=progress, device=device)
        q = searcher.query(query, query_image, text_weight)
        if library:
            response = searcher.search_library(q, library=library_name, top_k=top_k, min_gap=min_gap)
        else:
            assert source is not None
            response = searcher.search(
                source,
                q,
                top_k=top_k,
                min_gap=min_gap,
                tracks=tracks,
                on_partial=None if json_out else _print_partial,
                refine=refine,
            )
    data = response.as_dict()
    if export is not None:
        from frameseek.editing.export import export_for_editing, export_hits

        data["exports"] = export_hits(response.results, export, pad_before=pad_before, pad_after=pad_after)
        edits = export_for_editing(
            response.results,
            export,
            supercut=supercut,
            markers=markers,
            pad_before=pad_before,
            pad_after=pad_after,
            query=response.query,
        )
        data.update(edits)
    if json_out:
        typer.echo(json.dumps(data))
    else:
        for notice in response.notices:
            _note(notice)
        _print_results(data)
    searcher.handle.prepare_query_engine()  # once the model was loaded: later text queries need not


def _print_partial(response: Any) -> None:
    """First results of a long video, from its key frames, while the full index is built."""
    for notice in response.notices:
        _note(notice)
    _print_results(response.as_dict(), title_prefix="first look: ")


def _print_results(data: dict[str, Any], title_prefix: str = "") -> None:
    table = Table(
        title=f"{title_prefix}{data['query'] or '(image query)'} — {data['source']} [{data['model']}]"
    )
    with_text = any(hit.get("text") for hit in data["results"])
    columns = [
        "#",
        "time",
        "score",
        "segment",
        "match",
        *(["text"] if with_text else []),
        "video",
        "thumbnail",
    ]
    for column in columns:
        table.add_column(column, overflow="fold" if column == "text" else "ellipsis")
    for rank, hit in enumerate(data["results"], 1):
        words = [escape(hit.get("text") or "")] if with_text else []
        table.add_row(
            str(rank),
            hit["timecode"],
            f"{hit['score']:.3f}",
            f"{hit['start']:.2f}–{hit['end']:.2f} s",
            hit.get("match", "visual"),
            *words,
            Path(hit["video"]).name,
            hit["thumbnail"] or "",
        )
    out.print(table)
    if data.get("partial"):
        return
    m = data["metrics"]
    out.print(_metrics_line(m))
    for item in data.get("exports", []):
        out.print(f"exported {item['frame']}  {item['clip']}")
    for key in ("supercut", "markers"):
        if data.get(key):
            out.print(f"exported {data[key]}")


def _metrics_line(m: dict[str, Any]) -> str:
    parts = [f"frames {m['frames_processed']}", "index reused" if m["index_reused"] else "index built"]
    if m.get("download_mb_per_s"):
        parts.append(f"download {m['download_mb_per_s']} MB/s")
    if m.get("extraction_frames_per_s"):
        parts.append(f"extract {m['extraction_frames_per_s']} frames/s")
    if m.get("encoding_frames_per_s"):
        parts.append(f"encode {m['encoding_frames_per_s']} frames/s")
    if m.get("indexing_video_seconds_per_s"):
        parts.append(f"{m['indexing_video_seconds_per_s']}× real time")
    if m.get("transcription_audio_seconds_per_s"):
        parts.append(f"speech {m['transcription_audio_seconds_per_s']}× real time")
    if m.get("ocr_frames_per_s"):
        parts.append(f"OCR {m['ocr_frames_per_s']} frames/s")
    parts += [
        f"search {m['search_latency_ms']} ms",
        f"CPU {m['cpu_percent']}%",
        f"peak RSS {m['peak_rss_mb']} MB",
    ]
    return " · ".join(parts)


@app.command()
def index(
    sources: Annotated[list[str], typer.Argument(help="Files, folders or links to add to the library.")],
    library_name: Annotated[str, typer.Option("--library-name", help="Which library.")] = "default",
    fps: FpsOpt = 1.0,
    scene: SceneOpt = False,
    scene_gap: Annotated[float, typer.Option(help="Scene mode: at least one frame every N seconds.")] = 10.0,
    exact_frames: ExactOpt = False,
    speech: SpeechOpt = False,
    ocr: OcrOpt = False,
    subtitles: SubtitlesOpt = True,
    sub_lang: SubLangOpt = "en",
    asr_model: AsrModelOpt = "base",
    model: ModelOpt = DEFAULT_MODEL,
    device: DeviceOpt = None,
    ray: Annotated[
        bool,
        typer.Option(
            "--ray", help="Index on a Ray cluster: a local one on every core (needs frameseek[ray])."
        ),
    ] = False,
    ray_address: Annotated[
        str | None,
        typer.Option(
            "--ray-address",
            help="Join this Ray cluster instead: host:port, ray://host:port, or auto (RAY_ADDRESS); implies --ray.",
        ),
    ] = None,
    home: Annotated[
        Path | None,
        typer.Option(
            "--home", help="FRAMESEEK_HOME for this run; with a multi-machine cluster, a shared folder."
        ),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Index videos into a library (reusing stored indexes) for `frameseek search --library`; with
    subtitles, --speech and --ocr their text tracks too. A video that fails is reported and the rest still
    land: the exit code is 0 when at least one video landed, 1 when every one failed."""
    if home is not None:
        os.environ["FRAMESEEK_HOME"] = str(home.expanduser().resolve())  # the workers write here too
    from frameseek.storage import library_entries

    sampling = _sampling(fps, scene, scene_gap, None, None, None, exact_frames)
    tracks = _tracks(speech, ocr, subtitles, sub_lang, asr_model)
    library_entries(library_name)  # a bad library name fails before any work
    check_device_spec(device)
    _precheck_sources(sources)
    from frameseek.search import Searcher, frame_limit_notices  # torch: imported after the cheap checks

    distributor = None
    if ray or ray_address is not None:
        from frameseek.indexing.ray_distributor import RayDistributor  # InputError when ray is missing

        distributor = RayDistributor(ray_address, model=model, device=device)
    with _ProgressPrinter(not json_out) as progress, distributor or contextlib.nullcontext():
        searcher = Searcher(
            model, sampling=sampling, progress=progress, distributor=distributor, device=device
        )
        outcomes, metrics = searcher.add(sources, library_name, tracks=tracks, keep_going=True)
    searcher.handle.prepare_query_engine()  # the model is loaded now: later text queries need not load it
    indexes = [o.index for o in outcomes if o.index is not None]
    data: dict[str, Any] = {
        "library": library_name,
        "model": searcher.model.name,
        "videos": [
            {"video": i.video_path, "title": i.title, "frames": len(i), "index": str(i.folder)}
            for i in indexes
        ],
        "failed": [{"video": str(o.job.source.path), "error": o.error} for o in outcomes if o.error],
        "metrics": metrics.as_dict(),
        "notices": frame_limit_notices(indexes),
    }
    if json_out:
        typer.echo(json.dumps(data))
    else:
        table = Table(title=f"library {library_name!r} [{data['model']}]")
        for column in ("video", "frames", "index"):
            table.add_column(column)
        for v in data["videos"]:
            table.add_row(v["title"], str(v["frames"]), v["index"])
        out.print(table)
        out.print(_metrics_line(data["metrics"]))
        for notice in data["notices"]:
            _note(notice)
        for failure in data["failed"]:
            err.print(f"[red]failed:[/] {escape(failure['error'])}", highlight=False, soft_wrap=True)
    if not indexes:
        raise FrameseekError(f"no video was indexed ({len(data['failed'])} failed)")


@app.command()
def transcript(
    source: Annotated[str, typer.Argument(help="A file, folder or link.")],
    format_: Annotated[str, typer.Option("--format", "-f", help="srt, vtt or json.")] = "srt",
    speech: SpeechOpt = False,
    ocr: OcrOpt = False,
    subtitles: SubtitlesOpt = True,
    sub_lang: SubLangOpt = "en",
    asr_model: AsrModelOpt = "base",
) -> None:
    """Print what was heard (subtitles, or --speech recognition) and read on screen (--ocr)."""
    if format_ not in ("srt", "vtt", "json"):
        raise InputError(f"--format must be srt, vtt or json, got {format_!r}")
    tracks = _tracks(speech, ocr, subtitles, sub_lang, asr_model)
    _precheck_sources([source])
    from frameseek.text.formats import to_json, to_srt, to_vtt
    from frameseek.transcripts import read_text

    with _ProgressPrinter(True) as progress:
        videos = read_text(source, tracks, progress=progress)
    for video in videos:
        for notice in video.tracks.notices:
            _note(notice)
    found = [t for v in videos for t in v.tracks.present()]
    if format_ == "json":
        typer.echo(to_json(found))
        return
    if not found:
        hint = "" if speech or ocr else "; add --speech to recognise speech or --ocr to read text on screen"
        raise InputError(f"no subtitles, speech or screen text found in {source}{hint}")
    spans = sorted((s for t in found for s in t.spans), key=lambda s: (s.start, s.end))
    typer.echo(to_srt(spans) if format_ == "srt" else to_vtt(spans), nl=False)


@app.command()
def models(
    json_out: JsonOpt = False,
    download: Annotated[
        str | None,
        typer.Option(
            "--download",
            metavar="NAME",
            help="Fetch a preset's hub weights into the local Hugging Face cache for later offline use.",
        ),
    ] = None,
) -> None:
    """List model presets: parameters per part, embedding size, weights available offline."""
    if download is not None:
        from frameseek.models.download import download_preset

        folders = download_preset(download)
        if json_out:
            typer.echo(json.dumps({"model": download, "folders": [str(f) for f in folders]}))
        else:
            for folder in folders:
                typer.echo(f"{download}: {folder}")
        return
    from frameseek.models.describe import describe_presets, format_presets

    rows = describe_presets()
    if json_out:
        typer.echo(json.dumps(rows))
    else:
        typer.echo(format_presets(rows))


@app.command()
def train(
    data: Annotated[Path, typer.Option(help="Dataset folder or file (e.g. ../shared/data/flickr8k).")],
    out_dir: Annotated[
        Path, typer.Option("--out", help="Run folder: best/ checkpoint, logs, curves, report.")
    ],
    dataset: Annotated[str, typer.Option(help="flickr8k, flickr30k, coco, csv or jsonl.")] = "flickr8k",
    model: ModelOpt = "lite",
    device: DeviceOpt = None,
    mode: Annotated[
        str, typer.Option(help="frozen (cached features) or finetune (backbones train too).")
    ] = "frozen",
    epochs: int = 25,
    batch_size: int = 128,
    lr_heads: float = 1e-3,
    lr_image_backbone: float = 1e-4,
    lr_text_backbone: float = 1e-5,
    weight_decay: float = 1e-3,
    loss: Annotated[
        str, typer.Option(help="infonce (CLIP) or soft (the original's soft targets).")
    ] = "infonce",
    temperature: Annotated[float | None, typer.Option(help="Initial temperature (learnable).")] = None,
    head_dropout: float | None = None,
    input_dropout: float | None = None,
    flip: Annotated[
        bool, typer.Option(help="Mirror augmentation in training and mirror averaging at eval.")
    ] = True,
    select_on: Annotated[str, typer.Option(help="holdout (images held out of TRAIN) or dev.")] = "holdout",
    holdout_images: int = 500,
    holdout_seed: Annotated[
        int | None, typer.Option(help="Seed of the holdout draw (default: --seed).")
    ] = None,
    image_tail_blocks: Annotated[
        int | None,
        typer.Option(
            help="Frozen mode: also train EfficientNet-Lite0's last N blocks + head conv (0: head conv)."
        ),
    ] = None,
    text_tail_layers: Annotated[
        int | None, typer.Option(help="Frozen mode: also train the text transformer's last N layers.")
    ] = None,
    lr_image_tail: float | None = None,
    lr_text_tail: float | None = None,
    tail_weight_decay: float = 0.0,
    threads: Annotated[int | None, typer.Option(help="torch threads for the run.")] = None,
    weights_dtype: Annotated[
        str | None, typer.Option(help="Checkpoint storage: float32, float16 or bfloat16.")
    ] = None,
    early_stop: int = 5,
    seed: int = 0,
    ensemble_seeds: Annotated[
        str | None,
        typer.Option(help="Train one run per seed (e.g. 0,1,2) and merge their heads into an ensemble."),
    ] = None,
    max_steps: Annotated[int | None, typer.Option(help="Cap steps per epoch (smoke runs).")] = None,
    class_channel: Annotated[
        float,
        typer.Option(
            help="Fuse the backbones' zero-shot ImageNet class channel with this weight into the best "
            "checkpoint (0: off).",
            min=0.0,
        ),
    ] = 0.0,
    class_top_k: Annotated[int, typer.Option(help="Classes per image in the class channel.", min=1)] = 20,
    class_text_start: Annotated[
        int, typer.Option(help="Class channel: first text feature of its text space.", min=0)
    ] = 0,
    class_text_dim: Annotated[
        int, typer.Option(help="Class channel: text features it reads from there (0: to the end).", min=0)
    ] = 0,
    project_dim: Annotated[
        int,
        typer.Option(
            help="Then project embeddings to this many dimensions, fitted on the training split's own "
            "embeddings (0: off).",
            min=0,
        ),
    ] = 0,
    resume: bool = False,
    nproc: Annotated[
        int | None,
        typer.Option(
            help="Train data-parallel in N local processes (each takes a slice of every batch; "
            "negatives come from the whole batch). Under torchrun leave it out.",
            min=1,
        ),
    ] = None,
    install_as: Annotated[
        Path | None, typer.Option(help="Also copy the best checkpoint to this folder.")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Train the projection heads (and optionally the backbones) with a contrastive loss.

    Several processes: `--nproc N`, or `torchrun --nproc-per-node N -m frameseek train ...`.
    """
    import shutil

    from frameseek.lab import distributed
    from frameseek.lab.training import TrainConfig, launch_training, run_training

    config = TrainConfig(
        data=str(data), out=str(out_dir), model=model, dataset=dataset, mode=mode, epochs=epochs,
        batch_size=batch_size, lr_heads=lr_heads, lr_image_backbone=lr_image_backbone,
        lr_text_backbone=lr_text_backbone, weight_decay=weight_decay, loss=loss, temperature=temperature,
        head_dropout=head_dropout, input_dropout=input_dropout, flip=flip, select_on=select_on,
        holdout_images=holdout_images, early_stop=early_stop, seed=seed, max_steps=max_steps, resume=resume,
        holdout_seed=holdout_seed, image_tail_blocks=image_tail_blocks, text_tail_layers=text_tail_layers,
        lr_image_tail=lr_image_tail, lr_text_tail=lr_text_tail, tail_weight_decay=tail_weight_decay,
        threads=threads, weights_dtype=weights_dtype, class_channel=class_channel, class_top_k=class_top_k,
        class_text_start=class_text_start, class_text_dim=class_text_dim, device=device or "auto",
        project_dim=project_dim,
    )  # fmt: skip

    def on_epoch(row: dict[str, Any]) -> None:
        if not json_out:
            err.print("  ".join(f"{k}={v}" for k, v in row.items()))

    seeds: list[int] | None = None
    if ensemble_seeds:
        try:
            seeds = [int(part) for part in ensemble_seeds.split(",") if part.strip()]
        except ValueError:
            raise InputError(
                f"--ensemble-seeds takes comma-separated integers, got {ensemble_seeds!r}"
            ) from None
    if nproc is not None and nproc > 1:
        report = launch_training(config, nproc, seeds, progress=not json_out)
    else:  # one process, or one of torchrun's
        report = run_training(config, seeds, on_epoch=on_epoch)
    if not distributed.is_main():
        return  # under torchrun, rank 0 alone installs the checkpoint and prints
    if install_as is not None:
        from frameseek.system.atomic import atomic_dir

        with atomic_dir(install_as) as tmp:
            shutil.copytree(out_dir / "best", tmp, dirs_exist_ok=True)
            for doc in install_as.glob("*.md") if install_as.is_dir() else []:
                shutil.copy2(doc, tmp / doc.name)  # keep the model card beside the new weights
    if json_out:
        typer.echo(json.dumps(report))
        return
    from frameseek.lab.evaluation import format_table

    out.print(f"best epoch {report['best_epoch']} of {report['epochs_run']}; checkpoint {out_dir / 'best'}")
    out.print(format_table({**report["selection"], "dataset": dataset, "model": model}))
    out.print(format_table({**report["evaluation"], "dataset": dataset, "model": model}))


@app.command(name="eval")
def eval_(
    dataset: Annotated[str, typer.Option(help="flickr8k, flickr30k, coco, csv, jsonl or msrvtt.")],
    data: Annotated[Path, typer.Option(help="Dataset folder or file.")],
    split: Annotated[str, typer.Option(help="test, dev (val), train or all.")] = "test",
    model: ModelOpt = DEFAULT_MODEL,
    device: DeviceOpt = None,
    flip_tta: Annotated[bool, typer.Option(help="Average each image with its mirror image.")] = True,
    fps: Annotated[float, typer.Option(help="MSR-VTT: frames sampled per second of each clip.")] = 1.0,
    json_out: JsonOpt = False,
) -> None:
    """Recall@1/5/10 and ranks: standard and original protocols (images), or text→video (MSR-VTT)."""
    if device is not None:
        from frameseek.system.devices import resolve_device

        resolve_device(device)  # a GPU that is not there fails before the data are read
    if dataset.lower() == "msrvtt":
        report = _eval_msrvtt(data, split, model, fps, json_out, device)
    else:
        from frameseek.lab.data.captions import load_dataset
        from frameseek.lab.retrieval_eval import evaluate_samples
        from frameseek.models.factory import create_model

        encoder = create_model(model, device=device)
        report = evaluate_samples(
            encoder, load_dataset(dataset, data, split), dataset, split, flip_tta=flip_tta
        )
    if json_out:
        typer.echo(json.dumps(report))
    else:
        from frameseek.lab.evaluation import format_table

        out.print(format_table(report))


def _eval_msrvtt(
    data: Path, split: str, model: str, fps: float, quiet: bool, device: str | None
) -> dict[str, Any]:
    from frameseek.lab.data.msrvtt import discover_msrvtt
    from frameseek.lab.video_eval import evaluate_msrvtt
    from frameseek.search import Searcher

    clips = discover_msrvtt(data, split)
    searcher = Searcher(model, sampling=_sampling(fps, False, 10.0, None, None, None), device=device)
    return evaluate_msrvtt(searcher, clips, split, progress=not quiet)


@app.command(name="app", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def run_app(ctx: typer.Context, device: DeviceOpt = None) -> None:
    """Start the Streamlit app (on 127.0.0.1 unless --server.address says otherwise); Streamlit options pass through."""
    from frameseek.app import APP_SCRIPT

    env = dict(os.environ)
    if device is not None:
        from frameseek.system.devices import resolve_device

        resolve_device(device)  # a GPU that is not there: one line now, not an error inside the page
        env["FRAMESEEK_DEVICE"] = device  # the app's models are created there

    extra = list(ctx.args)
    command = [sys.executable, "-m", "streamlit", "run", str(APP_SCRIPT)]
    if not any(a.startswith("--server.address") for a in extra):
        command += ["--server.address", "127.0.0.1"]
    if not any(a.startswith("--browser.gatherUsageStats") for a in extra):
        command += ["--browser.gatherUsageStats", "false"]
    if not any(a.startswith("--client.toolbarMode") for a in extra):
        command += ["--client.toolbarMode", "minimal"]
    if not any(a.startswith("--server.maxUploadSize") for a in extra):
        from frameseek import settings

        upload_mb = max(1, settings.limits().max_upload_bytes // (1024 * 1024))
        command += ["--server.maxUploadSize", str(upload_mb)]
    command += extra
    raise typer.Exit(subprocess.call(command, env=env))


app.add_typer(library_app, name="library")
app.command(name="serve")(serve)


@app.command()
def version() -> None:
    """Print the version."""
    from frameseek.version import __version__

    typer.echo(__version__)


def _note(text: str) -> None:
    """One ``note: ...`` line on stderr (never wrapped, never read as markup)."""
    err.print(f"[yellow]note:[/] {escape(' '.join(text.split()))}", highlight=False, soft_wrap=True)


class _WarningNotes(logging.Handler):
    """Keeps frameseek's warnings (e.g. "stopped reading at a damaged part") to show them as notes."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(" ".join(record.getMessage().split()))


@contextlib.contextmanager
def _quiet_logging() -> Iterator[_WarningNotes]:
    """Logging for a user: no library chatter or Python warnings on stderr, frameseek's warnings kept.

    With ``FRAMESEEK_DEBUG`` set, everything from INFO up goes to stderr instead, as it happens. The
    previous configuration is restored on the way out (``main`` may run in-process, e.g. in tests).
    """
    notes = _WarningNotes()
    if os.environ.get("FRAMESEEK_DEBUG"):
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
        yield notes
        return
    root, ours = logging.getLogger(), logging.getLogger("frameseek")
    silence = logging.NullHandler()  # with a handler on the root, Python's "last resort" prints nothing
    propagate = ours.propagate
    logging.captureWarnings(True)
    root.addHandler(silence)
    ours.addHandler(notes)
    ours.propagate = False
    try:
        yield notes
    finally:
        ours.propagate = propagate
        ours.removeHandler(notes)
        root.removeHandler(silence)
        logging.captureWarnings(False)


def _caused_by_interrupt(exc: BaseException) -> bool:
    """True if ``exc`` was raised while handling a KeyboardInterrupt (follows __cause__ / __context__)."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        if isinstance(current, KeyboardInterrupt):
            return True
        seen.add(id(current))
        todo += [current.__cause__, current.__context__]
    return False


def main(argv: list[str] | None = None) -> None:
    """Entry point: user errors become one line on stderr and a non-zero exit, never a traceback.

    Warnings logged along the way are shown as ``note:`` lines when the command succeeds; when it fails,
    the one error line says what went wrong.
    """
    with _quiet_logging() as notes:
        _run(argv, notes)


def _run(argv: list[str] | None, notes: _WarningNotes) -> None:
    """``main`` without the logging set-up."""
    try:
        app(args=argv, prog_name="frameseek")
    except FrameseekError as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except SystemExit as exc:  # how typer ends every run; it also turns Ctrl-C into a silent exit 130
        if _caused_by_interrupt(exc):
            err.print("interrupted")
            sys.exit(130)
        if exc.code in (0, None):
            for line in dict.fromkeys(notes.lines):
                _note(line)
        raise
    except Exception as exc:  # the last line of defence: still one line, the traceback only on request
        if os.environ.get("FRAMESEEK_DEBUG"):
            raise
        err.print(f"[red]error:[/] unexpected {type(exc).__name__}: {escape(' '.join(str(exc).split()))} "
                  "(set FRAMESEEK_DEBUG=1 for the traceback)", highlight=False, soft_wrap=True)  # fmt: skip
        sys.exit(1)


if __name__ == "__main__":
    main()
