"""The ``/v1/realtime`` endpoint: a transcription session per WebSocket, both dialects.

A thin shell around :class:`RealtimeServerConnection`: it reads ASGI WebSocket messages,
feeds the core, runs server VAD when the session asks for it, and transcribes each committed
item in a task of the connection's nursery (so completions of different turns may overlap,
as on OpenAI). :class:`RealtimeFaults` bends the behaviour for tests.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import numpy as np
import trio

from .._errors import RemoteProtocolError
from .._protocol import (
    BYTES_PER_MS,
    PCM,
    WIRE_FORMATS,
    AudioAppend,
    ClearRequest,
    CommitRequest,
    RealtimeServerConnection,
    SessionUpdateRequest,
    WireFormat,
)
from .._protocol._dialects import Dialect
from .._protocol._server import MalformedClientEvent
from .._results import Logprob
from .._settings import MODEL_CAPABILITIES
from .._untrusted import load_json
from ._client_secrets import MintedSecret
from ._formats import languages
from ._partials import PARTIAL_EVERY_MS, PartialTurn
from ._recognizers import RecognizedWord
from ._strict import CONVERSATION_SESSION, Refusal, check_event_type, check_update, check_url
from ._upsample import Upsampler
from ._vad import EnergyVAD
from ._workers import RecognitionPool, WorkerFailed

__all__ = ["RealtimeEndpoint", "RealtimeFaults", "RecordedSession"]

logger = logging.getLogger("trio_stt.server")
SESSION_SECONDS = 3600.0  # OpenAI's cap; `expires_at` says when
Message = dict[str, Any]
Send = Callable[[Message], Awaitable[None]]
Receive = Callable[[], Awaitable[Message]]


@dataclass
class RealtimeFaults:
    """Ways to make the next realtime sessions misbehave (shared by all of them).

    Counts of appends are per session. Item ordinals are 1-based, in commit order.
    """

    session_created_delay: float = 0.0
    drop_session_created: bool = False
    drop_session_updated: bool = False
    answer_updates: int | None = None
    """Answer only the first N ``session.update`` events of each session, and none after:
    a compatible server that never answers the empty update clients end their input with."""
    reject_update: tuple[str, str] | None = None
    error_after_appends: tuple[int, str, str] | None = None
    close_after_appends: tuple[int, int, str] | None = None
    malformed_after_appends: int | None = None
    raw_after_appends: tuple[int, str] | None = None
    oversized_after_appends: tuple[int, int] | None = None
    hold_completions: int = 0
    fail_items: frozenset[int] = frozenset()
    completion_delay: float = 0.0
    never_complete: bool = False
    stall_reads_after_update: bool = False
    drops: list[tuple[int, int]] = field(default_factory=list)
    """Connections to cut, an entry per connection in turn: ``(appends, close_code)``
    closes the next connection to receive audio with that code after that many appends
    (replayed audio counts). What a connection was sent is forgotten with it, as on
    OpenAI. On a socket the code must be one that may be sent (1001, 1011, 1012, 1013);
    1006, a socket that died without a close, exists only through ``FakeServer.connector``."""
    cut_mid_transcript: list[tuple[int, int]] = field(default_factory=list)
    """Connections to cut while a transcript is under way, an entry per connection in turn:
    ``(item, close_code)`` closes the next connection to transcribe its *item*-th turn
    after that turn's deltas and before its completion. Same close codes as ``drops``."""
    refuse_connections: int = 0
    """Refuse the next K WebSocket handshakes with HTTP 503, as a restarting server does."""
    ignore_pings: bool = False
    """Leave pings unanswered, as a half-open connection does. Only through
    ``FakeServer.connector``: on a socket, the server's WebSocket layer answers them."""
    expire_after: float | None = SESSION_SECONDS
    """Seconds after ``session.created`` at which a session ends, as OpenAI's do after 60
    minutes: a ``session_expired`` error, then a close with 1001. ``None``: never."""
    announce_expiry: bool = True
    """Say when in ``session.created`` (``expires_at``, Unix seconds), as OpenAI does."""
    keep_audio: bool = False
    """Not a fault: keep every audio byte each session is sent (``RecordedSession.audio``)."""


@dataclass
class RecordedSession:
    """What one client sent, for assertions: every event, audio replaced by its length."""

    path: str
    query: str
    headers: dict[str, str] = field(repr=False)
    dialect: str = "ga"
    client_events: list[dict[str, Any]] = field(default_factory=list)
    audio_bytes: int = 0
    audio: bytearray | None = field(default=None, repr=False)
    """Every audio byte as it came, when the server was told to keep them
    (``keep_audio``): to check that a replay sent the same bytes again."""
    audio_started: trio.Event = field(default_factory=trio.Event, repr=False)
    """Set when the first audio arrives: the client is streaming."""

    def events_of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.client_events if e.get("type") == kind]


def _logprob(word: RecognizedWord) -> Logprob:
    return Logprob(word.word, word.logprob, tuple(word.word.encode()))


def update_refusal(
    event: SessionUpdateRequest, current_model: str | None, *, checked: bool
) -> Refusal | None:
    """What OpenAI answers a session configuration it will not take, or ``None``.

    Shared by ``session.update`` and the minting of client secrets, which validates the
    configuration it carries the same way. *checked* applies OpenAI's strict rules.
    """
    problem, config = event.problem, event.config
    if problem is not None:
        code = (
            "missing_required_parameter" if problem.startswith("Missing")
            else "unknown_parameter" if problem.startswith("Unknown")
            else "invalid_parameter"
        )  # fmt: skip
        return Refusal(problem, code)
    if checked and (refusal := check_update(event.raw, current_model)):
        return refusal
    if config.turn_detection is not None and not _takes_vad(config.model):
        return Refusal(
            "Turn detection is not supported for this transcription model.",
            "invalid_value",
            "session.audio.input.turn_detection",
        )
    if config.audio_format not in WIRE_FORMATS or (
        config.audio_format == PCM.name and config.sample_rate != PCM.sample_rate
    ):
        return Refusal(
            "Only 24kHz PCM audio (audio/pcm) and G.711 (audio/pcmu, audio/pcma) are "
            "supported by this server.",
            "invalid_value",
            "session.audio.input.format",
        )
    return None


def _takes_vad(model: str | None) -> bool:
    caps = MODEL_CAPABILITIES.get(model or "")
    return caps is None or caps.server_vad


class RealtimeEndpoint:
    def __init__(self, config: Any, pool: RecognitionPool | None = None) -> None:
        self.config = config
        self.pool = pool or RecognitionPool(config.workers)
        self.faults = RealtimeFaults()
        self.sessions: list[RecordedSession] = []
        """Every session, as the client opened it, when ``config.record`` says to keep them."""
        self.active = 0
        self.opened = 0  # sessions ever accepted: their ids
        self.session_started = trio.Event()
        self._idle = trio.Event()
        self._idle.set()

    async def wait_idle(self) -> None:
        """Wait until no realtime connection is open."""
        await self._idle.wait()

    async def handle(
        self,
        scope: Message,
        receive: Receive,
        send: Send,
        authorized: bool,
        secret: MintedSecret | None = None,
    ) -> None:
        # The slot is taken before the first await: concurrent handshakes cannot all see
        # room for one more and all be accepted.
        if self.active >= self.config.max_sessions:
            await receive()
            await send({"type": "websocket.close", "code": 1013})  # refused: HTTP 403
            return
        self.active += 1
        self.opened += 1
        if self._idle.is_set():
            self._idle = trio.Event()
        try:
            await self._accept(scope, receive, send, authorized, secret)
        finally:
            self.active -= 1
            if self.active == 0:
                self._idle.set()

    async def _accept(
        self,
        scope: Message,
        receive: Receive,
        send: Send,
        authorized: bool,
        secret: MintedSecret | None,
    ) -> None:
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        if self.faults.refuse_connections > 0:
            self.faults.refuse_connections -= 1
            await _deny(send, 503, "the server is restarting")
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        dialect: Dialect = "beta" if "realtime=v1" in headers.get("openai-beta", "") else "ga"
        recording = self.config.record
        record = RecordedSession(
            scope.get("path", ""),
            scope.get("query_string", b"").decode("latin-1"),
            headers if recording else {},
            dialect,
            audio=bytearray() if self.faults.keep_audio else None,
        )
        if recording:
            self.sessions.append(record)
        await send({"type": "websocket.accept"})
        await _Connection(self, record, send, secret).run(receive, authorized)


async def _deny(send: Send, status: int, text: str) -> None:
    """Refuse a handshake with an HTTP status (ASGI's ``websocket.http.response``)."""
    body = json.dumps({"error": {"message": text, "type": "server_error", "code": None}})
    await send(
        {
            "type": "websocket.http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "websocket.http.response.body", "body": body.encode()})


class _Connection:
    def __init__(
        self,
        endpoint: RealtimeEndpoint,
        record: RecordedSession,
        send: Send,
        secret: MintedSecret | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.faults = endpoint.faults
        self.record = record
        self._send_raw = send
        self._lock = trio.Lock()
        self.core = RealtimeServerConnection(
            dialect=record.dialect,  # type: ignore[arg-type]
            session_id=f"sess_{endpoint.opened:04d}",
            max_message_bytes=endpoint.config.max_message_bytes,
            expires_at=(
                int(time.time() + self.faults.expire_after)
                if self.faults.expire_after is not None and self.faults.announce_expiry
                else None
            ),
        )
        self.audio_format: WireFormat = PCM  # what the client appends, until it says otherwise
        self.upsampler: Upsampler | None = None  # made at the first G.711 append
        self.vad: EnergyVAD | None = None
        self.vad_item: str | None = None
        self.partial: PartialTurn | None = None  # the turn being spoken, under server VAD
        self.spoken: dict[str, PartialTurn] = {}  # committed turns whose partials were sent
        self.appends = 0
        self.updates = 0  # session.update events received
        self.drop: tuple[int, int] | None = None  # taken from faults.drops at the first append
        self.commits = 0
        self.held: list[str] = []
        self.closed = False
        self.strict = not endpoint.config.lenient
        # What OpenAI refuses is refused on GA connections (Beta is served as it was).
        self.checked = self.strict and record.dialect == "ga"
        # OpenAI opens a conversation session for `?model=` or no intent: it refuses our updates
        secret_named = secret is not None
        self.conversation = self.checked and not check_url(record.query, client_secret=secret_named)
        if secret is not None:  # the session starts as the secret configured it
            self.core.config = secret.config
            if secret.config.turn_detection:
                self.vad = EnergyVAD(secret.config.turn_detection, end_after_silence=self.strict)

    async def send(self, *texts: str) -> None:
        async with self._lock:
            for text in texts:
                if not self.closed:
                    await self._send_raw({"type": "websocket.send", "text": text})

    async def close(self, code: int, reason: str = "") -> None:
        async with self._lock:
            if not self.closed:
                self.closed = True
                await self._send_raw({"type": "websocket.close", "code": code, "reason": reason})

    async def run(self, receive: Receive, authorized: bool) -> None:
        async with trio.open_nursery() as nursery:
            self.nursery = nursery
            if not authorized:
                await self.send(
                    self.core.error("Incorrect API key provided.", code="invalid_api_key")
                )
                await self.close(3000, "invalid_request_error.invalid_api_key")
            if self.faults.session_created_delay and not self.closed:
                await trio.sleep(self.faults.session_created_delay)
            if not self.faults.drop_session_created and not self.closed:
                await self.send(self._session_created())
            if self.faults.expire_after is not None:
                nursery.start_soon(self._expire, self.faults.expire_after)
            self.endpoint.session_started.set()
            while not self.closed:
                if self.faults.stall_reads_after_update and self.core.configured:
                    await trio.sleep_forever()
                message = await receive()
                if message["type"] == "websocket.disconnect":
                    break
                await self._on_message(message.get("text") or message.get("bytes") or "")
            self.core.connection_closed()
            nursery.cancel_scope.cancel()

    def _session_created(self) -> str:
        """``session.created``; for a ``?model=`` or intent-less URL, the conversation
        session OpenAI opens there (which then refuses a transcription update), not a
        transcription session that refuses its own configuration."""
        if not self.conversation:
            return self.core.session_created()
        query = dict(parse_qsl(self.record.query))
        session = {
            "type": "realtime",
            "object": "realtime.session",
            "id": self.core.session_id,
            "model": query.get("model", "gpt-realtime"),
            "output_modalities": ["audio"],
            "audio": {
                "input": {
                    "format": {"type": "audio/pcm", "rate": 24_000},
                    "transcription": None,
                    "turn_detection": self.core.config.turn_detection,
                },
                "output": {"format": {"type": "audio/pcm", "rate": 24_000}, "voice": "alloy"},
            },
            "expires_at": self.core.expires_at,
        }
        return self.core.raw({"type": "session.created", "session": session})

    async def _expire(self, seconds: float) -> None:
        await trio.sleep(seconds)
        await self.send(
            self.core.error(
                "Your session hit the maximum duration of 60 minutes.", code="session_expired"
            )
        )
        await self.close(1001, "session expired")

    def _record(self, text: str | bytes) -> None:
        if not self.endpoint.config.record:
            return
        try:
            obj = load_json(text if isinstance(text, str) else "", "client message")
        except RemoteProtocolError:
            self.record.client_events.append({"type": "<malformed>", "raw": str(text)[:200]})
            return
        if isinstance(obj, dict) and isinstance(obj.get("audio"), str):
            size = len(obj["audio"]) * 3 // 4
            obj = {**obj, "audio": f"<{size} bytes>"}
        self.record.client_events.append(obj if isinstance(obj, dict) else {"type": "<other>"})

    async def _on_message(self, text: str | bytes) -> None:
        self._record(text)
        try:
            event = self.core.receive(text)
        except MalformedClientEvent as exc:
            await self.send(self.core.error(str(exc), code=exc.code, event_id=exc.event_id))
            return
        except RemoteProtocolError as exc:
            await self.send(self.core.error(str(exc), code="invalid_json"))
            return
        if self.checked and isinstance(event, SessionUpdateRequest):
            refusal = check_event_type(str(event.raw.get("type")))  # the Beta name, say
            if refusal is not None:
                await self._refuse(refusal, event.event_id)
                return
        if isinstance(event, SessionUpdateRequest):
            await self._on_update(event)
        elif isinstance(event, AudioAppend):
            if not self.audio_format.g711 and len(event.audio) % 2:
                odd = (
                    f"Invalid 'audio': PCM16 audio is whole 2-byte samples; got {len(event.audio)}."
                )
                await self.send(self.core.error(odd, code="invalid_value", event_id=event.event_id))
                return
            await self._on_append(event.audio)
        elif isinstance(event, CommitRequest):
            result = self.core.commit(event.event_id)
            await self.send(*result.messages)
            if self.vad is not None:
                self.vad.reset()
            self._start_item(result.item_id, result.audio)
        elif isinstance(event, ClearRequest):
            self.partial = None
            if self.vad is not None:
                self.vad.reset()
            await self.send(*self.core.clear())
        else:
            await self.send(
                self.core.error(
                    f"Invalid value: '{event.raw.get('type')}'."
                    if hasattr(event, "raw")
                    else "Unknown event",
                    code="invalid_value",
                    event_id=event.event_id,
                )
            )

    async def _refuse(self, refusal: Refusal, event_id: str | None) -> None:
        error = self.core.error(
            refusal.message, code=refusal.code, param=refusal.param, event_id=event_id
        )
        await self.send(error)

    async def _on_update(self, event: SessionUpdateRequest) -> None:
        await trio.lowlevel.checkpoint()
        faults, config = self.faults, event.config
        refusal: Refusal | None = None
        if event.problem is None and self.conversation:
            refusal = Refusal(CONVERSATION_SESSION, "invalid_parameter")
        elif event.problem is None and faults.reject_update is not None:
            refusal = Refusal(faults.reject_update[1], faults.reject_update[0])
        if refusal is None:
            refusal = update_refusal(event, self.core.config.model, checked=self.checked)
        if refusal is not None:
            error = self.core.error(
                refusal.message, code=refusal.code, param=refusal.param, event_id=event.event_id
            )
            await self.send(error)
            return
        if not self.core.configured or config.turn_detection != self.core.config.turn_detection:
            # Only a change of turn detection restarts the VAD: an update that leaves it
            # alone (a patch, or the empty one clients send as a barrier) keeps its state.
            self.vad = (
                EnergyVAD(config.turn_detection, end_after_silence=self.strict)
                if config.turn_detection
                else None
            )
        if WIRE_FORMATS[config.audio_format] is not self.audio_format:
            self.audio_format, self.upsampler = WIRE_FORMATS[config.audio_format], None
        self.updates += 1
        if faults.drop_session_updated or (
            faults.answer_updates is not None and self.updates > faults.answer_updates
        ):
            return
        await self.send(self.core.session_updated(config))

    async def _on_append(self, audio: bytes) -> None:
        self.appends += 1
        self.record.audio_bytes += len(audio)
        if self.record.audio is not None:
            self.record.audio += audio
        self.record.audio_started.set()
        await self._append_faults()
        if self.closed:
            return
        pcm = self._as_pcm(audio)
        await self.send(*self.core.append(pcm))
        if self.vad is None:
            return
        for vad_event in self.vad.feed(np.frombuffer(pcm, dtype="<i2")):
            if vad_event.kind == "start":
                self.vad_item = self.core.peek_item_id()
                self.partial = PartialTurn(self.vad_item, self.core.received_ms)
                await self.send(self.core.speech_started(self.vad_item, vad_event.ms))
            else:
                item = self.vad_item or self.core.peek_item_id()
                await self.send(self.core.speech_stopped(item, vad_event.ms))
                result = self.core.commit(upto_ms=vad_event.ms)
                await self.send(*result.messages)
                self._start_item(result.item_id, result.audio)
        self._maybe_partial()

    def _maybe_partial(self) -> None:
        """Recognize the turn so far, if a second has passed and a worker is free."""
        turn, pool = self.partial, self.endpoint.pool
        if (
            turn is None
            or turn.running
            or not self.endpoint.config.recognizer.blocking  # a scripted one: no partials
            or self.core.received_ms - turn.last_ms < PARTIAL_EVERY_MS
            or not pool.has_idle_worker
        ):
            return
        turn.running, turn.last_ms = True, self.core.received_ms
        self.nursery.start_soon(self._partial, turn, self.core.buffer())

    async def _partial(self, turn: PartialTurn, audio: bytes) -> None:
        await trio.lowlevel.checkpoint()
        samples = np.frombuffer(audio, dtype="<i2")
        try:
            heard = await self.endpoint.pool.recognize(
                self.endpoint.config.recognizer, samples, 24_000
            )
        except WorkerFailed:
            return  # the completion will say what failed
        finally:
            turn.running = False
        if turn is not self.partial:
            return  # committed meanwhile: the completion sends what is left
        first = not turn.sent
        words = turn.settled(heard.words)
        await self.send(*self._deltas(turn.item_id, words, first))

    def _as_pcm(self, audio: bytes) -> bytes:
        """What the recognizer and the VAD hear: G.711 decoded and brought to 24 kHz by one
        interpolator over the whole connection (``_upsample.py`` says why)."""
        wire = self.audio_format
        if not wire.g711:
            return audio
        if self.upsampler is None:
            self.upsampler = Upsampler()
        return self.upsampler(wire.linear(audio)).astype("<i2", copy=False).tobytes()

    async def _append_faults(self) -> None:
        await trio.lowlevel.checkpoint()
        f, n = self.faults, self.appends
        if n == 1 and f.drops:
            self.drop = f.drops.pop(0)
        if f.error_after_appends and n == f.error_after_appends[0]:
            await self.send(
                self.core.error(
                    f.error_after_appends[2],
                    code=f.error_after_appends[1],
                    type="server_error"
                    if "server" in f.error_after_appends[1]
                    else "invalid_request_error",
                )
            )
        if f.raw_after_appends and n == f.raw_after_appends[0]:
            await self.send(f.raw_after_appends[1])
        if f.malformed_after_appends == n:
            await self.send('{"type": "conversation.item.input_audio_transcription.delta", ')
        if f.oversized_after_appends and n == f.oversized_after_appends[0]:
            await self.send(
                self.core.raw({"type": "padding", "data": "x" * f.oversized_after_appends[1]})
            )
        if f.close_after_appends and n == f.close_after_appends[0]:
            await self.close(f.close_after_appends[1], f.close_after_appends[2])
        if self.drop is not None and n == self.drop[0]:
            await self.close(self.drop[1], "connection dropped (a test fault)")

    def _start_item(self, item_id: str | None, audio: bytes) -> None:
        turn, self.partial = self.partial, None
        if turn is not None and turn.item_id == item_id and turn.sent:
            self.spoken[item_id] = turn
        if item_id is not None:
            self.commits += 1
            self.nursery.start_soon(self._transcribe, item_id, audio, self.commits)

    def _deltas(self, item_id: str, words: list[RecognizedWord], first: bool) -> list[str]:
        logprobs = self.core.config.include_logprobs
        return [
            self.core.delta(
                item_id,
                ("" if first and i == 0 else " ") + word.word,
                [_logprob(word)] if logprobs else None,
            )
            for i, word in enumerate(words)
        ]

    async def _transcribe(self, item_id: str, audio: bytes, ordinal: int) -> None:
        faults = self.faults
        samples = np.frombuffer(audio, dtype="<i2")
        recognizer = self.endpoint.config.recognizer
        try:
            recognition = await self.endpoint.pool.recognize(recognizer, samples, 24_000)
        except WorkerFailed:
            logger.exception("recognizing %s failed", item_id)
            await self.send(self.core.failed(item_id, "The audio could not be transcribed."))
            return
        if faults.completion_delay:
            await trio.sleep(faults.completion_delay)
        if faults.never_complete:
            return
        if ordinal in faults.fail_items:
            await self.send(self.core.failed(item_id, "The audio could not be transcribed."))
            return
        model = self.core.config.model
        spoken = self.spoken.pop(item_id, None)
        words = spoken.rest(recognition.words) if spoken else list(recognition.words)
        deltas = self._deltas(item_id, words, first=spoken is None)
        logprobs = self.core.config.include_logprobs
        cuts = faults.cut_mid_transcript
        if cuts and cuts[0][0] == ordinal:
            await self.send(*deltas)
            await self.close(cuts.pop(0)[1], "connection dropped mid-transcript (a test fault)")
            return
        completed = self.core.completed(
            item_id,
            recognition.text,
            len(audio) / BYTES_PER_MS,
            [_logprob(word) for word in recognition.words] if logprobs else None,
            [entry["code"] for entry in languages(recognition, model) or ()],
        )
        await self.send(*deltas)
        if faults.hold_completions:
            self.held.append(completed)
            if len(self.held) < faults.hold_completions:
                return
            held, self.held = self.held, []
            await self.send(*reversed(held))
            return
        await self.send(completed)
