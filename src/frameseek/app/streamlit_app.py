"""frameseek's web page: choose a video, type a sentence, see (and play) the matching moments.

Started by ``frameseek app`` (``streamlit run`` on this file). Drawing only: the work is done by
``frameseek.app.logic``, which is plain Python. One file because Streamlit runs it top to bottom as the
page: each function draws one part of it (sidebar, inputs, player and transcript, chart, cards, metrics).
"""

from __future__ import annotations

import dataclasses
import logging
from functools import partial
from typing import Any

import altair as alt
import streamlit as st

from frameseek.api import (
    AUTO_MODEL,
    PRESETS,
    FrameseekError,
    InputError,
    MomentQuery,
    Query,
    Searcher,
    SearchResponse,
    SearchResult,
    indexes_dir,
    limits,
)
from frameseek.app import logic

log = logging.getLogger("frameseek.app")

# No bare strings at module level: Streamlit's "magic" would draw them on the page (comments instead).
CUSTOM_MODEL = "Checkpoint folder…"
HIT_COLOR = "#e4572e"
GRID_COLUMNS = 5
MATCH_STYLE = (
    "<style>.frameseek-said{font-size:0.85rem;line-height:1.35;opacity:0.9}"
    ".frameseek-said mark{background:#ffd54f;color:#222;padding:0 2px;border-radius:3px}</style>"
)


@st.cache_resource(show_spinner=False, max_entries=4)
def cached_searcher(name: str) -> Searcher:
    """One Searcher (one loaded, warmed-up model) per name per server process, shared by every session;
    sampling and progress are per query."""
    return Searcher(name, warm_up=True)


# ---------------------------------------------------------------------------------------- state


def _jump(video: str, seconds: float) -> None:
    """Button callback: open ``video`` in the player at ``seconds`` and start playing."""
    st.session_state["player_video"] = video
    st.session_state["start_time"] = int(seconds)
    st.session_state["autoplay"] = True
    # A new accessible name gives the autoplaying player a new identity: the browser remounts it, so
    # clicking the same moment twice seeks again (otherwise an unchanged start_time is a no-op).
    st.session_state["jumps"] = int(st.session_state.get("jumps", 0)) + 1


# ---------------------------------------------------------------------------------------- inputs


def sidebar() -> logic.QueryOptions:
    """Model, top-k and sampling options."""
    with st.sidebar:
        st.header("Options")
        presets = [AUTO_MODEL, *PRESETS]
        default = logic.default_model()
        choices = [*presets, CUSTOM_MODEL]
        model_choice = st.selectbox(
            "Model",
            choices,
            index=presets.index(default) if default in presets else len(presets),
            key="model_choice",
            help="`auto`: a CLIP preset whose weights are in the Hugging Face cache, else `lite` (works "
            "offline); the others need their weights in the Hugging Face cache.",
        )
        model = model_choice
        if model_choice == CUSTOM_MODEL:
            model = st.text_input(
                "Checkpoint folder",
                value="" if default in presets else default,
                key="model_folder",
                help="A folder written by `frameseek train` (config.json + model.safetensors).",
            ).strip()
        top_k = st.slider("Moments to show (top-k)", 1, 20, 5, key="top_k")
        mode = st.radio(
            "Frame sampling",
            ["Fixed rate", "Scene changes"],
            key="sampling_mode",
            help="Scene changes: one frame at each shot change, plus one every N seconds.",
        )
        fps, scene_gap = 1.0, 10.0
        if mode == "Fixed rate":
            fps = float(st.number_input("Frames per second", 0.1, 30.0, 1.0, 0.5, key="fps"))
        else:
            scene_gap = float(
                st.number_input("At least one frame every (s)", 1.0, 600.0, 10.0, 1.0, key="scene_gap")
            )
        min_gap = float(
            st.number_input(
                "Min. gap between moments (s)",
                0.0,
                600.0,
                2.0,
                0.5,
                key="min_gap",
                help="No two results closer than this.",
            )
        )
        st.divider()
        speech = st.toggle(
            "Search speech",
            key="speech",
            help="Subtitles beside the file or inside it (and a link's captions) are always searched when "
            "present. This also transcribes the audio with speech recognition when a video has none: slow "
            "the first time, then the transcript is stored and reused.",
        )
        ocr = st.toggle(
            "Search on-screen text",
            key="ocr",
            help="Reads the text shown in the picture (slides, titles, signs, burnt-in captions) with OCR, "
            "one frame per second where the picture changed. Stored and reused like the index.",
        )
        sub_lang = st.text_input(
            "Subtitle language",
            value="en",
            key="sub_lang",
            max_chars=12,
            help="Preferred language of subtitles and captions, e.g. en, pt-BR.",
        )
        caps = limits()
        st.divider()
        st.caption(
            f"Uploads up to {caps.max_upload_bytes // 2**20:,} MB · links up to "
            f"{caps.max_download_bytes // 2**20:,} MB · queries up to {caps.max_query_chars} characters. "
            f"Indexes are kept in `{indexes_dir()}` and reused."
        )
    return logic.QueryOptions(
        model=model or logic.default_model(),
        top_k=int(top_k),
        fps=fps,
        scene=mode == "Scene changes",
        scene_gap=scene_gap,
        min_gap=min_gap,
        speech=bool(speech),
        ocr=bool(ocr),
        sub_lang=sub_lang.strip() or "en",
    )


def source_input() -> tuple[str, logic.SourceInput | None]:
    """The video to search: a link, an upload, a library video or a file on this machine."""
    kinds = list(logic.SOURCE_KINDS)
    if not logic.local_files_allowed(st.get_option("server.address")):
        kinds.remove("Local file")
    kind = st.radio("Video", kinds, horizontal=True, key="source_kind")
    if kind == "Link":
        link = st.text_input(
            "YouTube or web link",
            placeholder="https://www.youtube.com/watch?v=…  or  https://example.com/video.mp4",
            key="link",
        )
        return kind, link
    if kind == "Upload":
        limit_mb = max(1, limits().max_upload_bytes // 2**20)
        upload = st.file_uploader(
            "Video file",
            type=list(logic.UPLOAD_TYPES),
            key="upload",
            max_upload_size=limit_mb,
            help=f"Up to {limit_mb:,} MB (FRAMESEEK_MAX_UPLOAD_MB).",
        )
        return kind, (logic.Upload(upload.getvalue(), upload.name) if upload is not None else None)
    if kind == "Library":
        try:
            videos = logic.library_videos("default")
        except Exception as exc:  # an unreadable library file: say so, keep the page usable
            st.error(logic.error_message(exc))
            videos = []
        if not videos:
            st.info(
                "The library is empty: add videos with `frameseek index VIDEO…` (or search one here first)."
            )
            return kind, None
        chosen = st.selectbox("Library video", videos, format_func=lambda v: v.label, key="library_video")
        return kind, (chosen.path if chosen is not None else None)
    path = st.text_input(
        "A video file or folder on this machine",
        placeholder="/path/to/video.mp4",
        key="local_path",
    )
    return kind, path


def query_input() -> tuple[str, logic.Upload | None, float, bool, dict[str, Any]]:
    """The sentence, an optional query image (and its weight), whether Search was pressed, and the
    "then / while / at least" builder's fields (``logic.make_moment_query``)."""
    col_query, col_button = st.columns([6, 1], vertical_alignment="bottom")
    with col_query:
        query = st.text_input(
            "What are you looking for?",
            placeholder="a cyclist wearing a helmet",
            key="query",
            max_chars=limits().max_query_chars,
        )
    with col_button:
        pressed = st.button("Search", type="primary", key="search", icon=":material/search:", width="stretch")
    image_file: logic.Upload | None = None
    weight = 0.5
    with st.expander("Query by image (optional)"):
        image = st.file_uploader(
            "An image that looks like the moment", type=list(logic.IMAGE_TYPES), key="query_image"
        )
        if image is not None:
            image_file = logic.Upload(image.getvalue(), image.name)
            weight = float(
                st.slider(
                    "Weight of the text (vs. the image)",
                    0.0,
                    1.0,
                    0.5,
                    0.05,
                    key="text_weight",
                    help="Used when both a sentence and an image are given.",
                )
            )
    with st.expander("Order and duration (optional)"):
        col_then, col_within = st.columns([3, 1])
        then = col_then.text_input("…then", placeholder="a car drives away", key="then")
        within = col_within.number_input("within (s)", min_value=0.1, value=None, step=1.0, key="within")
        col_while, col_least = st.columns([3, 1])
        while_ = col_while.text_input("…while", placeholder="someone says thank you", key="while")
        at_least = col_least.number_input("at least (s)", min_value=0.1, value=None, step=1.0, key="at_least")
    builder = {"then": then or "", "within": within, "while_": while_ or "", "at_least": at_least}
    return query or "", image_file, weight, pressed, builder


# ---------------------------------------------------------------------------------------- work


def run_search(
    kind: str,
    source: logic.SourceInput | None,
    query: str,
    image_file: logic.Upload | None,
    options: logic.QueryOptions,
    builder: dict[str, Any] | None = None,
) -> None:
    """Validate, then index (with progress) and search; the response goes to the session state."""
    st.session_state.pop("response", None)
    for key in [k for k in st.session_state if str(k).startswith(logic.PICK_PREFIX)]:
        del st.session_state[key]  # a new search starts with every card selected
    try:  # checks that need no work: shown at once, no status box
        image = logic.query_image(image_file) if image_file is not None else None
        moment = logic.make_moment_query(query, **(builder or {}))
        if moment is not None and image is not None:
            raise InputError("“then”, “while” and “at least” work with a sentence, not with a query image")
        parsed: Query | MomentQuery = moment or logic.make_query(query, image, options.text_weight)
        chosen = logic.check_source(source, kind)
        options.sampling()
        options.tracks()
    except Exception as exc:
        st.error(logic.error_message(exc), icon=":material/error:")
        return
    status = st.status(f"Loading the model `{options.model}`…", expanded=True)
    with status:
        bar = st.progress(0.0, text="Starting…")
        tracker = logic.ProgressTracker()

        def on_progress(stage: str, done: float, total: float | None) -> None:
            view = tracker.update(stage, done, total)
            if view is None:
                return
            status.update(label=f"{view.label}…")
            bar.progress(view.fraction if view.fraction is not None else 0.0, text=view.text)

        try:
            searcher = cached_searcher(options.model)
            status.update(label="Preparing the video…")
            response = logic.run_query(searcher, chosen, parsed, options, progress=on_progress)
        except Exception as exc:
            if not isinstance(exc, FrameseekError):
                log.exception("search failed")
            status.update(label="Search failed", state="error", expanded=False)
            st.session_state["error"] = logic.error_message(exc)
            return
        bar.progress(1.0, text="Done")
    m = response.metrics
    how = "index reused" if m.get("index_reused") else f"{m.get('frames_processed', 0)} frames indexed"
    status.update(
        label=f"Found {len(response.results)} moments in {float(m.get('wall_seconds') or 0):.2f} s ({how})",
        state="complete",
        expanded=False,
    )
    st.session_state["response"] = response
    st.session_state["player_video"] = logic.player_video(response)
    st.session_state["start_time"] = int(response.results[0].time) if response.results else 0
    st.session_state["autoplay"] = False


# ---------------------------------------------------------------------------------------- results


def _download(label: str, data: Any, file_name: str, mime: str, key: str, help_text: str) -> None:
    """A small download button whose file (``data``, a callable) is made only when it is clicked."""
    st.download_button(
        label,
        data=data,
        file_name=file_name,
        mime=mime,
        key=key,
        on_click="ignore",
        icon=":material/download:",
        type="tertiary",
        help=help_text,
    )


def hit_card(rank: int, hit: SearchResult, multi: bool, query: str | None) -> None:
    with st.container(border=True):
        if hit.thumbnail:
            st.image(hit.thumbnail, width="stretch")
        st.markdown(f"**#{rank} · {logic.hms(hit.time)}**")
        with st.container(horizontal=True, gap="small"):
            for badge in logic.match_badges(hit.match):
                st.badge(badge.label, icon=badge.icon, color=badge.color, help=badge.help or None)
        if hit.text:
            st.markdown(logic.highlight_html(hit.text, query), unsafe_allow_html=True)
        details = f"score {hit.score:.3f} · segment {logic.segment_label(hit)}"
        st.caption(f"{hit.title} · {details}" if multi else details)
        st.button(
            f"▶ Play from {logic.hms(hit.time)}",
            key=f"play-{rank}",
            on_click=_jump,
            args=(hit.video, hit.time),
            width="stretch",
        )
        with st.container(horizontal=True, gap="small"):
            _download("Frame", partial(logic.frame_jpeg, hit), logic.download_name(hit, ".jpg"),
                      "image/jpeg", f"frame-{rank}", "The frame at full resolution (JPEG)")  # fmt: skip
            _download("Clip", partial(logic.clip_mp4, hit, *logic.pads(st.session_state)),
                      logic.download_name(hit, ".mp4"), "video/mp4", f"clip-{rank}",
                      f"The segment {logic.segment_label(hit)} with its sound, plus the pads (MP4)")  # fmt: skip
        st.checkbox("Select", value=True, key=logic.pick_key(rank), help="In the supercut and the markers")


def player(response: SearchResponse) -> None:
    video = st.session_state.get("player_video") or logic.player_video(response)
    if not video:
        return
    start = int(st.session_state.get("start_time", 0))
    st.subheader("Player")
    title = next((line.title for line in response.timelines if line.video == video), "")
    if title:
        st.caption(title)
    autoplay = bool(st.session_state.get("autoplay"))
    alt = f"{title or 'video'}, from {logic.hms(start)}"
    link = logic.embed_link(response, video)
    try:
        st.video(
            link or video,
            format=logic.video_mime(video),
            start_time=start,
            autoplay=autoplay,
            alt=f"{alt} (jump {st.session_state.get('jumps', 0)})" if autoplay else alt,
        )
    except Exception as exc:  # e.g. the file was moved away since it was indexed
        st.error(f"cannot play the video: {logic.error_message(exc)}")
    points = logic.jump_points(response, video)
    if points:
        st.markdown("**Jump to a match**")
        with st.container(horizontal=True, gap="small"):
            for rank, hit in points:
                st.button(
                    f"{logic.hms(hit.time)} · #{rank}",
                    key=f"jump-{rank}",
                    on_click=_jump,
                    args=(hit.video, hit.time),
                    type="primary" if int(hit.time) == start else "secondary",
                    help=f"score {hit.score:.3f} · segment {logic.segment_label(hit)}",
                )


def transcript_panel(response: SearchResponse) -> bool:
    """Every line said or shown in the player's video, scrollable; a click plays from there. False: none."""
    video = st.session_state.get("player_video") or logic.player_video(response)
    rows = logic.transcript_rows(response, video)
    if not rows:
        return False
    st.subheader("Transcript")
    st.caption(logic.transcript_note(rows))
    active = logic.active_row(rows, int(st.session_state.get("start_time", 0)))
    with st.container(height=logic.transcript_height(len(rows)), border=True, key="transcript"):
        for i, row in enumerate(rows[: logic.TRANSCRIPT_MAX_ROWS]):
            st.button(
                row.label,
                key=f"line-{i}",
                icon=row.icon,
                on_click=_jump,
                args=(video, row.start),
                type="secondary" if i == active else "tertiary",
                help=f"{'Said' if row.kind == 'speech' else 'On screen'} {logic.hms(row.start)}–"
                f"{logic.hms(row.end)} · click to play from here",
            )
    return True


def timeline_chart(response: SearchResponse) -> None:
    curve, hits = logic.timeline_rows(response)
    if not curve:
        return
    st.subheader("Similarity over time")
    multi = len(response.timelines) > 1
    axis = alt.Axis(labelExpr="utcFormat(datum.value * 1000, '%H:%M:%S')", labelOverlap=True, tickMinStep=1)
    x = alt.X("time:Q", title="time", axis=axis)
    y = alt.Y("score:Q", title="similarity", scale=alt.Scale(zero=False, padding=18))
    line = alt.Chart(alt.Data(values=curve)).mark_line(strokeWidth=2, point=alt.OverlayMarkDef(size=14))
    line = (
        line.encode(x=x, y=y, color=alt.Color("video:N", legend=alt.Legend(orient="bottom")))
        if multi
        else line.encode(x=x, y=y)
    )
    layers: list[Any] = [line]
    if hits:
        hit_data = alt.Data(values=hits)
        tooltip = ["rank:N", "timestamp:N", alt.Tooltip("score:Q", format=".3f"), "segment:N"]
        if multi:
            tooltip.append("video:N")
        layers.append(
            alt.Chart(hit_data).mark_rule(color=HIT_COLOR, strokeDash=[4, 3], opacity=0.6).encode(x=x)
        )
        layers.append(
            alt.Chart(hit_data)
            .mark_point(filled=True, size=110, color=HIT_COLOR, opacity=1)
            .encode(x=x, y=y, tooltip=tooltip)
        )
        layers.append(
            alt.Chart(hit_data)
            .mark_text(dy=-12, fontWeight="bold", color=HIT_COLOR)
            .encode(x=x, y=y, text="rank:N")
        )
    st.altair_chart(alt.layer(*layers).properties(height=300), width="stretch")
    st.caption("Every sampled frame's similarity to the query; the marked points are the returned moments.")


def metrics_panel(metrics: dict[str, Any]) -> None:
    st.subheader("Metrics")
    cards = logic.metric_cards(metrics)
    per_row = 4
    for start in range(0, len(cards), per_row):
        columns = st.columns(per_row)
        for column, card in zip(columns, cards[start : start + per_row], strict=False):
            column.metric(card.label, card.value, help=card.help, border=True)


def edit_panel(response: SearchResponse) -> None:
    """For editors: pads, then the selected moments as one supercut or as markers for editing software."""
    st.subheader("For editing")
    left, right = st.columns(2)
    left.slider("Pad before (s)", 0.0, logic.PAD_MAX_SECONDS, 0.0, 0.5, key="pad_before",
                help="Seconds added before each segment (clips, supercut, markers)")  # fmt: skip
    right.slider("Pad after (s)", 0.0, logic.PAD_MAX_SECONDS, 0.0, 0.5, key="pad_after",
                 help="Seconds added after each segment (clips, supercut, markers)")  # fmt: skip
    picked = logic.picked_hits(response, st.session_state)
    before, after = logic.pads(st.session_state)
    label = st.radio("Markers format", list(logic.MARKER_CHOICES), horizontal=True, key="marker_format")
    kind = logic.MARKER_CHOICES.get(label or "", "edl")
    suffix, mime = logic.markers_download(kind)
    st.caption(f"{len(picked)} of {len(response.results)} moments selected (tick them on the cards).")
    with st.container(horizontal=True, gap="small"):
        st.download_button("Download supercut (MP4)", partial(logic.supercut_mp4, picked, before, after),
                           logic.edit_name(response, ".mp4"), "video/mp4", key="supercut", on_click="ignore",
                           icon=":material/movie:", disabled=not picked,
                           help="The selected moments, in rank order, with their sound, as one MP4")  # fmt: skip
        st.download_button("Download markers (EDL / OTIO)",
                           partial(logic.markers_file, picked, kind, response.query, before, after),
                           logic.edit_name(response, suffix), mime, key="markers", on_click="ignore",
                           icon=":material/bookmarks:", disabled=not picked,
                           help="The same cut for editing software: CMX 3600 EDL or OpenTimelineIO")  # fmt: skip


def results(response: SearchResponse) -> None:
    for notice in response.notices:
        st.info(notice, icon=":material/info:")
    if not response.results:
        st.warning("No moments found: no frames were sampled from this video.")
        return
    multi = len({hit.video for hit in response.results}) > 1
    left, right = st.columns([5, 7], gap="large")
    with left:
        player(response)
    with right:  # the transcript beside the player when the video has one, else the chart
        has_transcript = transcript_panel(response)
        if not has_transcript:
            timeline_chart(response)
    if has_transcript:
        timeline_chart(response)
    st.html(MATCH_STYLE)  # style tags only: applied to the page, takes no room
    st.subheader(logic.results_heading(response))
    for row in range(0, len(response.results), GRID_COLUMNS):
        columns = st.columns(GRID_COLUMNS)
        for offset, column in enumerate(columns):
            rank = row + offset + 1
            if rank <= len(response.results):
                with column:
                    hit_card(rank, response.results[rank - 1], multi, response.query)
    edit_panel(response)
    metrics_panel(response.metrics)


# ---------------------------------------------------------------------------------------- page


def main() -> None:
    st.set_page_config(
        page_title="frameseek — search inside videos", page_icon=":material/movie_filter:", layout="wide"
    )
    st.title(":material/movie_filter: frameseek", anchor=False)
    st.caption("Find the moments in a video that match a sentence. Everything runs on this machine.")
    options = sidebar()
    kind, source = source_input()
    query, image_file, weight, pressed, builder = query_input()
    options = dataclasses.replace(options, text_weight=weight)
    st.session_state.pop("error", None)
    if pressed:
        run_search(kind, source, query, image_file, options, builder)
    if "error" in st.session_state:
        st.error(st.session_state["error"], icon=":material/error:")
    response = st.session_state.get("response")
    if isinstance(response, SearchResponse):
        results(response)


main()
