"""Transcription spans through the OpenTelemetry API (a no-op unless an SDK is installed).

One span per REST call and one per realtime turn, carrying what the Agents SDK's
``transcription_span`` carries: model, model config, input format, and - only when the caller
allows sensitive data - the output text and the input audio. With sensitive data off, error
descriptions are reduced to the exception type and code, since server messages can quote the
user's content.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode

from ._errors import redact_secrets

__all__ = ["TracingOptions", "TurnSpan", "TurnTracer", "transcription_span"]

_tracer = trace.get_tracer("trio_stt")

SPAN_NAME = "transcription"


@dataclass(frozen=True)
class TracingOptions:
    """The Agents SDK's two flags: text (transcripts, errors) and audio (base64 of what was
    sent: PCM16, or G.711 as it came)."""

    include_sensitive_data: bool = True
    include_sensitive_audio_data: bool = False


def _describe(exc: BaseException, sensitive: bool) -> str:
    code = getattr(exc, "code", None)
    label = type(exc).__name__ + (f" ({code})" if code else "")
    return redact_secrets(f"{label}: {exc}") if sensitive else label


class TurnSpan:
    """A span that is started and finished by hand (a realtime turn outlives any ``with``)."""

    def __init__(
        self,
        model: str,
        model_config: Mapping[str, Any],
        options: TracingOptions,
        input_format: str = "pcm",
    ):
        self._options = options
        self._span: Span | None = _tracer.start_span(
            SPAN_NAME,
            attributes={
                "gen_ai.operation.name": "transcription",
                "gen_ai.request.model": model,
                "trio_stt.model_config": json.dumps(dict(model_config), default=str),
                "trio_stt.input_format": input_format,
            },
        )

    @property
    def open(self) -> bool:
        return self._span is not None

    def set_input_audio(self, base64_pcm: str) -> None:
        if self._span is not None and self._options.include_sensitive_audio_data:
            self._span.set_attribute("trio_stt.input", base64_pcm)

    def set_attribute(self, key: str, value: str | int | float | bool) -> None:
        if self._span is not None:
            self._span.set_attribute(key, value)

    def finish(
        self, output: str | None = None, *, error: BaseException | str | None = None
    ) -> None:
        """End the span; idempotent, so cleanup paths may call it again."""
        span, self._span = self._span, None
        if span is None:
            return
        if output is not None and self._options.include_sensitive_data:
            span.set_attribute("trio_stt.output", output)
        if error is not None:
            if isinstance(error, BaseException):
                text = _describe(error, self._options.include_sensitive_data)
            else:
                text = redact_secrets(error) if self._options.include_sensitive_data else "failed"
            span.set_status(Status(StatusCode.ERROR, text))
        span.end()


@contextmanager
def transcription_span(
    model: str, model_config: Mapping[str, Any], options: TracingOptions
) -> Iterator[TurnSpan]:
    """A :class:`TurnSpan` for one REST call; an exception leaving the block is recorded."""
    span = TurnSpan(model, model_config, options)
    try:
        yield span
    except BaseException as exc:
        span.finish("", error=exc)
        raise
    finally:
        span.finish()


class TurnTracer:
    """One span per turn of a realtime session, like the reference's ``transcription_span``.

    A turn's span opens when the turn first shows up (speech started, committed, or its
    first delta) and finishes with its completion or failure; spans still open when the
    session ends finish with an error saying so. Audio is attached only with
    ``trace_include_sensitive_audio_data``.
    """

    def __init__(
        self,
        model: str,
        config: Mapping[str, Any],
        options: TracingOptions,
        input_format: str = "pcm",
    ) -> None:
        self._input_format = input_format  # "pcm" as the reference says, or "pcmu", "pcma"
        self._model = model
        self._config = config
        self._options = options
        self._spans: dict[str, TurnSpan] = {}
        self._audio: list[bytes] = []
        self.keeps_audio = options.include_sensitive_audio_data

    def add_audio(self, pcm: bytes) -> None:
        """Audio sent since the last commit (only called when :attr:`keeps_audio`)."""
        self._audio.append(pcm)

    def started(self, item_id: str, committed: bool = False) -> None:
        if not item_id:
            return
        span = self._spans.get(item_id)
        if span is None:
            config = {**self._config, "item_id": item_id}
            span = self._spans[item_id] = TurnSpan(
                self._model, config, self._options, self._input_format
            )
            span.set_attribute("trio_stt.item_id", item_id)
        if committed and self._audio:
            span.set_input_audio(base64.b64encode(b"".join(self._audio)).decode())
            self._audio.clear()

    def finished(self, item_id: str, text: str, error: str | None = None) -> None:
        span = self._spans.pop(item_id, None)
        if span is not None:
            span.finish(text, error=error)

    def connection_lost(self, attempt: int, cause: str) -> None:
        """The turns under way went with the connection: their spans end here, saying so
        (the audio is sent again, and its turns get spans of their own)."""
        for span in self._spans.values():
            span.set_attribute("trio_stt.reconnect_attempt", attempt)
            span.finish(error=f"connection lost ({cause}); its audio was sent again")
        self._spans.clear()

    def moved_on(self) -> None:
        """The stream moved to a new connection (rotation): speech the old one had not
        committed is transcribed on the new one, under a span of its own."""
        for span in self._spans.values():
            span.finish(error="moved to a new connection before the server's time limit")
        self._spans.clear()

    def close(self) -> None:
        for span in self._spans.values():
            span.finish(error="the session ended before this turn completed")
        self._spans.clear()
