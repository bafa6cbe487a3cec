"""File transcription, sans I/O: build the multipart request, parse every response format.

Building the body ourselves (rather than handing files to the HTTP client) means we know its
exact size before anything leaves the machine, so the API's 25 MB limit - which counts the
whole multipart body, not the audio - is enforced locally with a clear error.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ._audio_input import AudioInput
from ._errors import (
    APIStatusError,
    AudioFormatError,
    ConfigurationError,
    RemoteProtocolError,
    UploadTooLargeError,
)
from ._results import (
    ResponseFormat,
    Transcription,
    TranscriptStreamEvent,
    TranscriptTextDelta,
    TranscriptTextDone,
    TranscriptTextSegment,
    languages_from,
    logprobs_from,
    segment_from,
    usage_from,
    word_from,
)
from ._settings import STTModelSettings
from ._subtitles import parse_subtitles
from ._untrusted import Fields, load_json

__all__ = [
    "MAX_BODY_BYTES",
    "AUDIO_CONTENT_TYPES",
    "TranscriptionRequest",
    "build_transcription_request",
    "parse_transcription",
    "parse_sse_data",
    "SSEDecoder",
    "parse_error_body",
    "encode_multipart",
]

MAX_BODY_BYTES = 26_214_400
"""OpenAI's limit for the whole multipart body (protocol.md §3.4)."""

AUDIO_CONTENT_TYPES: Mapping[str, str] = {
    "flac": "audio/flac",
    "m4a": "audio/mp4",
    "mp3": "audio/mpeg",
    "mp4": "audio/mp4",
    "mpeg": "audio/mpeg",
    "mpga": "audio/mpeg",
    "oga": "audio/ogg",
    "ogg": "audio/ogg",
    "wav": "audio/wav",
    "webm": "audio/webm",
}

FileLike = str | os.PathLike[str] | bytes | AudioInput


@dataclass(frozen=True)
class TranscriptionRequest:
    """A ready multipart body and the format the answer will come in."""

    body: bytes
    content_type: str
    response_format: str
    stream: bool


def encode_multipart(
    fields: Sequence[tuple[str, str]], file: tuple[str, bytes, str], boundary: str | None = None
) -> tuple[bytes, str]:
    """RFC 7578 body for *fields* plus one file part; returns ``(body, content_type)``."""
    boundary = boundary or secrets.token_hex(16)
    parts: list[bytes] = []
    for name, value in fields:
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
            + value.encode()
            + b"\r\n"
        )
    filename, data, ctype = file
    safe_name = filename.replace('"', "_").replace("\r", "_").replace("\n", "_")
    parts.append(
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="{safe_name}"\r\nContent-Type: {ctype}\r\n\r\n'
        ).encode()
        + data
        + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def _load_file(file: FileLike, filename: str | None) -> tuple[str, bytes, str]:
    if isinstance(file, AudioInput):
        return (filename or "audio.wav", file.to_wav_bytes(), "audio/wav")
    if isinstance(file, bytes):
        data, name = file, filename or "audio.wav"
    else:
        path = os.fspath(file)
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except OSError as exc:
            raise AudioFormatError(f"cannot read audio file {path!r}: {exc.strerror}") from exc
        name = filename or os.path.basename(path)
    if not data:
        raise AudioFormatError(f"audio file {name!r} is empty (0 bytes)")
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if ext not in AUDIO_CONTENT_TYPES:
        raise AudioFormatError(
            f"file name {name!r} has no supported audio extension; the API trusts the "
            f"extension, so use one of: {', '.join(sorted(AUDIO_CONTENT_TYPES))}"
        )
    return (name, data, AUDIO_CONTENT_TYPES[ext])


def build_transcription_request(
    model: str,
    file: FileLike,
    settings: STTModelSettings,
    *,
    filename: str | None = None,
    response_format: ResponseFormat | None = None,
    timestamp_granularities: Iterable[str] | None = None,
    chunking_strategy: str | Mapping[str, Any] | None = None,
    known_speaker_names: Sequence[str] | None = None,
    known_speaker_references: Sequence[str] | None = None,
    stream: bool = False,
    max_body_bytes: int = MAX_BODY_BYTES,
    wire_model: str | None = None,
) -> TranscriptionRequest:
    """Encode one ``POST /audio/transcriptions`` body; fields follow openai-python's rules.

    *wire_model* is what the ``model`` field says, when the server knows *model* by another
    name (an Azure deployment)."""
    caps = settings.check_for(model, realtime=False)
    fmt = response_format or "json"
    if fmt not in caps.rest_formats:
        raise ConfigurationError(
            f"{model} does not produce response_format={fmt!r}; it supports "
            f"{', '.join(sorted(caps.rest_formats))}"
        )
    if stream and not caps.rest_streaming:
        raise ConfigurationError(f"{model} does not support streaming transcription")
    fields: list[tuple[str, str]] = [("model", wire_model or model), ("response_format", fmt)]
    langs = settings.language_list()
    if langs and caps.languages_list:
        fields += [("languages[]", code) for code in langs]
    elif langs:
        if len(langs) > 1:
            raise ConfigurationError(f"{model} takes one language hint; got {langs}")
        fields.append(("language", langs[0]))
    if settings.prompt:
        fields.append(("prompt", settings.prompt))
    fields += [("keywords[]", word) for word in settings.keywords or ()]
    if settings.temperature is not None:
        fields.append(("temperature", repr(float(settings.temperature))))
    if settings.include_logprobs:
        if fmt != "json":
            raise ConfigurationError("logprobs are only returned with response_format='json'")
        fields.append(("include[]", "logprobs"))
    granularities = list(timestamp_granularities or ())
    if granularities:
        if fmt != "verbose_json":
            raise ConfigurationError("timestamp_granularities needs response_format='verbose_json'")
        fields += [("timestamp_granularities[]", g) for g in granularities]
    if isinstance(chunking_strategy, str):
        fields.append(("chunking_strategy", chunking_strategy))
    elif chunking_strategy is not None:
        fields += [
            (f"chunking_strategy[{k}]", _form_value(v)) for k, v in chunking_strategy.items()
        ]
    fields += [("known_speaker_names[]", n) for n in known_speaker_names or ()]
    fields += [("known_speaker_references[]", r) for r in known_speaker_references or ()]
    for key, value in settings.extra.items():
        fields.append((key, _form_value(value)))
    if stream:
        fields.append(("stream", "true"))
    body, ctype = encode_multipart(fields, _load_file(file, filename))
    if len(body) > max_body_bytes:
        raise UploadTooLargeError(len(body), max_body_bytes)
    return TranscriptionRequest(body=body, content_type=ctype, response_format=fmt, stream=stream)


def _form_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def parse_transcription(
    body: str, response_format: str, request_id: str | None = None
) -> Transcription:
    """Turn a success body of any ``response_format`` into a :class:`Transcription`."""
    if response_format in ("text", "srt", "vtt"):
        text = body.strip()
        segments = parse_subtitles(text) if response_format != "text" else ()
        return Transcription(
            text=text,
            response_format=response_format,
            segments=segments,
            raw=body,
            request_id=request_id,
        )
    fields = Fields.root(load_json(body, "transcription response"), "transcription response")
    return Transcription(
        text=fields.text("text"),
        response_format=response_format,
        language=fields.optional_text("language"),
        languages=languages_from(fields),
        duration=fields.optional_number("duration"),
        segments=tuple(segment_from(item) for item in fields.objects("segments")),
        words=tuple(word_from(item) for item in fields.objects("words")),
        logprobs=logprobs_from(fields),
        usage=usage_from(fields),
        raw=body,
        request_id=request_id,
    )


def parse_error_body(body: str) -> tuple[str, str | None, str | None, str | None]:
    """``(message, code, type, param)`` from an error body, JSON or not.

    Parsed as JSON whatever the content type: OpenAI's 401 is JSON labelled text/plain.
    """
    try:
        obj = json.loads(body)
    except (ValueError, RecursionError):
        return (_not_json_error(body), None, None, None)
    err = obj.get("error") if isinstance(obj, Mapping) else None
    if isinstance(err, str):
        return (err, None, None, None)
    if not isinstance(err, Mapping):
        return (body.strip()[:500], None, None, None)

    def text(key: str) -> str | None:
        value = err.get(key)
        return str(value) if value is not None else None

    return (text("message") or "no error message", text("code"), text("type"), text("param"))


_HTML_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


def _not_json_error(body: str) -> str:
    """One line for an error body that is not OpenAI's JSON: a proxy's or a web server's."""
    text = body.strip()
    if text[:1] == "<":  # an HTML page: its title, if it has one, never the whole page
        title = _HTML_TITLE.search(text)
        named = f" ({' '.join(title.group(1).split())[:80]!r})" if title else ""
        return (
            f"the server answered with an HTML page{named}, not an OpenAI-style error: is "
            "base_url an OpenAI-compatible API (it usually ends in /v1)?"
        )
    return " ".join(text.split())[:300] or "no error message"


class SSEDecoder:
    """Incremental ``text/event-stream`` decoder: feed lines, get complete ``data`` payloads."""

    def __init__(self) -> None:
        self._data: list[str] = []
        self._event: str | None = None

    def feed_line(self, line: str) -> tuple[str | None, str] | None:
        """Returns ``(event name, data)`` when *line* completes an event, else ``None``."""
        line = line.rstrip("\r\n")
        if not line:
            if not self._data:
                self._event = None
                return None
            data, event = "\n".join(self._data), self._event
            self._data, self._event = [], None
            return event, data
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        return None

    def flush(self) -> tuple[str | None, str] | None:
        """The event in progress when the stream ended without a blank line."""
        return self.feed_line("")


def parse_sse_data(data: str) -> TranscriptStreamEvent | None:
    """One SSE ``data:`` payload -> a typed event; ``None`` for ``[DONE]`` and unknown types.

    An ``error`` object inside the stream raises :class:`~trio_stt.APIStatusError` (status 200
    because the headers said so), as openai-python does.
    """
    if data.strip() == "[DONE]":
        return None
    obj = load_json(data, "transcription stream event")
    if isinstance(obj, Mapping) and "error" in obj:
        message, code, etype, param = parse_error_body(data)
        raise APIStatusError(message, status_code=200, code=code, type=etype, param=param)
    kind = obj.get("type") if isinstance(obj, Mapping) else None
    if not isinstance(kind, str) or kind not in _STREAM_EVENTS:
        return None  # a kind this version does not know
    fields = Fields.root(obj, f"transcription stream event {kind!r}")
    if kind == "transcript.text.delta":
        return TranscriptTextDelta(
            delta=fields.text("delta"),
            logprobs=logprobs_from(fields),
            segment_id=fields.optional_text("segment_id"),
        )
    if kind == "transcript.text.segment":
        return TranscriptTextSegment(segment_from(fields))
    return _done_from(fields)


def parse_plain_stream_body(body: str) -> TranscriptTextDone:
    """A ``stream=true`` request answered with a plain JSON body, as one final event.

    OpenAI does this for whisper-1, and some compatible servers (faster-whisper-server) for
    every model: the text is all there, just not as server-sent events.
    """
    obj = load_json(body, "transcription (a plain body where a stream was asked for)")
    if not isinstance(obj, Mapping):
        raise RemoteProtocolError(
            f"a stream request was answered with JSON that is not an object: {body[:80]!r}"
        )
    return _done_from(Fields.root(obj, "transcription (a plain body for a stream request)"))


def _done_from(fields: Fields) -> TranscriptTextDone:
    return TranscriptTextDone(
        text=fields.text("text"),
        logprobs=logprobs_from(fields),
        usage=usage_from(fields),
        languages=languages_from(fields),
    )


_STREAM_EVENTS = frozenset(
    {"transcript.text.delta", "transcript.text.segment", "transcript.text.done"}
)
