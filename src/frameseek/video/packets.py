"""Decoding a stream's packets while tolerating damage: the one loop that skips packets which fail to
decode and gives the stream up after ``MAX_BAD_PACKETS`` of them in a row (pictures, sound, subtitles)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol, TypeVar

import av

MAX_BAD_PACKETS = 100
"""Consecutive packets that fail to decode before a stream is given up as corrupt (a few bad packets are
common in real captures and cost one picture, cue or audio frame each; a hundred in a row is a broken
file)."""


class Decodable(Protocol):
    def decode(self) -> Any: ...


P = TypeVar("P", bound=Decodable)

OnCorrupt = Callable[[int, av.FFmpegError], None]
"""Called with (failures in a row, the last error) when a stream passes ``MAX_BAD_PACKETS``: it raises
the caller's error, or returns to end the stream quietly."""


def decoded_packets(
    packets: Iterable[P], on_corrupt: OnCorrupt, *, max_bad: int = MAX_BAD_PACKETS
) -> Iterator[tuple[P, list[Any]]]:
    """(packet, what it decoded to) for every packet of ``packets`` that decodes; a packet that fails
    with an FFmpeg error is skipped, and after more than ``max_bad`` failures in a row ``on_corrupt``
    is called (inside the ``except``) and the stream ends. Errors while *reading* ``packets`` (demuxing)
    are not caught: they reach the caller."""
    bad = 0
    for packet in packets:
        try:
            decoded = list(packet.decode())
        except av.FFmpegError as err:
            bad += 1
            if bad > max_bad:
                on_corrupt(bad, err)
                return
            continue
        bad = 0
        yield packet, decoded
