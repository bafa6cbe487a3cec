"""Render a :class:`Recognition` in each of OpenAI's response formats (protocol.md §3.2)."""

from __future__ import annotations

import json
from typing import Any

from .._protocol._server import billed_usage
from .._results import TranscriptionSegment
from .._settings import MODEL_CAPABILITIES
from .._subtitles import SUBTITLE_FORMATS, render_subtitles
from ._recognizers import Recognition, RecognizedWord

__all__ = ["render_transcription", "sse_events", "error_body", "CONTENT_TYPES"]

CONTENT_TYPES = {
    "json": "application/json",
    "verbose_json": "application/json",
    "diarized_json": "application/json",
    "text": "text/plain; charset=utf-8",
    "srt": "text/plain; charset=utf-8",
    "vtt": "text/plain; charset=utf-8",
}

_LANGUAGE_NAMES = {"en": "english", "fr": "french", "de": "german", "es": "spanish"}


def languages(rec: Recognition, model: str | None) -> list[dict[str, str]] | None:
    """``[{"code": "en"}]`` for the models that report what they heard (gpt-transcribe)."""
    caps = MODEL_CAPABILITIES.get(model or "")
    if caps is None or not caps.detects_languages:
        return None
    return [{"code": rec.language}] if rec.language else []


PAUSE_SECONDS = 0.5  # a gap between words this long ends a segment, as a sentence's end does
MAX_SEGMENT_WORDS = 40


def _word_groups(rec: Recognition) -> list[list[RecognizedWord]]:
    """The words, in segments that end where the speaker paused (or at a length cap)."""
    groups: list[list[RecognizedWord]] = []
    for word in rec.words:
        last = groups[-1] if groups else None
        if last and word.start - last[-1].end < PAUSE_SECONDS and len(last) < MAX_SEGMENT_WORDS:
            last.append(word)
        else:
            groups.append([word])
    return groups


def _segments(rec: Recognition) -> list[tuple[float, float, str]]:
    if not rec.words:
        return [(0.0, rec.duration, rec.text)] if rec.text else []
    return [(g[0].start, g[-1].end, " ".join(w.word for w in g)) for g in _word_groups(rec)]


def _logprobs(rec: Recognition) -> list[dict[str, Any]]:
    return [_logprob(word) for word in rec.words]


def _logprob(word: RecognizedWord) -> dict[str, Any]:
    return {"token": word.word, "logprob": word.logprob, "bytes": list(word.word.encode())}


def render_transcription(
    rec: Recognition,
    response_format: str,
    *,
    granularities: tuple[str, ...] = (),
    logprobs: bool = False,
    speakers: tuple[str, ...] = (),
    model: str | None = None,
) -> str:
    """The response body for *response_format* (usage as *model* is billed)."""
    segs = _segments(rec)
    if response_format == "text":
        return rec.text + "\n"
    if response_format in SUBTITLE_FORMATS:
        cues = (TranscriptionSegment(start, end, text) for start, end, text in segs)
        return render_subtitles(cues, response_format)
    if response_format == "verbose_json":
        body: dict[str, Any] = {
            "task": "transcribe",
            "language": _LANGUAGE_NAMES.get(rec.language, rec.language),
            "duration": round(rec.duration, 2),
            "text": rec.text,
            "usage": billed_usage(model, rec.duration, rec.text),
        }
        body["segments"] = [
            {
                "id": i,
                "seek": 0,
                "start": a,
                "end": b,
                "text": t,
                "tokens": [],
                "temperature": 0.0,
                "avg_logprob": 0.0,
                "compression_ratio": 1.0,
                "no_speech_prob": 0.0,
            }
            for i, (a, b, t) in enumerate(segs)
        ]
        if "word" in granularities:
            body["words"] = [{"word": w.word, "start": w.start, "end": w.end} for w in rec.words]
        return json.dumps(body)
    if response_format == "diarized_json":
        speaker = speakers[0] if speakers else "A"
        return json.dumps(
            {
                "task": "transcribe",
                "duration": round(rec.duration, 2),
                "text": rec.text,
                "segments": [
                    {
                        "type": "transcript.text.segment",
                        "id": f"seg_{i + 1:03d}",
                        "start": a,
                        "end": b,
                        "text": t,
                        "speaker": speaker,
                    }
                    for i, (a, b, t) in enumerate(segs)
                ],
                "usage": billed_usage(model, rec.duration, rec.text),
            }
        )
    body = {"text": rec.text, "usage": billed_usage(model, rec.duration, rec.text)}
    if (detected := languages(rec, model)) is not None:
        body["languages"] = detected
    if logprobs:
        body["logprobs"] = _logprobs(rec)
    return json.dumps(body)


def sse_events(
    rec: Recognition, *, logprobs: bool = False, diarized: bool = False, model: str | None = None
) -> list[str]:
    """The ``data:`` payloads of a streamed transcription: deltas, then done."""
    events: list[str] = []
    first = True
    for number, group in enumerate(_word_groups(rec), 1):
        for word in group:
            delta: dict[str, Any] = {
                "type": "transcript.text.delta",
                "delta": ("" if first else " ") + word.word,
            }
            first = False
            if logprobs:
                delta["logprobs"] = [_logprob(word)]
            if diarized:
                delta["segment_id"] = f"seg_{number:03d}"
            events.append(json.dumps(delta))
        if diarized:
            segment = {
                "type": "transcript.text.segment",
                "id": f"seg_{number:03d}",
                "start": group[0].start,
                "end": group[-1].end,
                "text": " ".join(w.word for w in group),
                "speaker": "A",
            }
            events.append(json.dumps(segment))
    done: dict[str, Any] = {
        "type": "transcript.text.done",
        "text": rec.text,
        "usage": billed_usage(model, rec.duration, rec.text),
    }
    if (detected := languages(rec, model)) is not None:
        done["languages"] = detected
    if logprobs:
        done["logprobs"] = _logprobs(rec)
    events.append(json.dumps(done))
    return events


def error_body(message: str, *, type: str, code: str | None, param: str | None = None) -> str:
    return json.dumps({"error": {"message": message, "type": type, "param": param, "code": code}})
