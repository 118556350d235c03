"""The one tolerant packet loop (``frameseek.video.packets``), on a real MJPEG stream with real damaged
packets (zeros that FFmpeg's decoder refuses)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import av
import av.video
import pytest

from frameseek.errors import DecodeError
from frameseek.video.packets import MAX_BAD_PACKETS, decoded_packets
from videos import make_video


@pytest.fixture
def stream(tmp_path: Path) -> Iterator[tuple[list[av.Packet], av.video.VideoStream]]:
    """The packets of a 10-frame MJPEG video, and its stream (a damaged packet is decoded with it)."""
    path = tmp_path / "clip.mkv"
    make_video(path, seconds=0.4, codec="mjpeg", pix_fmt="yuvj420p")
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        yield [p for p in container.demux(video) if p.size], video


def damaged(video: av.video.VideoStream, count: int) -> list[av.Packet]:
    packets = []
    for _ in range(count):
        packet = av.Packet(b"\x00" * 200)
        packet.stream = video
        packets.append(packet)
    return packets


def never(bad: int, err: av.FFmpegError) -> None:
    raise AssertionError(f"gave up after {bad} bad packets ({err})")


def test_every_packet_of_a_sound_stream_comes_out_with_its_frame(
    stream: tuple[list[av.Packet], av.video.VideoStream],
) -> None:
    packets, _ = stream
    out = list(decoded_packets(packets, never))
    assert [p for p, _ in out] == packets
    assert sum(len(frames) for _, frames in out) == 10


def test_damaged_packets_are_skipped_and_the_count_starts_over_after_a_good_one(
    stream: tuple[list[av.Packet], av.video.VideoStream],
) -> None:
    packets, video = stream
    mixed = [
        packets[0],
        *damaged(video, MAX_BAD_PACKETS),
        packets[1],
        *damaged(video, MAX_BAD_PACKETS),
        packets[2],
    ]
    out = list(decoded_packets(mixed, never))
    assert [p for p, _ in out] == packets[:3]


def test_one_damaged_packet_too_many_in_a_row_gives_the_stream_up(
    stream: tuple[list[av.Packet], av.video.VideoStream],
) -> None:
    packets, video = stream
    calls: list[tuple[int, type]] = []
    out = list(
        decoded_packets(
            [packets[0], *damaged(video, MAX_BAD_PACKETS + 1), *packets[1:]],
            lambda bad, err: calls.append((bad, type(err))),
        )
    )
    assert [p for p, _ in out] == packets[:1]  # nothing after the give-up
    assert calls == [(MAX_BAD_PACKETS + 1, av.InvalidDataError)]


def test_the_give_up_can_raise_the_callers_error(
    stream: tuple[list[av.Packet], av.video.VideoStream],
) -> None:
    _, video = stream

    def corrupt(bad: int, err: av.FFmpegError) -> None:
        raise DecodeError(f"clip: corrupt after {bad}") from None

    with pytest.raises(DecodeError, match="corrupt after 3"):
        list(decoded_packets(damaged(video, 3), corrupt, max_bad=2))
