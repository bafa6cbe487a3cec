"""Typed results of file transcription, shared by the client and the local server.

Every field but ``text`` is optional on the wire (protocol.md §3.2), so every field but
``text`` is optional here, and the raw body is kept for anything we do not model.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "DurationUsage",
    "TokenUsage",
    "Usage",
    "Logprob",
    "TranscriptionWord",
    "TranscriptionSegment",
    "Transcription",
    "TranscriptTextDelta",
    "TranscriptTextSegment",
    "TranscriptTextDone",
    "TranscriptStreamEvent",
    "ResponseFormat",
    "parse_usage",
    "parse_logprobs",
]

ResponseFormat = Literal["json", "text", "srt", "vtt", "verbose_json", "diarized_json"]


@dataclass(frozen=True, slots=True)
class DurationUsage:
    """Billing by audio length (gpt-transcribe, gpt-live-transcribe, whisper-1)."""

    seconds: float
    type: Literal["duration"] = "duration"


@dataclass(frozen=True, slots=True)
class TokenUsage:
    """Billing by tokens (the gpt-4o-transcribe family)."""

    input_tokens: int
    output_tokens: int
    total_tokens: int
    audio_tokens: int | None = None
    text_tokens: int | None = None
    type: Literal["tokens"] = "tokens"


Usage = DurationUsage | TokenUsage


@dataclass(frozen=True, slots=True)
class Logprob:
    """A token's log-probability, with its UTF-8 bytes when the server sends them."""

    token: str
    logprob: float
    bytes: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class TranscriptionWord:
    """A word with its start and end, in seconds from the start of the file."""

    word: str
    start: float
    end: float


@dataclass(frozen=True, slots=True)
class TranscriptionSegment:
    """A timed piece of the transcript (verbose_json, diarized_json, srt, vtt)."""

    start: float
    end: float
    text: str
    id: str | int | None = None
    speaker: str | None = None


@dataclass(frozen=True)
class Transcription:
    """The result of one file transcription.

    ``text`` is the transcript (for ``srt``/``vtt``, the subtitle file itself, whose cues are
    also parsed into ``segments``). ``raw`` is the response body as received.
    """

    text: str
    response_format: str = "json"
    language: str | None = None
    languages: tuple[str, ...] = ()
    duration: float | None = None
    segments: tuple[TranscriptionSegment, ...] = ()
    words: tuple[TranscriptionWord, ...] = ()
    logprobs: tuple[Logprob, ...] = ()
    usage: Usage | None = None
    raw: str = field(default="", repr=False)
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class TranscriptTextDelta:
    """A piece of text from a streamed file transcription."""

    delta: str
    logprobs: tuple[Logprob, ...] = ()
    segment_id: str | None = None


@dataclass(frozen=True, slots=True)
class TranscriptTextSegment:
    """A finished diarized segment from a streamed transcription."""

    segment: TranscriptionSegment


@dataclass(frozen=True, slots=True)
class TranscriptTextDone:
    """The end of a streamed transcription, with the whole text."""

    text: str
    logprobs: tuple[Logprob, ...] = ()
    usage: Usage | None = None
    languages: tuple[str, ...] = ()


TranscriptStreamEvent = TranscriptTextDelta | TranscriptTextSegment | TranscriptTextDone


def _num(value: Any, default: float = 0.0) -> float:
    """*value* as a finite float; anything else (a string, ``NaN``, an int too big for a float)
    is *default*: these fields are optional and a hostile number must not crash the parse."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return default
    try:
        number = float(value)
    except OverflowError:
        return default
    return number if math.isfinite(number) else default


def parse_usage(obj: Any) -> Usage | None:
    """Parse a usage object by its ``type`` discriminator; unknown shapes give ``None``."""
    if not isinstance(obj, Mapping):
        return None
    if obj.get("type") == "duration" or ("seconds" in obj and "input_tokens" not in obj):
        return DurationUsage(seconds=_num(obj.get("seconds")))
    if obj.get("type") == "tokens" or "input_tokens" in obj:
        details = obj.get("input_token_details")
        details = details if isinstance(details, Mapping) else {}
        audio, text = details.get("audio_tokens"), details.get("text_tokens")
        return TokenUsage(
            input_tokens=int(_num(obj.get("input_tokens"))),
            output_tokens=int(_num(obj.get("output_tokens"))),
            total_tokens=int(_num(obj.get("total_tokens"))),
            audio_tokens=int(audio) if isinstance(audio, int) else None,
            text_tokens=int(text) if isinstance(text, int) else None,
        )
    return None


def parse_logprobs(items: Any) -> tuple[Logprob, ...]:
    if not isinstance(items, list):
        return ()
    out = []
    for item in items:
        if isinstance(item, Mapping) and isinstance(item.get("token"), str):
            raw_bytes = item.get("bytes")
            out.append(
                Logprob(
                    token=item["token"],
                    logprob=_num(item.get("logprob")),
                    bytes=tuple(b for b in raw_bytes if isinstance(b, int))
                    if isinstance(raw_bytes, list)
                    else (),
                )
            )
    return tuple(out)


def parse_languages(items: Any) -> tuple[str, ...]:
    if not isinstance(items, list):
        return ()
    return tuple(
        str(item["code"]) for item in items if isinstance(item, Mapping) and "code" in item
    )
