"""frameseek's web page: one search box, the answer first, the player in sight.

Started by ``frameseek app`` (``streamlit run`` on this file). Drawing only: the work is done by
``frameseek.app.logic`` / ``present`` (plain Python) and runs in a ``jobs.SearchJob`` thread, so a rerun
(any widget touched) never loses a running search. One file because Streamlit runs it top to bottom as the
page: each function draws one part of it (options, search box, progress, verdict, cards, dock, details).
"""

from __future__ import annotations

import dataclasses
import time
from functools import partial
from typing import Any

import altair as alt
import streamlit as st

from frameseek.api import (
    AUTO_MODEL,
    PRESETS,
    InputError,
    MomentQuery,
    Query,
    SearchResponse,
    SearchResult,
    TrackOptions,
    indexes_dir,
    limits,
    name_person,
)
from frameseek.app import jobs, logic, present

# No bare strings at module level: Streamlit's "magic" would draw them on the page (comments instead).
CUSTOM_MODEL = "Checkpoint folder…"
GRID_COLUMNS = 3
ROW_MOMENTS = 4
POLL_SECONDS = 0.25
TRACK_CHIPS = {"Speech": "speech", "Screen text": "ocr", "Faces": "faces", "Sounds": "sounds"}
PAGE_STYLE = """<style>
.stMainBlockContainer{padding-top:2.2rem}
.frameseek-said{font-size:0.85rem;line-height:1.35;opacity:0.9}
.frameseek-said mark{background:#ffd54f;color:#222;padding:0 2px;border-radius:3px}
.st-key-playing-card{outline:3px solid #e4572e;outline-offset:2px;border-radius:0.6rem}
[data-testid="stColumn"]:has(.st-key-dock){position:sticky;top:3.75rem;align-self:flex-start;z-index:5}
.st-key-dock [data-testid="stVideo"], .st-key-dock video{max-height:45vh}
@media (max-width: 640px){
  [data-testid="stColumn"]:has(.st-key-dock){position:static}
  .st-key-player-playing{position:fixed;left:0;right:0;bottom:0;z-index:1000;background:var(--background-color, #fff);
    padding:4px 8px;box-shadow:0 -2px 8px rgba(0,0,0,.25)}
  .st-key-player-playing video{max-height:30vh}
  .stMainBlockContainer{padding-bottom:40vh}
  [data-testid="stImage"] img{max-height:45vh;object-fit:cover}
}
</style>"""


@st.cache_resource(show_spinner=False, max_entries=4)
def cached_engines(name: str) -> jobs.Engines:
    """One model per name per server process, shared by every session, loading from the first page view."""
    return jobs.Engines(name)


# ---------------------------------------------------------------------------------------- state


def _jump(video: str, seconds: float) -> None:
    """Button callback: open ``video`` in the player at ``seconds`` and start playing."""
    st.session_state["player_video"] = video
    st.session_state["start_time"] = int(seconds)
    st.session_state["autoplay"] = True
    # A new accessible name gives the autoplaying player a new identity: the browser remounts it, so
    # clicking the same moment twice seeks again (otherwise an unchanged start_time is a no-op).
    st.session_state["jumps"] = int(st.session_state.get("jumps", 0)) + 1


def _seek(key: str, video: str) -> None:
    """Timeline callback: a click on the chart plays ``video`` from the clicked time."""
    event = st.session_state.get(key)
    points = (getattr(event, "selection", None) or {}).get("seek") if event is not None else None
    if points:
        _jump(video, float(points[0].get("time", 0.0)))


def _cancel() -> None:
    job = st.session_state.get("job")
    if isinstance(job, jobs.SearchJob):
        job.cancel()
        st.session_state["notice"] = f"Cancelled the search for {job.label} after {job.elapsed:.1f} s."


def _show_person(person: str) -> None:
    """Gallery callback: the answer becomes every appearance of ``person`` in the videos searched."""
    state = st.session_state
    rows = state.get("people") or []
    try:
        answer = jobs.person_moments(person, present.person_videos(rows, person), int(state.get("top_k", 6)))
    except Exception as exc:
        state["error"] = present.friendly_error(exc)
        return
    state["response"] = answer
    state["asked_top_k"] = len(answer.results)
    state["player_video"] = logic.player_video(answer)
    state["start_time"] = int(answer.results[0].time) if answer.results else 0
    state["autoplay"] = False


def _name_person(person: str) -> None:
    """Gallery callback: give ``person`` the name typed beside their face."""
    state = st.session_state
    name = str(state.get(f"name-{person}") or "").strip()
    try:
        named = name_person(person, name)
    except Exception as exc:
        state["error"] = present.friendly_error(exc)
        return
    for row in state.get("people") or []:
        if str(row["id"]) == person:
            row["name"] = named.get("name")
    state["notice"] = f"{person} is now called {named.get('name')}."


# ---------------------------------------------------------------------------------------- inputs


def sidebar() -> logic.QueryOptions:
    """Model, top-k, sampling and language: what most searches leave alone."""
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
        top_k = st.slider("Moments to show (top-k)", 1, 20, 6, key="top_k")
        mode = st.radio("Frame sampling", ["Fixed rate", "Scene changes"], key="sampling_mode",
                        help="Scene changes: one frame at each shot change, plus one every N seconds.")  # fmt: skip
        fps, scene_gap = 1.0, 10.0
        if mode == "Fixed rate":
            fps = float(st.number_input("Frames per second", 0.1, 30.0, 1.0, 0.5, key="fps"))
        else:
            scene_gap = float(
                st.number_input("At least one frame every (s)", 1.0, 600.0, 10.0, 1.0, key="scene_gap")
            )
        min_gap = float(st.number_input("Min. gap between moments (s)", 0.0, 600.0, 2.0, 0.5, key="min_gap",
                                        help="No two results closer than this."))  # fmt: skip
        sub_lang = st.text_input("Subtitle language", value="en", key="sub_lang", max_chars=12,
                                 help="Preferred language of subtitles and captions, e.g. en, pt-BR.")  # fmt: skip
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
        sub_lang=sub_lang.strip() or "en",
    )


def available_chips() -> list[str]:
    """Speech and screen text always; Faces and Sounds when their tracks are registered here."""
    chips = ["Speech", "Screen text"]
    for label in ("Faces", "Sounds"):
        try:
            TrackOptions(extra=frozenset({TRACK_CHIPS[label]}))
        except InputError:
            continue
        chips.append(label)
    return chips


def source_kinds(videos: list[logic.LibraryVideo]) -> list[str]:
    kinds = list(logic.SOURCE_KINDS)
    if not logic.local_files_allowed(st.get_option("server.address")):
        kinds.remove("Local file")
    if not videos:  # the library is the default only when it has videos
        kinds.remove("Library")
        kinds.append("Library")
    return kinds


def source_widget(kind: str, videos: list[logic.LibraryVideo]) -> logic.SourceInput | None:
    """The input for the chosen kind of source (inside the search form, so Enter searches)."""
    if kind == "Link":
        return str(st.text_input("Link to a video", placeholder="e.g. https://www.youtube.com/watch?v=…", key="link",
                                 help="A YouTube (or other) page, or a direct http(s) link to a video file."))  # fmt: skip
    if kind == "Upload":  # drawn above the form (see search_box): its value is the stored upload
        upload = st.session_state.get("upload")
        return logic.Upload(upload.getvalue(), upload.name) if upload is not None else None
    if kind == "Library":
        if not videos:
            st.caption("The library is empty: search a link or an upload first, or `frameseek index VIDEO…`.")
            return None
        labels = {v.path: v.label for v in videos}
        every = f"All {len(videos)} videos in the library" if len(videos) > 1 else "The library's one video"
        choice = st.selectbox("Library video", [jobs.LIBRARY_ALL, *labels], key="library_video",
                              format_func=lambda p: labels.get(p, every))  # fmt: skip
        return str(choice if choice is not None else jobs.LIBRARY_ALL)
    return str(st.text_input("A video file or folder on this machine", placeholder="e.g. /videos/clip.mp4",
                             key="local_path"))  # fmt: skip


def search_box(videos: list[logic.LibraryVideo]) -> tuple[str, logic.SourceInput | None, bool]:
    """Where to search (outside the form: it changes the inputs), then one form: the source, the query
    (Enter searches), the track chips, and the image and order/duration builders."""
    kinds = source_kinds(videos)
    kind = str(st.radio("Search in", kinds, horizontal=True, key="source_kind", label_visibility="collapsed"))
    if kind == "Upload":  # outside the form: a file is sent when chosen, and Enter in the form searches it
        limit_mb = max(1, limits().max_upload_bytes // 2**20)
        st.file_uploader(
            "Video file",
            type=list(logic.UPLOAD_TYPES),
            key="upload",
            max_upload_size=limit_mb,
            help=f"Up to {limit_mb:,} MB (FRAMESEEK_MAX_UPLOAD_MB).",
        )
    with st.form("search_form", border=False, enter_to_submit=True):
        source = source_widget(kind, videos)
        col_query, col_button = st.columns([6, 1], vertical_alignment="bottom")
        col_query.text_input("What are you looking for?", placeholder="e.g. a cyclist wearing a helmet",
                             key="query", max_chars=limits().max_query_chars)  # fmt: skip
        pressed = col_button.form_submit_button("Search", type="primary", icon=":material/search:",
                                                width="stretch", key="search")  # fmt: skip
        st.pills("Also search", available_chips(), selection_mode="multi", key="tracks",
                 help="The picture is always searched; subtitles too when the video has them. Speech: "
                      "transcribe the audio when there are none. Screen text: read text in the picture (OCR).")  # fmt: skip
        with st.expander("Image, order and duration (optional)"):
            st.file_uploader("An image that looks like the moment", type=list(logic.IMAGE_TYPES),
                             key="query_image")  # fmt: skip
            st.slider("Weight of the text (vs. the image)", 0.0, 1.0, 0.5, 0.05, key="text_weight",
                      help="Used when both a sentence and an image are given.")  # fmt: skip
            col_then, col_within = st.columns([3, 1])
            col_then.text_input("…then", placeholder="e.g. a car drives away", key="then")
            col_within.number_input("within (s)", min_value=0.1, value=None, step=1.0, key="within")
            col_while, col_least = st.columns([3, 1])
            col_while.text_input("…while", placeholder="e.g. someone says thank you", key="while")
            col_least.number_input("at least (s)", min_value=0.1, value=None, step=1.0, key="at_least")
    return kind, source, bool(pressed)


def chosen_tracks(options: logic.QueryOptions) -> logic.QueryOptions:
    picked = {TRACK_CHIPS[c] for c in st.session_state.get("tracks") or [] if c in TRACK_CHIPS}
    return dataclasses.replace(
        options,
        speech="speech" in picked,
        ocr="ocr" in picked,
        extra=frozenset(picked - {"speech", "ocr"}),
        text_weight=float(st.session_state.get("text_weight", 0.5)),
    )


# ---------------------------------------------------------------------------------------- work


def start_search(kind: str, source: logic.SourceInput | None, options: logic.QueryOptions) -> None:
    """Check the inputs (at once, one line), then start the search in its own thread."""
    state = st.session_state
    try:
        image_file = state.get("query_image")
        image = (
            logic.query_image(logic.Upload(image_file.getvalue(), image_file.name)) if image_file else None
        )
        text = str(state.get("query") or "")
        moment = logic.make_moment_query(
            text,
            then=str(state.get("then") or ""),
            within=state.get("within"),
            while_=str(state.get("while") or ""),
            at_least=state.get("at_least"),
        )
        if moment is not None and image is not None:
            raise InputError("“then”, “while” and “at least” work with a sentence, not with a query image")
        parsed: Query | MomentQuery = moment or logic.make_query(text, image, options.text_weight)
        if kind == "Link":
            source = present.check_link(str(source or ""))
        elif kind == "Local file" and not logic.local_files_allowed(st.get_option("server.address")):
            raise InputError("files on the server are not offered on this page")
        if not (kind == "Library" and source == jobs.LIBRARY_ALL):
            source = logic.check_source(source, kind)
        options.sampling()
        options.tracks()
    except Exception as exc:
        state["error"] = present.friendly_error(exc)
        return
    previous = state.get("job")
    if isinstance(previous, jobs.SearchJob) and previous.running:
        previous.cancel()
        state["notice"] = f"Stopped the search for {previous.label} to start this one."
    given = source.name if isinstance(source, logic.Upload) else str(source or "")
    request = jobs.Request(kind, source, parsed, options, image=image is not None)
    engines = cached_engines(options.model)
    label = f"“{parsed.label if isinstance(parsed, MomentQuery) else parsed.text or 'the image'}”"
    job = jobs.SearchJob(label, lambda report: jobs.search_work(engines, request, job), given=given)
    state["job"] = job.start()
    state["job_top_k"] = options.top_k
    state["job_speech"] = options.speech


def wait_for(job: jobs.SearchJob) -> None:
    """Show the running job's progress until it ends (a rerun draws it again and keeps waiting)."""
    with st.container(key="progress"):
        box = st.empty()
        st.button("Cancel", key="cancel", on_click=_cancel, icon=":material/stop_circle:")
    while job.running:
        snap = job.snapshot()
        label = jobs.STAGE_NAMES.get(snap.stage, snap.stage.capitalize())
        fraction, text = present.progress_line(
            label, snap.done, snap.total, job.elapsed, time.monotonic() - snap.stage_started, snap.stage,
            (snap.videos_done, snap.videos_total),
        )  # fmt: skip
        box.progress(fraction if fraction is not None else 0.0, text=f"Searching {job.label} · {text}")
        time.sleep(POLL_SECONDS)
    box.empty()
    finish(job)
    st.rerun()


def finish(job: jobs.SearchJob) -> None:
    state = st.session_state
    if state.get("job") is job:
        del state["job"]
    if job.cancelled:
        return
    if job.error is not None:
        state["error"] = job.error
        return
    if job.response is None:
        return
    response = job.response
    for key in [k for k in state if str(k).startswith(logic.PICK_PREFIX)]:
        del state[key]  # a new answer starts with every card selected
    state["response"] = response
    state["people"] = job.people  # the Faces chip's gallery (None: no gallery)
    state["people_library"] = response.source.startswith("library:")
    state["waited"] = job.elapsed
    state["asked_top_k"] = state.get("job_top_k", len(response.results))
    state["asked_speech"] = bool(state.get("job_speech"))
    state["player_video"] = logic.player_video(response)
    state["start_time"] = int(response.results[0].time) if response.results else 0
    state["autoplay"] = False


# ---------------------------------------------------------------------------------------- results


def _download(label: str, data: Any, file_name: str, mime: str, key: str, help_text: str) -> None:
    """A small download button whose file (``data``, a callable) is made only when it is clicked."""
    st.download_button(label, data=data, file_name=file_name, mime=mime, key=key, on_click="ignore",
                       icon=":material/download:", type="tertiary", help=help_text)  # fmt: skip


def hit_card(rank: int, hit: SearchResult, query: str | None, multi: bool) -> None:
    playing = (st.session_state.get("player_video") == hit.video and st.session_state.get("autoplay")
               and int(st.session_state.get("start_time", -1)) == int(hit.time))  # fmt: skip
    with st.container(border=True, key="playing-card" if playing else f"card-{rank}"):
        if hit.thumbnail:
            st.image(hit.thumbnail, width="stretch")
        with st.container(horizontal=True, gap="small", vertical_alignment="center"):
            st.markdown(f"**#{rank} · {logic.hms(hit.time)}**")
            level = present.level(hit)
            st.badge(
                present.level_label(hit), color=present.LEVEL_COLORS[level], help=present.LEVEL_HELP[level]
            )
            heard = present.sound_badge(hit)
            for badge in logic.match_badges(hit.match):
                if heard and badge.label == "Sound":
                    st.badge(heard, color=badge.color, help=badge.help)
                    continue
                st.badge(badge.label, icon=badge.icon, color=badge.color, help=badge.help or None)
            spoken = present.language_tag(hit, query)
            if spoken:
                st.badge(spoken, icon=":material/translate:", color="gray",
                         help=f"The words that matched are in {spoken}, not the query's language")  # fmt: skip
        said = present.shown_text(hit)
        if said:
            st.markdown(logic.highlight_html(said, query), unsafe_allow_html=True)
        if multi:
            st.caption(hit.title)
        with st.container(horizontal=True, gap="small", vertical_alignment="center"):
            st.button("▶ Playing" if playing else f"▶ Play from {logic.hms(hit.time)}", key=f"play-{rank}",
                      on_click=_jump, args=(hit.video, hit.time), type="primary" if playing else "secondary",
                      help=f"segment {logic.segment_label(hit)}")  # fmt: skip
            with st.popover("More", icon=":material/more_horiz:", type="tertiary"):
                _download("Frame", partial(logic.frame_jpeg, hit), logic.download_name(hit, ".jpg"),
                          "image/jpeg", f"frame-{rank}", "The frame at full resolution (JPEG)")  # fmt: skip
                _download("Clip", partial(logic.clip_mp4, hit, *logic.pads(st.session_state)),
                          logic.download_name(hit, ".mp4"), "video/mp4", f"clip-{rank}",
                          f"The segment {logic.segment_label(hit)} with its sound, plus the pads (MP4)")  # fmt: skip
                st.checkbox("In the supercut", value=True, key=logic.pick_key(rank),
                            help="In the supercut and the markers (For editing, below)")  # fmt: skip


def people_gallery(rows: list[dict[str, Any]], library: bool) -> None:
    """The Faces chip's gallery: each person's face, name (or id) and screen time; a click on a face
    shows that person's moments, and a person can be named."""
    cards = present.people_cards(rows)
    with st.container(border=True, key="people"):
        where = "the library" if library else "the videos searched"
        st.markdown(f"##### :material/groups: People in {where}")
        if not cards:
            st.caption("No faces were found.")
            return
        per_row = 6
        for start in range(0, len(cards), per_row):
            columns = st.columns(per_row)
            for column, card in zip(columns, cards[start : start + per_row], strict=False):
                with column, st.container(key=f"person-{card.id}"):
                    if card.thumbnail:
                        st.image(card.thumbnail, width=96)
                    st.button(card.label, key=f"show-{card.id}", on_click=_show_person, args=(card.id,),
                              icon=":material/face:", help=f"Show every moment of {card.label}")  # fmt: skip
                    st.caption(card.screen_time)
                    with st.popover("Name", icon=":material/edit:", type="tertiary"):
                        st.text_input("Name", key=f"name-{card.id}", max_chars=80, placeholder="e.g. Alice")
                        st.button("Save", key=f"save-{card.id}", on_click=_name_person, args=(card.id,))


def grid(response: SearchResponse) -> None:
    for row in range(0, len(response.results), GRID_COLUMNS):
        columns = st.columns(GRID_COLUMNS)
        for offset, column in enumerate(columns):
            rank = row + offset + 1
            if rank <= len(response.results):
                with column:
                    hit_card(rank, response.results[rank - 1], response.query, False)


def video_rows(response: SearchResponse) -> None:
    """A folder or library: one row per video, its moments side by side and its own timeline."""
    for i, row in enumerate(present.video_rows(response)):
        with st.container(border=True, key=f"video-row-{i}"):
            st.markdown(f"##### :material/movie: {logic.markdown_text(row.title)}")
            for start in range(0, len(row.hits), ROW_MOMENTS):
                columns = st.columns(ROW_MOMENTS)
                for column, (rank, hit) in zip(columns, row.hits[start : start + ROW_MOMENTS], strict=False):
                    with column:
                        hit_card(rank, hit, response.query, False)
            timeline(response, row.video, f"timeline-{i}", height=70)


def timeline(response: SearchResponse, video: str, key: str, height: int = 90) -> None:
    """The video's timeline: its moments as bars (height = confidence on a fixed 0–1 scale), the frames'
    similarity as a faint shape; a click anywhere plays from the nearest sampled frame."""
    frames, moments = present.timeline_points(response, video)
    if not frames:
        return
    axis = alt.Axis(labelExpr="utcFormat(datum.value * 1000, '%M:%S')", labelOverlap=True, title=None,
                    tickMinStep=1)  # fmt: skip
    x = alt.X("time:Q", axis=axis)
    seek = alt.selection_point(name="seek", fields=["time"], nearest=True, on="click", clear=False)
    shape = (alt.Chart(alt.Data(values=frames)).mark_area(opacity=0.18, color="#888")
             .encode(x=x, y=alt.Y("shape:Q", scale=alt.Scale(domain=[0, 1]), axis=None)))  # fmt: skip
    click = (alt.Chart(alt.Data(values=frames)).mark_point(size=260, opacity=0.001, filled=True)
             .encode(x=x, y=alt.value(height / 2), tooltip=[alt.Tooltip("at:N", title="play from")])
             .add_params(seek))  # fmt: skip
    layers: list[Any] = [shape]
    if moments:
        color = alt.Color("level:N", scale=alt.Scale(domain=["high", "medium", "low"],
                                                     range=["#2e7d32", "#ef6c00", "#9e9e9e"]), legend=None)  # fmt: skip
        layers.append(
            alt.Chart(alt.Data(values=moments)).mark_bar(opacity=0.85)
            .encode(x="start:Q", x2="end:Q", y=alt.Y("confidence:Q", scale=alt.Scale(domain=[0, 1]), axis=None),
                    color=color, tooltip=["rank:N", "at:N", alt.Tooltip("confidence:Q", format=".0%"), "level:N"])
        )  # fmt: skip
    layers.append(click)
    st.altair_chart(alt.layer(*layers).properties(height=height), width="stretch", key=key,
                    on_select=partial(_seek, key, video), selection_mode="seek")  # fmt: skip


def player(response: SearchResponse) -> None:
    video = st.session_state.get("player_video") or logic.player_video(response)
    if not video:
        return
    start = int(st.session_state.get("start_time", 0))
    title = next((line.title for line in response.timelines if line.video == video), "")
    title = title or next((hit.title for hit in response.results if hit.video == video), "")
    autoplay = bool(st.session_state.get("autoplay"))
    with st.container(key="player-playing" if autoplay else "player"):
        st.caption(
            f":material/play_circle: {logic.markdown_text(title or 'video')} · from {logic.hms(start)}"
        )
        alt_text = f"{title or 'video'}, from {logic.hms(start)}"
        link = logic.embed_link(response, video)
        try:
            st.video(link or video, format=logic.video_mime(video), start_time=start, autoplay=autoplay,
                     alt=f"{alt_text} (jump {st.session_state.get('jumps', 0)})" if autoplay else alt_text)  # fmt: skip
        except Exception as exc:  # e.g. the file was moved away since it was indexed
            st.error(f"cannot play the video: {present.friendly_error(exc)}")
    timeline(response, video, "timeline-player")
    st.caption("Click the timeline to play from there · bars: moments, taller = more confident.")


def transcript_panel(response: SearchResponse) -> None:
    """Every line said or shown in the player's video, scrollable; a click plays from there."""
    video = st.session_state.get("player_video") or logic.player_video(response)
    rows = logic.transcript_rows(response, video)
    if not rows:
        return
    st.caption(logic.transcript_note(rows))
    active = logic.active_row(rows, int(st.session_state.get("start_time", 0)))
    with st.container(height=logic.transcript_height(len(rows)), border=True, key="transcript"):
        for i, row in enumerate(rows[: logic.TRANSCRIPT_MAX_ROWS]):
            st.button(row.label, key=f"line-{i}", icon=row.icon, on_click=_jump, args=(video, row.start),
                      type="secondary" if i == active else "tertiary",
                      help=f"{'Said' if row.kind == 'speech' else 'On screen'} {logic.hms(row.start)}–"
                      f"{logic.hms(row.end)} · click to play from here")  # fmt: skip


def metrics_panel(response: SearchResponse) -> None:
    with st.expander("Details: timing and metrics", icon=":material/monitoring:"):
        cards = logic.metric_cards(response.metrics)
        per_row = 4
        for start in range(0, len(cards), per_row):
            columns = st.columns(per_row)
            for column, card in zip(columns, cards[start : start + per_row], strict=False):
                column.metric(card.label, card.value, help=card.help, border=True)


def edit_panel(response: SearchResponse) -> None:
    """For editors: pads, then the selected moments as one supercut or as markers for editing software."""
    with st.expander("For editing: supercut and markers", icon=":material/movie_edit:"):
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
        st.caption(
            f"{len(picked)} of {len(response.results)} moments selected (untick them under More on a card)."
        )
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
    state = st.session_state
    said = present.verdict(response, state.get("waited"))
    with st.container(key="verdict"):
        if said.found:
            st.success(said.text, icon=":material/check_circle:")
        else:
            st.warning(said.text, icon=":material/help:")
    hint = present.speech_hint(response.query or "", bool(state.get("asked_speech")), response)
    if hint:
        st.info(hint, icon=":material/record_voice_over:")
    short = present.shortfall(response, int(state.get("asked_top_k") or len(response.results)))
    for note in [*response.notices, *([short] if short else [])]:
        st.caption(f":material/info: {note}")
    people = state.get("people")
    if isinstance(people, list):
        people_gallery(people, bool(state.get("people_library")))
    if not response.results:
        return
    videos = {hit.video for hit in response.results}
    multi = response.source.startswith("library:") or len(response.timelines) > 1 or len(videos) > 1
    left, right = st.columns([7, 3], gap="medium")
    with left:
        if multi:
            video_rows(response)
        else:
            grid(response)
    with right, st.container(key="dock"):
        player(response)
        transcript_panel(response)
    edit_panel(response)
    metrics_panel(response)


# ---------------------------------------------------------------------------------------- page


def main() -> None:
    st.set_page_config(page_title="frameseek — search inside videos", page_icon=":material/movie_filter:",
                       layout="wide", initial_sidebar_state="collapsed")  # fmt: skip
    st.html(PAGE_STYLE)  # style tags only: applied to the page, takes no room
    st.markdown("##### :material/movie_filter: frameseek · find the moment in a video")
    options = sidebar()
    cached_engines(options.model).preload()  # the query engine, then the image model, in the background
    try:
        videos = logic.library_videos("default")
    except Exception as exc:  # an unreadable library file: say so, keep the page usable
        st.error(present.friendly_error(exc))
        videos = []
    kind, source, pressed = search_box(videos)
    options = chosen_tracks(options)
    hint = present.speech_hint(str(st.session_state.get("query") or ""), options.speech)
    if hint and not pressed:
        st.info(hint, icon=":material/record_voice_over:")
    if pressed:
        start_search(kind, source, options)
    job = st.session_state.get("job")
    if isinstance(job, jobs.SearchJob) and not job.running:
        finish(job)
    notice = st.session_state.pop("notice", None)
    if notice:
        st.info(notice, icon=":material/info:")
    error = st.session_state.pop("error", None)
    if error:
        st.error(error, icon=":material/error:")
    if isinstance(job, jobs.SearchJob) and job.running:
        wait_for(job)
    response = st.session_state.get("response")
    if isinstance(response, SearchResponse):
        results(response)


main()
