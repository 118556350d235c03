"""What the command line prints: its two consoles, ``note:`` lines, the results table, the metrics line and
the progress bars (shared by every command module)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:
    from frameseek.api import SearchResponse

out = Console()
err = Console(stderr=True)


def note(text: str) -> None:
    """One ``note: ...`` line on stderr (never wrapped, never read as markup)."""
    err.print(f"[yellow]note:[/] {escape(' '.join(text.split()))}", highlight=False, soft_wrap=True)


def error_line(label: str, text: str) -> None:
    """One red ``label: text`` line on stderr (``error``, ``failed``), never wrapped or read as markup."""
    err.print(f"[red]{label}:[/] {escape(text)}", highlight=False, soft_wrap=True)


def print_partial(response: SearchResponse) -> None:
    """First results of a long video, from its key frames, while the full index is built."""
    for notice in response.notices:
        note(notice)
    print_results(response.as_dict(), title_prefix="first look: ")


def not_found_line(data: dict[str, Any], where: str | None = None) -> None:
    """The one line that says nothing matches well (``found`` is false): where, what, and the best
    confidence among the closest moments listed below it (``where``: the source's name by default)."""
    source = str(data["source"])
    name = where or (source if "://" in source else Path(source).name or source)
    what = f"'{data['query']}'" if data.get("query") else "the image"
    best = max((float(hit.get("confidence", 0.0)) for hit in data["results"]), default=None)
    tail = "; closest shown, confidence " + f"{best:.2f}" if best is not None else "; nothing to show"
    out.print(
        f"No moment in {escape(name)} matches {escape(what)} well{tail}", highlight=False, soft_wrap=True
    )


def confidence_cell(confidence: float) -> str:
    """A confidence as the table shows it: its level and the number (``high 0.91``)."""
    from frameseek.api import confidence_level  # loaded by then: results come from the API

    return f"{confidence_level(confidence)} {confidence:.2f}"


def print_results(data: dict[str, Any], title_prefix: str = "") -> None:
    """The hits as a table (a weak moment, below ``FOUND_AT``, dimmed), then (for a finished search) the
    metrics line and what was exported."""
    table = Table(
        title=f"{title_prefix}{data['query'] or '(image query)'} — {data['source']} [{data['model']}]"
    )
    with_text = any(hit.get("text") for hit in data["results"])
    columns = [
        "#",
        "time",
        "confidence",
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
        said = hit.get("text") or ""
        language = hit.get("language") if said else None  # the span's language: "[es] el precio del pan"
        words = [escape(f"[{language}] {said}" if language else said)] if with_text else []
        cell = confidence_cell(float(hit.get("confidence", 0.0)))
        table.add_row(
            str(rank),
            hit["timecode"],
            cell,
            f"{hit['score']:.3f}",
            f"{hit['start']:.2f}–{hit['end']:.2f} s",
            hit.get("match", "visual"),
            *words,
            Path(hit["video"]).name,
            hit["thumbnail"] or "",
            style="dim" if cell.startswith("low") else None,  # a weak moment: only the closest
        )
    out.print(table)
    if data.get("partial"):
        return
    m = data["metrics"]
    out.print(metrics_line(m))
    for item in data.get("exports", []):
        out.print(f"exported {item['frame']}  {item['clip']}")
    for key in ("supercut", "markers"):
        if data.get(key):
            out.print(f"exported {data[key]}")


def metrics_line(m: dict[str, Any]) -> str:
    """The pipeline metrics as one ``a · b · c`` line (the stages that ran, then search, CPU, memory)."""
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


class ProgressPrinter:
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

    def __enter__(self) -> ProgressPrinter:
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
