"""Typed results of file transcription, shared by the client and the local server.

Every field but ``text`` is optional on the wire (protocol.md §3.2), so every field but
``text`` is optional here, and the raw body is kept for anything we do not model. The
``*_from`` readers below are shared by the REST bodies, the SSE events and the realtime
events; they follow the rules of :mod:`trio_stt._untrusted`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from ._untrusted import Fields

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
    "usage_from",
    "logprobs_from",
    "languages_from",
    "segment_from",
    "word_from",
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

    def to_dict(self) -> dict[str, Any]:
        """The transcript, its language, duration and timings, as JSON-ready values."""
        body: dict[str, Any] = {
            "text": self.text,
            "language": self.language,
            "duration": self.duration,
        }
        if self.languages:
            body["languages"] = list(self.languages)
        if self.segments:
            body["segments"] = [
                {"id": s.id, "start": s.start, "end": s.end, "text": s.text}
                | ({"speaker": s.speaker} if s.speaker else {})
                for s in self.segments
            ]
        if self.words:
            body["words"] = [{"word": w.word, "start": w.start, "end": w.end} for w in self.words]
        return body


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


def usage_from(fields: Fields, key: str = "usage") -> Usage | None:
    """The usage object at *key*, by its ``type``; ``None`` when absent or of a type this
    version does not know (billing may grow new kinds)."""
    usage = fields.optional_object(key)
    if usage is None:
        return None
    kind = usage.optional_text("type")
    if kind is None:  # untyped, as some compatible servers send it: go by the fields
        kind = "tokens" if "input_tokens" in usage.obj else "duration"
        if "seconds" not in usage.obj and kind == "duration":
            return None
    if kind == "duration":
        return DurationUsage(seconds=usage.number("seconds"))
    if kind == "tokens":
        details = usage.optional_object("input_token_details")
        return TokenUsage(
            input_tokens=usage.count("input_tokens"),
            output_tokens=usage.count("output_tokens"),
            total_tokens=usage.count("total_tokens"),
            audio_tokens=details.optional_count("audio_tokens") if details else None,
            text_tokens=details.optional_count("text_tokens") if details else None,
        )
    return None


def logprobs_from(fields: Fields, key: str = "logprobs") -> tuple[Logprob, ...]:
    out = []
    for item in fields.objects(key):
        raw_bytes = item.array("bytes")
        if not all(type(b) is int and 0 <= b <= 255 for b in raw_bytes):
            raise item.invalid("bytes", "an array of integers from 0 to 255", raw_bytes)
        out.append(Logprob(item.text("token"), item.number("logprob", signed=True),
                           tuple(raw_bytes)))  # fmt: skip
    return tuple(out)


def languages_from(fields: Fields, key: str = "languages") -> tuple[str, ...]:
    """Detected languages, ``[{"code": "en"}]`` on the wire."""
    return tuple(item.text("code") for item in fields.objects(key))


def segment_from(fields: Fields) -> TranscriptionSegment:
    """A timed segment (verbose_json, diarized_json, or a streamed segment event)."""
    segment_id = fields.obj.get("id")
    if segment_id is not None and (
        isinstance(segment_id, bool) or not isinstance(segment_id, (str, int))
    ):
        raise fields.invalid("id", "a string or an integer", segment_id)
    return TranscriptionSegment(
        start=fields.number("start"),
        end=fields.number("end"),
        text=fields.text("text"),
        id=segment_id,
        speaker=fields.optional_text("speaker"),
    )


def word_from(fields: Fields) -> TranscriptionWord:
    return TranscriptionWord(fields.text("word"), fields.number("start"), fields.number("end"))
