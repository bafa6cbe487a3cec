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


def _segments(rec: Recognition, max_words: int = 12) -> list[tuple[float, float, str]]:
    if not rec.words:
        return [(0.0, rec.duration, rec.text)] if rec.text else []
    out = []
    words = list(rec.words)
    for i in range(0, len(words), max_words):
        group = words[i : i + max_words]
        out.append((group[0].start, group[-1].end, " ".join(w.word for w in group)))
    return out


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
    for i, word in enumerate(rec.words or ()):
        delta: dict[str, Any] = {
            "type": "transcript.text.delta",
            "delta": (" " if i else "") + word.word,
        }
        if logprobs:
            delta["logprobs"] = [_logprob(word)]
        events.append(json.dumps(delta))
    if diarized:
        for i, (a, b, t) in enumerate(_segments(rec)):
            events.append(
                json.dumps(
                    {
                        "type": "transcript.text.segment",
                        "id": f"seg_{i + 1:03d}",
                        "start": a,
                        "end": b,
                        "text": t,
                        "speaker": "A",
                    }
                )
            )
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
