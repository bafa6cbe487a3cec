"""``OpenAISTTModel``: the facade with the Agents SDK's names and trio-stt's extensions."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from functools import partial
from typing import TYPE_CHECKING, Any

import trio

from ._audio_input import AudioInput
from ._client_secrets import ClientSecret, client_secret_request, parse_client_secret
from ._config import ClientConfig
from ._errors import RemoteProtocolError, UploadTooLargeError
from ._http import HTTPSession
from ._long_audio import SplitOptions
from ._protocol._wire import AudioFormat, wire_format
from ._resource import AsyncClosing
from ._rest import (
    FileLike,
    SSEDecoder,
    TranscriptionRequest,
    build_transcription_request,
    parse_plain_stream_body,
    parse_sse_data,
    parse_transcription,
)
from ._results import (
    ResponseFormat,
    Transcription,
    TranscriptStreamEvent,
    TranscriptTextDelta,
    TranscriptTextDone,
)
from ._secrets import Redactor
from ._session import OpenAISTTTranscriptionSession, SessionOptions
from ._settings import STTModelSettings
from ._streamed_input import StreamedAudioInput
from ._tracing import TracingOptions, transcription_span
from ._uploads import as_uploadable as _as_uploadable
from ._uploads import is_too_long, transcribe_long_file

if TYPE_CHECKING:
    import httpx2

__all__ = ["OpenAISTTModel", "TranscriptionStream"]


def _model_config(settings: STTModelSettings, **more: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "temperature": settings.temperature,
        "language": settings.language,
        "prompt": settings.prompt,
    }
    config.update({k: v for k, v in more.items() if v is not None})
    return config


MAX_PLAIN_BODY = 16 * 1024 * 1024  # a whole transcript, not a stream: it must end somewhere


class TranscriptionStream:
    """Typed events of a streamed file transcription, in arrival order.

    Iterate it (``async for event in stream``) for :class:`TranscriptTextDelta`,
    :class:`TranscriptTextSegment` and a final :class:`TranscriptTextDone`; :attr:`text` holds
    the text so far. It is an iterator object, not an async generator, so it is safe to
    abandon mid-way: leaving the ``async with`` closes the HTTP response.

    A server that answers with a plain JSON body instead (OpenAI does for whisper-1, some
    compatible servers always do) yields its text as one :class:`TranscriptTextDone`. A
    stream that ends without its done event raises :class:`RemoteProtocolError`: the text
    so far may be cut short, and silence would pass it off as whole.
    """

    def __init__(
        self,
        lines: AsyncIterator[str],
        request_id: str | None,
        redactor: Redactor,
        *,
        plain_body: bool = False,
    ) -> None:
        self._lines = lines
        self._redactor = redactor
        self._decoder = SSEDecoder()
        self._plain_body = plain_body
        self._ended = False
        self.request_id = request_id
        self.text = ""
        self.done: TranscriptTextDone | None = None
        self._incomplete_reported = False

    def __repr__(self) -> str:
        return f"<TranscriptionStream request_id={self.request_id!r} done={self.done is not None}>"

    def __aiter__(self) -> TranscriptionStream:
        return self

    async def __anext__(self) -> TranscriptStreamEvent:
        with self._redactor.guard():
            return await self._next()

    async def _next(self) -> TranscriptStreamEvent:
        await trio.lowlevel.checkpoint()
        if self._plain_body and not self._ended:
            self._ended = True
            done = parse_plain_stream_body(await self._whole_body())
            self.text, self.done = done.text, done
            return done
        while not self._ended:
            try:
                line = await anext(self._lines)
                complete = self._decoder.feed_line(line)
            except StopAsyncIteration:
                self._ended = True
                complete = self._decoder.flush()
            if complete is None:
                continue
            event_name, data = complete
            if event_name == "error":
                data = data if '"error"' in data else json.dumps({"error": {"message": data}})
            event = parse_sse_data(data)
            if event is None:
                continue
            if isinstance(event, TranscriptTextDone):
                self.text, self.done = event.text, event
            elif isinstance(event, TranscriptTextDelta):
                self.text += event.delta
            return event
        if self.done is None and not self._incomplete_reported:
            self._incomplete_reported = True
            raise RemoteProtocolError(
                "the transcription stream ended without its transcript.text.done event "
                f"({len(self.text)} characters of text had come)"
            )
        raise StopAsyncIteration

    async def _whole_body(self) -> str:
        lines, size = [], 0
        async for line in self._lines:
            size += len(line) + 1
            if size > MAX_PLAIN_BODY:
                raise RemoteProtocolError(
                    f"a plain transcription body over {MAX_PLAIN_BODY:,} characters"
                )
            lines.append(line)
        return "\n".join(lines)


class OpenAISTTModel(AsyncClosing):
    """A speech-to-text model: file transcription over HTTP, live transcription over WebSocket.

    ``OpenAISTTModel("gpt-transcribe")`` reads ``OPENAI_API_KEY`` and friends from the
    environment; pass ``config=ClientConfig(...)`` (or keyword overrides such as
    ``base_url=``) to point it elsewhere. Use it as ``async with`` to close the pooled HTTP
    connections it opens; an ``http_client`` passed in stays open, it is yours.
    """

    def __init__(
        self,
        model: str,
        config: ClientConfig | None = None,
        *,
        http_client: httpx2.AsyncClient | None = None,
        **overrides: Any,
    ) -> None:
        if config is None:
            config = ClientConfig.from_env(**overrides)
        elif overrides:
            config = config.with_options(**overrides)
        self.model = model
        self.config = config
        self._http = HTTPSession(config, http_client)

    def __repr__(self) -> str:
        return f"OpenAISTTModel({self.model!r}, base_url={self.config.base_url!r})"

    @property
    def model_name(self) -> str:
        return self.model

    async def aclose(self) -> None:
        """Close pooled HTTP connections (a borrowed client is left open). Idempotent."""
        await self._http.aclose()

    # ---------------------------------------------------------------- file transcription

    async def transcribe(
        self,
        input: AudioInput,
        settings: STTModelSettings | None = None,
        *,
        trace_include_sensitive_data: bool = True,
        trace_include_sensitive_audio_data: bool = False,
    ) -> str:
        """Transcribe a recording and return its text (the Agents SDK's call).

        Raises:
            APIStatusError: (a subclass per status) when the server refuses.
            APIConnectionError: when no exchange happened after the retries.
            UploadTooLargeError: before sending, when the body would pass 25 MB.
        """
        result = await self.transcribe_file(
            input,
            settings,
            trace_include_sensitive_data=trace_include_sensitive_data,
            trace_include_sensitive_audio_data=trace_include_sensitive_audio_data,
        )
        return result.text

    async def transcribe_file(
        self,
        file: FileLike,
        settings: STTModelSettings | None = None,
        *,
        filename: str | None = None,
        response_format: ResponseFormat | None = None,
        timestamp_granularities: Iterable[str] | None = None,
        chunking_strategy: str | Mapping[str, Any] | None = None,
        known_speaker_names: Sequence[str] | None = None,
        known_speaker_references: Sequence[str] | None = None,
        trace_include_sensitive_data: bool = True,
        trace_include_sensitive_audio_data: bool = False,
        split: SplitOptions | None = None,
    ) -> Transcription:
        """Transcribe a file (path, bytes or :class:`AudioInput`) in any response format.

        The file's extension tells the server its format (the API trusts it), so bytes are
        assumed to be WAV unless ``filename`` says otherwise. A format the API does not take
        (AIFF, Opus, ...) is converted to FLAC first.

        A file over the 25 MB request limit, or longer than the model accepts, is cut at
        silences and sent in pieces, a few at a time; the answers are stitched back on the
        original timeline (see :class:`SplitOptions`, which also reports progress).

        Raises:
            PieceError: when a piece of a split file still fails after its retries.
            UploadTooLargeError: over the limit with splitting off, or not decodable.
        """
        settings = settings or STTModelSettings()
        split = split or SplitOptions()
        file, filename = await _as_uploadable(file, filename)
        build = partial(
            build_transcription_request,
            self.model,
            file,
            settings,
            filename=filename,
            response_format=response_format,
            timestamp_granularities=timestamp_granularities,
            chunking_strategy=chunking_strategy,
            known_speaker_names=known_speaker_names,
            known_speaker_references=known_speaker_references,
            wire_model=self.config.wire_model(self.model),
        )
        one_piece = partial(
            self.transcribe_file,
            settings=settings,
            response_format=response_format,
            timestamp_granularities=timestamp_granularities,
            chunking_strategy=chunking_strategy,
            known_speaker_names=known_speaker_names,
            known_speaker_references=known_speaker_references,
            trace_include_sensitive_data=trace_include_sensitive_data,
            split=SplitOptions(enabled=False),
        )
        pieces_by = (one_piece, response_format or "json")
        try:
            request = build()
        except UploadTooLargeError:
            if not split.enabled:
                raise
            return await transcribe_long_file(self.model, file, settings, split, *pieces_by)
        if split.enabled and await is_too_long(self.model, file, split):
            return await transcribe_long_file(self.model, file, settings, split, *pieces_by)
        options = TracingOptions(trace_include_sensitive_data, trace_include_sensitive_audio_data)
        with (
            transcription_span(
                self.model,
                _model_config(settings, response_format=request.response_format),
                options,
            ) as span,
            self.config.redactor.guard(),
        ):
            if isinstance(file, AudioInput):
                span.set_input_audio(file.to_base64())
            result = await self._http.post(
                self.config.rest_url("audio/transcriptions", self.model),
                content=request.body,
                headers=await self._headers(request),
            )
            if result.request_id:
                span.set_attribute("trio_stt.request_id", result.request_id)
            transcription = parse_transcription(
                result.text, request.response_format, result.request_id
            )
            span.finish(transcription.text)
            return transcription

    def stream_transcription(
        self,
        file: FileLike,
        settings: STTModelSettings | None = None,
        *,
        filename: str | None = None,
        chunking_strategy: str | Mapping[str, Any] | None = None,
        trace_include_sensitive_data: bool = True,
        trace_include_sensitive_audio_data: bool = False,
    ) -> AbstractAsyncContextManager[TranscriptionStream]:
        """Transcribe a file with ``stream=true``; an async context manager of typed events.

        Example:
            ```python
            async with model.stream_transcription("talk.wav") as stream:
                async for event in stream:
                    ...
            ```
        """
        settings = settings or STTModelSettings()
        request = build_transcription_request(
            self.model,
            file,
            settings,
            filename=filename,
            chunking_strategy=chunking_strategy,
            stream=True,
            wire_model=self.config.wire_model(self.model),
        )
        options = TracingOptions(trace_include_sensitive_data, trace_include_sensitive_audio_data)
        return self._open_stream(request, settings, options)

    @asynccontextmanager
    async def _open_stream(
        self, request: TranscriptionRequest, settings: STTModelSettings, options: TracingOptions
    ) -> AsyncIterator[TranscriptionStream]:
        redactor = self.config.redactor
        with (
            transcription_span(self.model, _model_config(settings, stream=True), options) as span,
            redactor.guard(),
        ):
            async with self._http.stream_lines(
                self.config.rest_url("audio/transcriptions", self.model),
                content=request.body,
                headers=await self._headers(request),
            ) as (result, lines):
                content_type = result.headers.get("content-type", "")
                plain = not content_type.startswith("text/event-stream")
                stream = TranscriptionStream(lines, result.request_id, redactor, plain_body=plain)
                yield stream
            span.finish(stream.text)

    # ---------------------------------------------------------------- live transcription

    async def create_client_secret(
        self,
        settings: STTModelSettings | None = None,
        *,
        expires_after: float = 600,
        audio_format: AudioFormat = "audio/pcm",
    ) -> ClientSecret:
        """Mint a short-lived secret for one transcription session of this model.

        Hand ``secret.value`` to a browser or a phone in place of the API key: it opens one
        session, configured by *settings* as :meth:`create_session` would configure it, until
        *expires_after* seconds (10 to 7200) have passed. The key stays with you.

        Example:
            ```python
            secret = await model.create_client_secret(STTModelSettings(language="en"))
            # the browser connects with Authorization: Bearer <secret.value>
            ```

        Raises:
            ConfigurationError: *settings* the model is known to reject, or *expires_after*
                out of bounds (before anything is sent).
            APIStatusError: the server refused (a bad configuration is a 400).
        """
        body = client_secret_request(
            self.model,
            settings or STTModelSettings(),
            expires_after,
            wire_format(audio_format),
            wire_model=self.config.wire_model(self.model),
        )
        with self.config.redactor.guard():
            headers = await self.config.credential_headers()
            headers["Content-Type"] = "application/json"
            result = await self._http.post(
                self.config.rest_url("realtime/client_secrets"), content=body, headers=headers
            )
            return parse_client_secret(result.text)

    def create_session(
        self,
        input: StreamedAudioInput,
        settings: STTModelSettings | None = None,
        *,
        trace_include_sensitive_data: bool = True,
        trace_include_sensitive_audio_data: bool = False,
        options: SessionOptions | None = None,
    ) -> AbstractAsyncContextManager[OpenAISTTTranscriptionSession]:
        """A live transcription session over the Realtime WebSocket.

        The session is connected and configured when the block is entered, and nothing it
        started outlives the block. See :class:`OpenAISTTTranscriptionSession`.

        Example:
            ```python
            audio = StreamedAudioInput()
            async with model.create_session(audio) as session:
                async for text in session.transcribe_turns():
                    ...
            ```

        Raises:
            ConfigurationError: *settings* that the model is known to reject (early).
            STTWebsocketConnectionError: on entry or exit, when the session fails.
        """
        session = OpenAISTTTranscriptionSession(
            self.model,
            self.config,
            input,
            settings or STTModelSettings(),
            TracingOptions(trace_include_sensitive_data, trace_include_sensitive_audio_data),
            options or SessionOptions(),
        )
        return session._run()

    async def _headers(self, request: TranscriptionRequest) -> dict[str, str]:
        headers = await self.config.credential_headers()
        headers["Content-Type"] = request.content_type
        if request.stream:
            headers["Accept"] = "text/event-stream"
            headers["Accept-Encoding"] = "identity"  # lines are read from the raw body
        return headers
