"""The realtime session: a nursery, three tasks, bounded channels and cancel scopes.

Theory of operation
-------------------
Entering ``async with model.create_session(...)`` connects, waits for ``session.created``,
sends the session update and waits for ``session.updated``, each under its own deadline. It
then starts, in one nursery:

* the **listener**: socket -> :class:`RealtimeConnection` -> typed events -> processor;
* the **processor**: events -> spans, the ``events()`` and ``transcribe_turns()`` channels
  (turns in commit order), and the inactivity deadline;
* the **sender**: the :class:`StreamedAudioInput` channel -> appends -> socket. When that
  channel closes it commits the tail if it holds speech, clears it otherwise, and from then on
  the session finishes by itself: once every committed item has completed or failed it
  closes the socket with 1000 and ``transcribe_turns()`` ends;
* a **watchdog** that does nothing until the nursery is cancelled (see below).

Every channel is bounded, so a slow consumer slows the listener, then trio-websocket's
queue, then TCP; a fast producer waits in ``add_audio``.

**Never tear a frame.** A trio-websocket send cancelled half-way leaves half a frame on the
wire and the peer closes with 1007. So every send runs in a shielded scope bounded by
``send_timeout``, under one lock. If the nursery is cancelled while a send is stuck (the peer
stopped reading), the watchdog drops the TCP stream, which fails the stuck send at once; the
connection is then abandoned without another byte. Otherwise the socket is closed politely.

**One exception out.** Whatever fails first cancels the rest. The context manager turns the
nursery's exception group back into one exception: the user's own exception unchanged if the
block raised one, else ours (a fatal server error before a timeout before a close).

**Inactivity** is only enforced while we wait for the server (a commit or transcript is
outstanding, or input has ended): the processor's receive runs in a cancel scope whose
deadline any task may arm, so a commit sent from another task starts the clock at once.
"""

from __future__ import annotations

import base64
import logging
import math
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import trio

from ._config import ClientConfig
from ._errors import (
    RealtimeServerError,
    RemoteProtocolError,
    STTError,
    STTWebsocketConnectionError,
    STTWebsocketTimeoutError,
    WebSocketClosedError,
    exception_leaves,
)
from ._protocol import (
    AudioCommitted,
    ClientState,
    RealtimeConnection,
    RealtimeEvent,
    ServerError,
    SpeechStarted,
    TranscriptionCompleted,
    TranscriptionDelta,
    TranscriptionFailed,
    Turn,
    handshake_headers,
)
from ._protocol._dialects import Dialect
from ._settings import STTModelSettings
from ._streamed_input import AudioChunk, StreamedAudioInput
from ._tracing import TracingOptions, TurnSpan
from ._websocket import (
    WebSocketConnector,
    WebSocketTransport,
    connect_websocket,
    map_websocket_error,
)

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup

__all__ = ["SessionOptions", "SessionStatistics", "OpenAISTTTranscriptionSession"]

logger = logging.getLogger("trio_stt")


@dataclass(frozen=True)
class SessionOptions:
    """How a realtime session behaves; every field has a sensible default.

    Attributes:
        dialect: ``"ga"`` for OpenAI; ``"beta"`` for compatible servers on the old shape.
        session_created_timeout, session_updated_timeout: seconds for each setup step.
        inactivity_timeout: seconds without a server event while we wait for one.
        connect_timeout: seconds for TCP, TLS and the WebSocket handshake.
        close_timeout: seconds for the close handshake before the socket is dropped.
        send_timeout: seconds one message may take to send before the peer is declared stuck.
        max_message_bytes: received messages over this are a protocol error.
        max_append_ms: when audio queues up, up to this much is sent in one append.
        event_buffer, turn_buffer: capacity of the ``events()`` and turn channels.
        connector: replaces the WebSocket factory (a proxy, an in-memory transport).
    """

    dialect: Dialect = "ga"
    session_created_timeout: float = 10.0
    session_updated_timeout: float = 10.0
    inactivity_timeout: float = 1000.0
    connect_timeout: float = 10.0
    close_timeout: float = 5.0
    send_timeout: float = 30.0
    max_message_bytes: int = 4 * 1024 * 1024
    max_append_ms: float = 500.0
    event_buffer: int = 64
    turn_buffer: int = 16
    connector: WebSocketConnector | None = field(default=None, repr=False)


@dataclass
class SessionStatistics:
    """Counters for one session (see :meth:`OpenAISTTTranscriptionSession.statistics`)."""

    messages_sent: int = 0
    messages_received: int = 0
    audio_seconds_sent: float = 0.0
    commits_sent: int = 0
    turns_completed: int = 0
    turns_failed: int = 0
    recoverable_errors: int = 0


_PRIORITY = (
    RealtimeServerError,
    RemoteProtocolError,
    STTWebsocketTimeoutError,
    WebSocketClosedError,
    STTError,
)


class OpenAISTTTranscriptionSession:
    """A live transcription session; get one from :meth:`OpenAISTTModel.create_session`.

    Inside the ``async with``: iterate :meth:`transcribe_turns` for final transcripts in
    commit order, or :meth:`events` for every typed event; call :meth:`commit` and
    :meth:`clear` for push-to-talk. Subscribe (call ``transcribe_turns()``/``events()``)
    before you send audio: events that arrive while nobody is subscribed are not kept.
    """

    def __init__(
        self,
        model: str,
        config: ClientConfig,
        audio: StreamedAudioInput,
        settings: STTModelSettings,
        tracing: TracingOptions,
        options: SessionOptions,
    ) -> None:
        settings.check_for(model, realtime=True)
        self.model = model
        self._config = config
        self._input = audio
        self._settings = settings
        self._tracing = tracing
        self._options = options
        self._core = RealtimeConnection(
            dialect=options.dialect, max_message_bytes=options.max_message_bytes
        )
        self._stats = SessionStatistics()
        self._transport: WebSocketTransport | None = None
        self._send_lock = trio.StrictFIFOLock()
        self._in_flight = False
        self._dropped = False  # the stream was dropped: never write to it again
        self._closing = False
        self._finish_started = False
        self._input_done = False
        self._ended = False
        self._wait_scope: trio.CancelScope | None = None
        self._body_error: BaseException | None = None
        self._setup_events: list[RealtimeEvent] = []
        self._turns_tx, self._turns_rx = trio.open_memory_channel[str](options.turn_buffer)
        self._events_tx, self._events_rx = trio.open_memory_channel[RealtimeEvent](
            options.event_buffer
        )
        self._want_turns = False
        self._want_events = False
        self._chunks_sent = 0
        self._progress = trio.Event()
        self._spans: dict[str, TurnSpan] = {}
        self._turn_audio: list[bytes] = []
        self._nursery: trio.Nursery | None = None

    def __repr__(self) -> str:
        return f"<OpenAISTTTranscriptionSession {self.model} {self._core.state.name}>"

    # ------------------------------------------------------------------ public API

    def transcribe_turns(self) -> trio.MemoryReceiveChannel[str]:
        """Final transcripts, one per turn, in commit order; ends when the session finishes.

        Empty and failed turns are skipped (failures are on :meth:`events`).
        """
        if not self._want_turns:
            self._want_turns = True
        return self._turns_rx

    def events(self) -> trio.MemoryReceiveChannel[RealtimeEvent]:
        """Every typed event as it arrives, starting with ``SessionCreated``/``SessionUpdated``."""
        if not self._want_events:
            self._want_events = True
            for event in self._setup_events:
                self._events_tx.send_nowait(event)
        return self._events_rx

    async def commit(self) -> None:
        """End the current turn now: everything added to the input so far is committed.

        Raises:
            trio.ClosedResourceError: the input has ended or the session is over.
        """
        self._check_usable()
        target = self._input.chunks_added
        while self._chunks_sent < target and not self._input_done:
            await self._progress.wait()
        self._check_usable()
        await self._send(self._core.commit())
        self._stats.commits_sent += 1
        self._arm_inactivity()

    async def clear(self) -> None:
        """Drop uncommitted audio (what was added before this call and already sent)."""
        self._check_usable()
        await self._send(self._core.clear())

    def statistics(self) -> SessionStatistics:
        """A snapshot of the session's counters."""
        return SessionStatistics(**vars(self._stats))

    def _check_usable(self) -> None:
        if self._ended or self._input_done or self._closing:
            raise trio.ClosedResourceError("the session's input has ended or the session is over")

    # ------------------------------------------------------------------ lifetime

    @asynccontextmanager
    async def _run(self) -> AsyncIterator[OpenAISTTTranscriptionSession]:
        audio_rx = self._input._take()
        try:
            async with trio.open_nursery() as transport_nursery:
                transport = await self._connect(transport_nursery)
                try:
                    await self._configure(transport)
                    async with trio.open_nursery() as tasks:
                        self._nursery = tasks
                        listener_tx, listener_rx = trio.open_memory_channel[RealtimeEvent](16)
                        await tasks.start(self._watchdog)
                        await tasks.start(self._listen, listener_tx)
                        await tasks.start(self._process, listener_rx)
                        await tasks.start(self._send_audio, audio_rx)
                        try:
                            yield self
                        except BaseException as exc:
                            self._body_error = exc
                            raise
                        tasks.cancel_scope.cancel()
                finally:
                    with trio.move_on_after(2 * self._options.close_timeout, shield=True):
                        await self._shutdown(transport)
                    transport_nursery.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            chosen = self._collapse(group)
            if chosen is None:
                raise
            raise chosen from chosen.__cause__
        finally:
            self._ended = True
            audio_rx.close()
            for span in self._spans.values():
                span.finish(error="the session ended before this turn completed")
            self._spans.clear()

    def _collapse(self, group: BaseExceptionGroup[BaseException]) -> BaseException | None:
        """One exception for the user, or ``None`` to let a pure cancellation through."""
        leaves = exception_leaves(group)
        if self._body_error is not None and any(leaf is self._body_error for leaf in leaves):
            return self._body_error
        errors = [leaf for leaf in leaves if not isinstance(leaf, trio.Cancelled)]
        if not errors:
            return None
        mapped: list[BaseException] = []
        for leaf in errors:
            ours: BaseException | None = map_websocket_error(leaf)
            closed = ours or leaf
            if isinstance(closed, WebSocketClosedError) and closed.code == 1009:
                # trio-websocket refused an oversized message (whichever task saw it first).
                ours = RemoteProtocolError(
                    "the server sent a message over the "
                    f"{self._options.max_message_bytes:,}-byte limit (closed with 1009)"
                )
            if ours is not None:
                ours.__cause__ = leaf
                mapped.append(ours)
            else:
                mapped.append(leaf)
        for kind in _PRIORITY:
            for exc in mapped:
                if isinstance(exc, kind):
                    return exc
        internal = STTWebsocketConnectionError(
            f"internal error in the session: {type(mapped[0]).__name__}: {mapped[0]}"
        )
        internal.__cause__ = group
        return internal

    async def _connect(self, nursery: trio.Nursery) -> WebSocketTransport:
        headers = self._config.websocket_headers() + handshake_headers(self._options.dialect)
        connector = self._options.connector or connect_websocket
        with trio.move_on_after(self._options.connect_timeout) as scope:
            self._transport = await connector(
                self._config.websocket_url, headers, nursery, self._options.max_message_bytes
            )
        if scope.cancelled_caught or self._transport is None:
            raise STTWebsocketTimeoutError(
                f"the websocket connection to {self._config.websocket_url.split('?')[0]}",
                self._options.connect_timeout,
            )
        return self._transport

    async def _configure(self, transport: WebSocketTransport) -> None:
        opts = self._options
        await self._await_state(
            transport, ClientState.AWAITING_CREATED, "session.created", opts.session_created_timeout
        )
        await self._send(self._core.update_session(self.model, self._settings))
        await self._await_state(
            transport, ClientState.CONFIGURING, "session.updated", opts.session_updated_timeout
        )

    async def _await_state(
        self, transport: WebSocketTransport, state: ClientState, awaited: str, seconds: float
    ) -> None:
        await trio.lowlevel.checkpoint()
        with trio.move_on_after(seconds) as scope:
            while self._core.state is state:
                message = await transport.receive()
                self._stats.messages_received += 1
                for event in self._core.receive(message):
                    if isinstance(event, ServerError):
                        raise _server_error(event)
                    self._setup_events.append(event)
        if scope.cancelled_caught:
            raise STTWebsocketTimeoutError(awaited, seconds)

    async def _shutdown(self, transport: WebSocketTransport) -> None:
        await trio.lowlevel.checkpoint()
        with trio.CancelScope(shield=True):
            if not self._dropped:
                with trio.move_on_after(self._options.close_timeout):
                    try:
                        await transport.aclose(1000)
                    except Exception as exc:  # closing is best effort; abort follows
                        logger.debug("close handshake failed: %s", type(exc).__name__)
            await transport.abort()

    # ------------------------------------------------------------------ sending

    async def _send(self, message: str) -> None:
        """Send one message whole: shielded, bounded, one at a time."""
        transport = self._transport
        if transport is None or self._dropped:
            raise WebSocketClosedError(None, None, detail="the connection was dropped")
        async with self._send_lock:
            self._in_flight = True
            try:
                with trio.CancelScope(shield=True) as scope:
                    scope.deadline = trio.current_time() + self._options.send_timeout
                    await transport.send(message)
            except WebSocketClosedError:
                if self._was_dropped():  # the watchdog dropped it: we are being cancelled
                    # Deliberately let Cancelled replace the transport error here.
                    await trio.lowlevel.checkpoint()  # noqa: ASYNC120
                raise
            finally:
                self._in_flight = False
            if scope.cancelled_caught:
                self._dropped = True
                with trio.CancelScope(shield=True):
                    await transport.abort()
                raise WebSocketClosedError(
                    None,
                    None,
                    detail=f"a send took longer than {self._options.send_timeout:g} s "
                    "(the server stopped reading); the connection was dropped",
                )
        self._stats.messages_sent += 1

    def _was_dropped(self) -> bool:
        # A method, not the attribute: another task may set it while this one awaits.
        return self._dropped

    async def _watchdog(self, task_status: trio.TaskStatus[None]) -> None:
        task_status.started()
        try:
            await trio.sleep_forever()
        finally:
            if self._in_flight and self._transport is not None:
                self._dropped = True
                with trio.CancelScope(shield=True):
                    await self._transport.abort()

    async def _send_audio(
        self, audio_rx: trio.MemoryReceiveChannel[AudioChunk], task_status: trio.TaskStatus[None]
    ) -> None:
        task_status.started()
        await trio.lowlevel.checkpoint()
        max_bytes = int(self._options.max_append_ms * 48)
        keep_audio = self._tracing.include_sensitive_audio_data
        while True:
            try:
                pcm, voiced = await audio_rx.receive()
            except (trio.EndOfChannel, trio.ClosedResourceError):
                break
            chunks, count = [pcm], 1
            size = len(pcm)
            # Coalesce what is already waiting: per-message cost dominates under load.
            while size < max_bytes:
                try:
                    more, more_voiced = audio_rx.receive_nowait()
                except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                    break
                if more_voiced >= 0:
                    voiced = size / 48 + more_voiced
                chunks.append(more)
                size, count = size + len(more), count + 1
            data = chunks[0] if count == 1 else b"".join(chunks)
            await self._send(self._core.append_audio(data, voiced_until_ms=voiced))
            if keep_audio:
                self._turn_audio.append(data)
            self._stats.audio_seconds_sent += len(data) / 48_000
            self._chunks_sent += count
            self._progress.set()
            self._progress = trio.Event()
        final = self._core.finish_input()
        if final is not None:
            await self._send(final)
        self._input_done = True
        self._progress.set()
        self._arm_inactivity()
        if self._core.outstanding == 0:
            self._start_finish()

    def _start_finish(self) -> None:
        if not self._finish_started and self._nursery is not None:
            self._finish_started = True
            self._nursery.start_soon(self._finish)

    async def _finish(self) -> None:
        """Everything is transcribed: say goodbye with 1000; the listener then ends."""
        self._closing = True
        transport = self._transport
        if transport is None or self._dropped:
            await trio.lowlevel.checkpoint()
            return
        async with self._send_lock:
            with trio.CancelScope(shield=True), trio.move_on_after(self._options.close_timeout):
                await transport.aclose(1000)

    # ------------------------------------------------------------------ receiving

    async def _listen(
        self, tx: trio.MemorySendChannel[RealtimeEvent], task_status: trio.TaskStatus[None]
    ) -> None:
        task_status.started()
        await trio.lowlevel.checkpoint()
        transport = self._transport
        assert transport is not None
        with tx:
            while True:
                try:
                    message = await transport.receive()
                except WebSocketClosedError:
                    if self._closing:
                        return
                    raise
                self._stats.messages_received += 1
                for event in self._core.receive(message):
                    if isinstance(event, ServerError) and event.fatal:
                        raise _server_error(event)
                    await tx.send(event)

    def _arm_inactivity(self) -> None:
        scope = self._wait_scope
        if scope is None:
            return
        waiting = self._input_done or self._core.outstanding > 0
        if not waiting:
            scope.deadline = math.inf
        elif scope.deadline == math.inf:
            scope.deadline = trio.current_time() + self._options.inactivity_timeout

    def _awaiting(self) -> str:
        n = self._core.outstanding
        if self._input_done:
            return f"the final transcripts after end of input ({n} outstanding)"
        return f"server events for {n} outstanding commit(s) or transcript(s)"

    async def _process(
        self, rx: trio.MemoryReceiveChannel[RealtimeEvent], task_status: trio.TaskStatus[None]
    ) -> None:
        task_status.started()
        await trio.lowlevel.checkpoint()
        # Sync close (``with``): an async close is a checkpoint, where a cancellation from the
        # block finishing could replace the error this task is raising.
        with rx, self._turns_tx, self._events_tx:
            while True:
                with trio.CancelScope() as scope:
                    self._wait_scope = scope
                    self._arm_inactivity()
                    try:
                        event = await rx.receive()
                    except trio.EndOfChannel:
                        break
                    finally:
                        self._wait_scope = None
                if scope.cancelled_caught:
                    raise STTWebsocketTimeoutError(
                        self._awaiting(), self._options.inactivity_timeout
                    )
                await self._handle(event)
                if self._input_done and self._core.outstanding == 0:
                    self._start_finish()
            for turn in self._core.drain_turns():
                await self._emit_turn(turn)

    async def _handle(self, event: RealtimeEvent) -> None:
        await trio.lowlevel.checkpoint()
        if self._want_events:
            await self._events_tx.send(event)
        if isinstance(event, (SpeechStarted, AudioCommitted, TranscriptionDelta)):
            span = self._span_for(event.item_id)
            if isinstance(event, AudioCommitted) and self._turn_audio:
                span.set_input_audio(base64.b64encode(b"".join(self._turn_audio)).decode())
                self._turn_audio.clear()
        elif isinstance(event, TranscriptionCompleted):
            self._span_for(event.item_id).finish(event.transcript)
            self._spans.pop(event.item_id, None)
            self._stats.turns_completed += 1
        elif isinstance(event, TranscriptionFailed):
            self._span_for(event.item_id).finish("", error=f"{event.code}: {event.message}")
            self._spans.pop(event.item_id, None)
            self._stats.turns_failed += 1
        elif isinstance(event, ServerError):
            self._stats.recoverable_errors += 1
            logger.warning(
                "recoverable server error %s (answering %s)", event.code, event.caused_by
            )
        for turn in self._core.pop_finished_turns():
            await self._emit_turn(turn)

    def _span_for(self, item_id: str) -> TurnSpan:
        span = self._spans.get(item_id)
        if span is None:
            config = {
                "language": self._settings.language,
                "prompt": self._settings.prompt,
                "turn_detection": self._settings.turn_detection,
                "item_id": item_id,
            }
            span = self._spans[item_id] = TurnSpan(self.model, config, self._tracing)
            span.set_attribute("trio_stt.item_id", item_id)
        return span

    async def _emit_turn(self, turn: Turn) -> None:
        await trio.lowlevel.checkpoint()
        if self._want_turns and turn.text and not turn.failed:
            await self._turns_tx.send(turn.text)


def _server_error(event: ServerError) -> RealtimeServerError:
    return RealtimeServerError(
        event.message,
        code=event.code,
        type=event.type,
        param=event.param,
        event_id=event.client_event_id,
    )
