"""The OpenAI-compatible ASGI application: REST transcription and the realtime WebSocket.

It is a bare ASGI callable (no framework) so that what goes over the wire is exactly what we
write: OpenAI's bodies, status codes, content types and error shapes, including the quirks
clients must survive (a 401 whose JSON body is labelled ``text/plain``).
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import trio

from .._audio import to_mono_int16
from .._audio_files import read_audio
from .._errors import AudioFormatError
from .._rest import AUDIO_CONTENT_TYPES, MAX_BODY_BYTES
from .._settings import MODEL_CAPABILITIES
from ._client_secrets import MintedSecret, SecretStore, mint_answer, read_mint_request
from ._decode import header_refusal, too_long
from ._formats import CONTENT_TYPES, error_body, render_transcription, sse_events
from ._multipart import MultipartError, parse_multipart
from ._pocketsphinx import PocketSphinxRecognizer
from ._recognizers import Recognition, Recognizer
from ._strict import (
    check_transcription_request,
    model_not_found,
    model_object,
    models_listing,
)
from ._workers import RecognitionPool, WorkerFailed

__all__ = ["ServerConfig", "RestFault", "RecordedRequest", "STTServerApp"]

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

logger = logging.getLogger("trio_stt.server")
_FORMATS = frozenset(CONTENT_TYPES)
MAX_MINT_BODY_BYTES = 64 * 1024  # a session configuration; keywords and prompt included


@dataclass
class ServerConfig:
    """How the local server behaves.

    Attributes:
        recognizer: turns audio into text: PocketSphinx by default (real, offline speech
            recognition); a :class:`ScriptedRecognizer` for tests that need fixed answers.
        api_key: when set, requests must carry ``Authorization: Bearer <api_key>``.
        max_body_bytes: REST bodies over this get OpenAI's 413, before they are read when
            their ``Content-Length`` says so.
        max_audio_seconds: the longest file decoded for a model without a cap of its own
            (``whisper-1``; the gpt-4o family's is OpenAI's 1400 s), judged from the header
            before decoding.
        body_timeout: seconds a REST body may take to arrive, all of it; a slower one (a
            client trickling bytes to hold a connection) gets 408.
        max_message_bytes: realtime messages over this close the socket with 1009.
        max_sessions: concurrent realtime sessions; more are refused at the handshake.
        workers: recognitions that run at once, each in a worker process (default: the
            core count); more wait for a slot.
        record: keep what every client sent (``STTServerApp.requests``,
            ``RealtimeEndpoint.sessions``), for tests' assertions. Off by default, so a
            long-running server's memory stays flat; ``trio_stt.testing`` turns it on.
        lenient: accept what OpenAI refuses (misspelled keys, options a model does not
            take, unknown models, the Beta event name on a GA connection, a URL without
            ``intent=transcription``). Off by default: what works here works on OpenAI.
    """

    recognizer: Recognizer = field(default_factory=PocketSphinxRecognizer)
    api_key: str | None = field(default=None, repr=False)
    max_body_bytes: int = MAX_BODY_BYTES
    max_audio_seconds: float = 1400.0
    body_timeout: float = 60.0
    max_message_bytes: int = 16 * 1024 * 1024
    max_sessions: int = 64
    workers: int | None = None
    record: bool = False
    lenient: bool = False


@dataclass
class RestFault:
    """Make the next REST request fail: an error status, or never answer (``hang``)."""

    status: int = 500
    code: str | None = None
    message: str = "The server had an error while processing your request."
    type: str = "server_error"
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False


@dataclass(frozen=True)
class RecordedRequest:
    """One REST request as the server parsed it (for assertions in tests)."""

    fields: dict[str, list[str]]
    filename: str | None
    file_bytes: int
    headers: dict[str, str] = field(repr=False)
    path: str = ""
    query: str = field(default="", repr=False)  # may carry a key (Azure's api-key=)


def _request_id() -> bytes:
    """A fresh ``x-request-id``, shaped like OpenAI's, so logs can tell requests apart."""
    return b"req_" + secrets.token_hex(16).encode()


async def _send_body(
    send: Send, status: int, body: str, content_type: str, headers: dict[str, str] | None = None
) -> None:
    raw = body.encode()
    head = [(b"content-type", content_type.encode()), (b"x-request-id", _request_id())]
    head += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": raw})


async def _send_error(
    send: Send,
    status: int,
    message: str,
    *,
    type: str = "invalid_request_error",
    code: str | None = None,
    param: str | None = None,
    headers: dict[str, str] | None = None,
    content_type: str = "application/json",
) -> None:
    await _send_body(
        send, status, error_body(message, type=type, code=code, param=param), content_type, headers
    )


class STTServerApp:
    """ASGI app serving ``POST /v1/audio/transcriptions`` and ``/v1/realtime``.

    Test hooks: append :class:`RestFault` objects to :attr:`rest_faults` to fail the next
    requests; :attr:`requests` records what arrived; :attr:`realtime` is the realtime
    endpoint with its own hooks.
    """

    def __init__(self, config: ServerConfig | None = None) -> None:
        from ._realtime import RealtimeEndpoint  # the realtime side needs the app's config

        self.config = config or ServerConfig()
        self.rest_faults: list[RestFault] = []
        self.requests: list[RecordedRequest] = []
        self.request_started = trio.Event()
        self.client_disconnected = trio.Event()
        self.pool = RecognitionPool(self.config.workers)
        self.realtime = RealtimeEndpoint(self.config, self.pool)
        self.secrets = SecretStore()

    def __repr__(self) -> str:
        return f"<STTServerApp recognizer={type(self.config.recognizer).__name__}>"

    def authorized(self, headers: dict[str, str]) -> bool:
        """Whether the request carries the API key, as OpenAI's ``Authorization: Bearer`` or
        as Azure's ``api-key`` header. A client secret is not a key."""
        given = headers.get("authorization", "")
        if given.startswith("Bearer ek_"):
            return False
        if self.config.api_key is None:
            return True
        if "api-key" in headers:
            return hmac.compare_digest(headers["api-key"].encode(), self.config.api_key.encode())
        return hmac.compare_digest(given.encode(), f"Bearer {self.config.api_key}".encode())

    def realtime_credential(self, headers: dict[str, str]) -> tuple[bool, MintedSecret | None]:
        """``(authorized, secret)`` for a handshake: the key, or a live client secret, which
        is used up by this session."""
        given = headers.get("authorization", "")
        if given.startswith("Bearer ek_"):
            secret = self.secrets.redeem(given.removeprefix("Bearer "))
            return secret is not None, secret
        return self.authorized(headers), None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(receive, send)
            return
        path = scope.get("path", "").rstrip("/")
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if kind == "websocket":
            if path.endswith("/realtime"):
                authorized, secret = self.realtime_credential(headers)
                await self.realtime.handle(scope, receive, send, authorized, secret)
            else:
                await receive()
                await send({"type": "websocket.close", "code": 1008})
            return
        if path.endswith("/health") and scope["method"] == "GET":
            await _send_body(send, 200, '{"status":"ok"}', "application/json")
        elif "/models" in path and scope["method"] == "GET":
            if self.authorized(headers):  # OpenAI lists nothing to a wrong key either
                await self._models(path, send)
            else:
                await self._refuse_key(headers, send)
        elif path.endswith("/realtime/client_secrets") and scope["method"] == "POST":
            await self._mint_client_secret(headers, receive, send)
        elif path.endswith("/audio/transcriptions"):
            if scope["method"] != "POST":
                await _send_error(send, 405, f"Method {scope['method']} not allowed")
            else:
                await self._transcriptions(scope, headers, receive, send)
        else:
            await _send_error(
                send, 404, f"Invalid URL ({scope['method']} {path})", code="unknown_url"
            )

    async def _models(self, path: str, send: Send) -> None:
        """``GET /v1/models`` and ``GET /v1/models/{id}``, which OpenAI clients probe."""
        name = path.split("/models", 1)[1].strip("/")
        if not name:
            await _send_body(send, 200, json.dumps(models_listing()), "application/json")
        elif name in MODEL_CAPABILITIES:
            await _send_body(send, 200, json.dumps(model_object(name)), "application/json")
        else:
            missing = model_not_found(name)
            await _send_error(send, missing.status, missing.message, code=missing.code)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _read_body(
        self, receive: Receive, send: Send, limit: int, headers: dict[str, str]
    ) -> bytes | None:
        """The body; or ``None`` with the refusal sent: OpenAI's 413 once it passes *limit*
        (at once when ``Content-Length`` says it will), 408 when it is slower to arrive
        than ``body_timeout``."""
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await _send_error(send, 413, f"Maximum content size limit ({limit}) exceeded "
                              f"({declared} bytes declared)", type="server_error")  # fmt: skip
            return None
        chunks, size = [], 0
        with trio.move_on_after(self.config.body_timeout):
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return b""
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    too_big = f"Maximum content size limit ({limit}) exceeded ({size} bytes read)"
                    await _send_error(send, 413, too_big, type="server_error")
                    return None
                chunks.append(chunk)
                if not message.get("more_body", False):
                    return b"".join(chunks)
        await _send_error(send, 408, f"The request body did not arrive within "
                          f"{self.config.body_timeout:g} seconds ({size} bytes came).")  # fmt: skip
        return None

    async def _refuse_key(self, headers: dict[str, str], send: Send) -> None:
        given = headers.get("authorization", "").removeprefix("Bearer ").strip()
        masked = (given[:3] + "****" + given[-4:]) if len(given) > 8 else "****"
        # OpenAI really sends this JSON labelled text/plain; clients must cope.
        await _send_error(
            send,
            401,
            f"Incorrect API key provided: {masked}.",
            code="invalid_api_key",
            content_type="text/plain",
        )

    async def _mint_client_secret(
        self, headers: dict[str, str], receive: Receive, send: Send
    ) -> None:
        from ._realtime import update_refusal

        if not self.authorized(headers):
            await self._refuse_key(headers, send)
            return
        body = await self._read_body(receive, send, MAX_MINT_BODY_BYTES, headers)
        if body is None:
            return
        checked = not self.config.lenient
        asked = read_mint_request(body, partial(update_refusal, checked=checked))
        if not isinstance(asked, tuple):
            await _send_error(send, 400, asked.message, code=asked.code, param=asked.param)
            return
        config, session, seconds = asked
        minted = self.secrets.mint(config, seconds)
        if minted is None:
            await _send_error(send, 429, "Too many unused client secrets; use or let some "
                              "expire first.", code="rate_limit_exceeded")  # fmt: skip
            return
        await _send_body(send, 200, mint_answer(minted, session), "application/json")

    async def _transcriptions(
        self, scope: Scope, headers: dict[str, str], receive: Receive, send: Send
    ) -> None:
        if not self.authorized(headers):
            await self._refuse_key(headers, send)
            return
        body = await self._read_body(receive, send, self.config.max_body_bytes, headers)
        if body is None:
            return
        self.request_started.set()
        if self.rest_faults:
            fault = self.rest_faults.pop(0)
            if fault.hang:
                await self._hang(receive)
                return
            await _send_error(
                send,
                fault.status,
                fault.message,
                type=fault.type,
                code=fault.code,
                headers=fault.headers,
            )
            return
        try:
            form = parse_multipart(body, headers.get("content-type", ""))
        except MultipartError as exc:
            await _send_error(send, 400, str(exc), code="invalid_value")
            return
        upload = form.files.get("file")
        if self.config.record:
            self.requests.append(
                RecordedRequest(
                    dict(form.fields),
                    upload.filename if upload else None,
                    len(upload.data) if upload else 0,
                    headers,
                    scope.get("path", ""),
                    scope.get("query_string", b"").decode("latin-1"),
                )
            )
        async with trio.open_nursery() as nursery:
            # A client that leaves mid-decode (Ctrl-C) takes its decode with it: the worker
            # is stopped and its slot is free for the next request at once.
            nursery.start_soon(self._hang, receive, nursery.cancel_scope)
            await self._answer(form, upload, send)
            nursery.cancel_scope.cancel()

    async def _hang(self, receive: Receive, scope: trio.CancelScope | None = None) -> None:
        """Wait for the client to close the connection, then cancel *scope*."""
        while (await receive())["type"] != "http.disconnect":
            pass
        self.client_disconnected.set()
        if scope is not None:
            scope.cancel()

    async def _answer(self, form: Any, upload: Any, send: Send) -> None:
        model = form.get("model")
        if not model:
            await _send_error(send, 400, "you must provide a model parameter", param="model")
            return
        if upload is None:
            await _send_error(send, 400, "you must provide a file parameter", param="file")
            return
        ext = upload.filename.rsplit(".", 1)[-1].lower() if "." in upload.filename else ""
        if ext not in AUDIO_CONTENT_TYPES:
            await _send_error(
                send,
                400,
                f"Unsupported file format {ext or upload.filename}",
                code="unsupported_value",
                param="file",
            )
            return
        fmt = form.get("response_format") or "json"
        if fmt not in _FORMATS:
            await _send_error(
                send, 400, f"Invalid value: '{fmt}'.", code="invalid_value", param="response_format"
            )
            return
        include = form.get_list("include")
        refusal = None if self.config.lenient else check_transcription_request(model, fmt, include)
        if refusal is not None:
            await _send_error(
                send, refusal.status, refusal.message, code=refusal.code, param=refusal.param
            )
            return
        model_cap = None if self.config.lenient else MODEL_CAPABILITIES[model].max_seconds
        cap = model_cap or self.config.max_audio_seconds
        unfit = await trio.to_thread.run_sync(header_refusal, upload.data, cap)
        if unfit is not None:  # before decoding: the header alone can claim hours
            await _send_error(send, 400, unfit, code="invalid_value", param="file")
            return
        try:
            decoded = await trio.to_thread.run_sync(read_audio, upload.data)
        except AudioFormatError:
            await _send_error(
                send,
                400,
                "Audio file might be corrupted or unsupported",
                code="invalid_value",
                param="file",
            )
            return
        if decoded.duration > cap:  # a header that understated its length
            too = too_long(decoded.duration, cap)
            await _send_error(send, 400, too, code="invalid_value", param="file")
            return
        samples = to_mono_int16(decoded.frames, decoded.channels)
        try:
            recognition = await self.pool.recognize(self.config.recognizer, samples, decoded.rate)
        except WorkerFailed:
            logger.exception("recognizing %s failed", upload.filename)
            await _send_error(send, 500, "The server had an error while processing your "
                              "request.", type="server_error")  # fmt: skip
            return
        logprobs = "logprobs" in include
        streams = self.config.lenient or MODEL_CAPABILITIES[model].rest_streaming
        if form.get("stream") == "true" and streams:  # whisper-1 ignores it, as on OpenAI
            await self._stream(send, recognition, logprobs, fmt == "diarized_json", model)
            return
        body = render_transcription(
            recognition,
            fmt,
            granularities=tuple(form.get_list("timestamp_granularities")),
            logprobs=logprobs,
            speakers=tuple(form.get_list("known_speaker_names")),
            model=model,
        )
        await _send_body(send, 200, body, CONTENT_TYPES[fmt])

    async def _stream(
        self, send: Send, rec: Recognition, logprobs: bool, diarized: bool, model: str
    ) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream"),
                    (b"x-request-id", _request_id()),
                    (b"cache-control", b"no-cache"),
                ],
            }
        )
        for data in sse_events(rec, logprobs=logprobs, diarized=diarized, model=model):
            await send(
                {
                    "type": "http.response.body",
                    "body": f"data: {data}\n\n".encode(),
                    "more_body": True,
                }
            )
        await send({"type": "http.response.body", "body": b"data: [DONE]\n\n"})
