"""SRT and WebVTT: cues read into segments, and segments written back as cues.

Both directions live here because the client reads them (``response_format="srt"``) and
writes them (a long file transcribed in pieces is stitched from shifted segments; the CLI
writes ``-o talk.srt``), and the local server writes them too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ._results import TranscriptionSegment

__all__ = ["parse_subtitles", "render_subtitles", "SUBTITLE_FORMATS"]

SUBTITLE_FORMATS = ("srt", "vtt")

_CUE_TIME = re.compile(
    r"(\d+:)?(\d{1,2}):(\d{2})[,.](\d{3})\s*-->\s*(\d+:)?(\d{1,2}):(\d{2})[,.](\d{3})"
)


def _cue_seconds(hours: str | None, minutes: str, seconds: str, millis: str) -> float:
    h = int(hours[:-1]) if hours else 0
    return h * 3600 + int(minutes) * 60 + int(seconds) + int(millis) / 1000


def parse_subtitles(body: str) -> tuple[TranscriptionSegment, ...]:
    """Cues of an SRT or WebVTT file as segments."""
    segments: list[TranscriptionSegment] = []
    for block in re.split(r"\r?\n\r?\n", body.strip()):
        lines = block.strip().splitlines()
        for i, line in enumerate(lines):
            match = _CUE_TIME.search(line)
            if match:
                g = match.groups()
                segments.append(
                    TranscriptionSegment(
                        start=_cue_seconds(g[0], g[1], g[2], g[3]),
                        end=_cue_seconds(g[4], g[5], g[6], g[7]),
                        text=" ".join(lines[i + 1 :]).strip(),
                        id=len(segments),
                    )
                )
                break
    return tuple(segments)


def _stamp(seconds: float, separator: str) -> str:
    millis = round(seconds * 1000)
    h, rem = divmod(millis, 3_600_000)
    m, rem = divmod(rem, 60_000)
    s, ms = divmod(rem, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{separator}{ms:03d}"


def render_subtitles(segments: Iterable[TranscriptionSegment], fmt: str) -> str:
    """*segments* as an SRT (``fmt="srt"``) or WebVTT (``"vtt"``) file."""
    if fmt not in SUBTITLE_FORMATS:
        raise ValueError(f"subtitle format must be srt or vtt; got {fmt!r}")
    srt = fmt == "srt"
    separator = "," if srt else "."
    cues = [
        (f"{i + 1}\n" if srt else "")
        + f"{_stamp(seg.start, separator)} --> {_stamp(seg.end, separator)}\n{seg.text}\n"
        for i, seg in enumerate(segments)
    ]
    return ("" if srt else "WEBVTT\n\n") + "\n".join(cues)
